import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import type { MfaPolicy } from '../config.ts';

export interface ClientRecord {
  clientId: string;
  /** OIDC client metadata (RFC 7591 names), without the secret. */
  metadata: Record<string, unknown>;
  clientSecretSealed: string | null;
  /** null follows the global policy. */
  mfaPolicy: MfaPolicy | null;
  firstParty: boolean;
  /** Where challenge outcomes are POSTed (src/delivery/callbacks.ts); null: none. */
  callbackUrl: string | null;
  /** The `whsec_` signing secret, sealed with context `client-callback:<clientId>`. */
  callbackSecretSealed: string | null;
  /** When delivery gave up on the endpoint after sustained failure; null while active. */
  callbackDisabledAt: number | null;
  /** Consecutive events given up on; reset by a delivery or a re-enable. */
  callbackFailures: number;
  createdAt: number;
  updatedAt: number;
}

/** The callback columns, which a new client may leave out (no callback). */
type CallbackFields = 'callbackUrl' | 'callbackSecretSealed' | 'callbackDisabledAt' | 'callbackFailures';
export type NewClientRecord = Omit<ClientRecord, 'createdAt' | 'updatedAt' | CallbackFields> & Partial<Pick<ClientRecord, 'callbackUrl' | 'callbackSecretSealed'>>;

/** The columns an update may change; absent means unchanged. */
export type ClientChanges = Partial<Pick<ClientRecord, 'metadata' | 'clientSecretSealed' | 'mfaPolicy' | 'firstParty' | CallbackFields>>;

/** What happened to a client's callback when delivery gave up on one event. */
export type CallbackFailureOutcome = 'counted' | 'disabled' | 'inactive';

interface Row {
  client_id: string; metadata: string; client_secret_sealed: string | null; mfa_policy: string | null;
  first_party: boolean | number; created_at: number; updated_at: number;
  callback_url: string | null; callback_secret_sealed: string | null; callback_disabled_at: number | string | null;
  callback_failures: number | string;
}

function toRecord(r: Row): ClientRecord {
  return {
    clientId: r.client_id, metadata: parseJson(r.metadata), clientSecretSealed: r.client_secret_sealed,
    mfaPolicy: r.mfa_policy as MfaPolicy | null, firstParty: Boolean(r.first_party),
    callbackUrl: r.callback_url ?? null, callbackSecretSealed: r.callback_secret_sealed ?? null,
    callbackDisabledAt: r.callback_disabled_at == null ? null : Number(r.callback_disabled_at),
    callbackFailures: Number(r.callback_failures ?? 0),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

export type ClientsStore = ReturnType<typeof createClientsStore>;

/**
 * Every write takes an optional `trx` so a change and its audit event are
 * written together. With SQLite's single connection, a query inside a
 * transaction that does not use `trx` would wait forever for the pool.
 */
export function createClientsStore(db: Db, clock: Clock) {
  return {
    transaction: <T>(fn: (trx: Db) => Promise<T>): Promise<T> => db.transaction(fn),

    /** @throws the driver's unique violation when the id is taken. */
    async insert(c: NewClientRecord, trx: Db = db): Promise<ClientRecord> {
      const now = clock.now();
      const row: Row = {
        client_id: c.clientId, metadata: JSON.stringify(c.metadata), client_secret_sealed: c.clientSecretSealed,
        mfa_policy: c.mfaPolicy, first_party: c.firstParty, created_at: now, updated_at: now,
        callback_url: c.callbackUrl ?? null, callback_secret_sealed: c.callbackSecretSealed ?? null,
        callback_disabled_at: null, callback_failures: 0,
      };
      await trx('clients').insert(row);
      return toRecord(row);
    },
    async find(clientId: string, trx: Db = db): Promise<ClientRecord | undefined> {
      const r = await trx<Row>('clients').where({ client_id: clientId }).first();
      return r && toRecord(r);
    },
    /**
     * Reads a client inside `trx` and, on PostgreSQL, locks its row until the
     * transaction ends, so two read-modify-write updates cannot lose each
     * other's changes (SQLite's single writer serialises them anyway).
     */
    async findForUpdate(clientId: string, trx: Db): Promise<ClientRecord | undefined> {
      const r = await trx<Row>('clients').where({ client_id: clientId }).forUpdate().first();
      return r && toRecord(r);
    },
    async list(): Promise<ClientRecord[]> {
      return (await db<Row>('clients').orderBy('client_id')).map(toRecord);
    },
    /**
     * Applies `changes` and bumps `updated_at`; with `ifConfidential`, only
     * while the client has a secret, with `ifCallback` only while it has a
     * callback URL (one conditional write).
     * @returns the client as changed, or undefined when no row matched.
     */
    async update(clientId: string, changes: ClientChanges, options: { ifConfidential?: boolean; ifCallback?: boolean; trx?: Db } = {}): Promise<ClientRecord | undefined> {
      const trx = options.trx ?? db;
      const row: Partial<Row> = { updated_at: clock.now() };
      if (changes.metadata !== undefined) row.metadata = JSON.stringify(changes.metadata);
      if (changes.clientSecretSealed !== undefined) row.client_secret_sealed = changes.clientSecretSealed;
      if (changes.mfaPolicy !== undefined) row.mfa_policy = changes.mfaPolicy;
      if (changes.firstParty !== undefined) row.first_party = changes.firstParty;
      if (changes.callbackUrl !== undefined) row.callback_url = changes.callbackUrl;
      if (changes.callbackSecretSealed !== undefined) row.callback_secret_sealed = changes.callbackSecretSealed;
      if (changes.callbackDisabledAt !== undefined) row.callback_disabled_at = changes.callbackDisabledAt;
      if (changes.callbackFailures !== undefined) row.callback_failures = changes.callbackFailures;
      const q = trx('clients').where({ client_id: clientId });
      if (options.ifConfidential) q.whereNotNull('client_secret_sealed');
      if (options.ifCallback) q.whereNotNull('callback_url');
      if ((await q.update(row)) === 0) return undefined;
      const r = await trx<Row>('clients').where({ client_id: clientId }).first();
      return r && toRecord(r);
    },
    /**
     * Counts one event that delivery gave up on, and disables the callback
     * when `disableAfter` consecutive events failed. Each step is a guarded
     * write, so two nodes giving up at once count twice but disable once.
     * Delivery state, not an administrative change: `updated_at` stays.
     * @returns 'disabled' only for the write that disabled it.
     */
    async recordCallbackFailure(clientId: string, disableAfter: number, trx: Db = db): Promise<CallbackFailureOutcome> {
      const active = () => trx('clients').where({ client_id: clientId }).whereNotNull('callback_url').whereNull('callback_disabled_at');
      if ((await active().increment('callback_failures', 1)) === 0) return 'inactive';
      const disabled = await active().where('callback_failures', '>=', disableAfter).update({ callback_disabled_at: clock.now() });
      return disabled > 0 ? 'disabled' : 'counted';
    },
    /** A delivery succeeded: the failure count starts again (no write when already 0). */
    async resetCallbackFailures(clientId: string, trx: Db = db): Promise<void> {
      await trx('clients').where({ client_id: clientId }).where('callback_failures', '>', 0).update({ callback_failures: 0 });
    },
    /**
     * Deletes the client and everything oidc-provider issued to it (grants,
     * codes, access and refresh tokens, pending interactions). Without this,
     * a client later created with the same id would inherit the old client's
     * grants and could redeem its refresh tokens.
     * @returns false when no such client.
     */
    async delete(clientId: string, trx: Db = db): Promise<boolean> {
      if ((await trx('clients').where({ client_id: clientId }).del()) === 0) return false;
      // The payload is JSON text with no client column; a client id is
      // [A-Za-z0-9._~-] so it appears verbatim, and a quote inside any other
      // string would be escaped (\"), so this matches only the real property.
      // A full scan, acceptable for a rare administrative action.
      const id = clientId.replace(/[!%_]/g, '!$&');
      await trx('oidc_payloads')
        .whereRaw("payload like ? escape '!'", [`%"clientId":"${id}"%`])
        .orWhereRaw("payload like ? escape '!'", [`%"client_id":"${id}"%`])
        .del();
      return true;
    },
  };
}
