/**
 * oidc-provider's storage adapter: every model but `Client` lives in the
 * `oidc_payloads` table; `Client` is served read-only from Twofold's clients.
 */
import type { Adapter, AdapterConstructor, AdapterPayload } from 'oidc-provider';
import type { Db } from '../store/db.ts';
import { parseJson } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';

const TABLE = 'oidc_payloads';
const CLIENT_WRITE_REFUSED = 'clients are managed through Twofold, not the provider';

interface Row {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  account_id: string | null;
  expires_at: number | null;
  consumed_at: number | null;
}

export interface AdapterDeps {
  db: Db;
  clock: Clock;
  /** Provider metadata of a client (RFC 7591 names), or undefined when unknown. */
  findClient(id: string): Promise<Record<string, unknown> | undefined>;
}

function toPayload(row: Row | undefined): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = parseJson<AdapterPayload>(row.payload);
  if (row.consumed_at === null) return payload;
  // oidc-provider compares `consumed` as epoch seconds (helpers/epoch_time.js).
  return { ...payload, consumed: Math.floor(Number(row.consumed_at) / 1000) };
}

/**
 * Builds the class to pass as oidc-provider's `adapter` option; the provider
 * instantiates it once per model name.
 *
 * Contract, per model: `find*` never return a row whose `expires_at <= clock.now()`;
 * `upsert` replaces the payload and its expiry but keeps an earlier `consume`;
 * `revokeByGrantId` deletes only this model's rows (the provider calls it per model).
 * The `Client` model reads through `deps.findClient` and is otherwise read-only.
 */
export function createAdapterClass(deps: AdapterDeps): AdapterConstructor {
  const { db, clock } = deps;

  return class OidcPayloadAdapter implements Adapter {
    readonly #model: string;

    constructor(name: string) {
      this.#model = name;
    }

    #rows() {
      return db<Row>(TABLE).where('model', this.#model);
    }

    #live() {
      const now = clock.now();
      return this.#rows().andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now));
    }

    #refuseClientWrites(): void {
      if (this.#model === 'Client') throw new Error(CLIENT_WRITE_REFUSED);
    }

    /**
     * Stores `payload` under `id`; `expiresIn` is in seconds, falsy means never.
     * @throws Error for the Client model.
     */
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      this.#refuseClientWrites();
      const row: Omit<Row, 'consumed_at'> = {
        model: this.#model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        uid: payload.uid ?? null,
        account_id: typeof payload.accountId === 'string' ? payload.accountId : null,
        user_code: payload.userCode ?? null,
        // Rounded: a fractional ttl must not reach PostgreSQL's bigint.
        expires_at: expiresIn ? clock.now() + Math.round(expiresIn * 1000) : null,
      };
      // consumed_at is deliberately not written, so the merge keeps it: re-saving
      // a spent code or refresh token must never make it usable again.
      await db(TABLE).insert(row).onConflict(['model', 'id']).merge();
    }

    /** @returns the live payload, with `consumed` (epoch seconds) once consumed. */
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#model === 'Client') return (await deps.findClient(id)) as AdapterPayload | undefined;
      return toPayload(await this.#live().andWhere('id', id).first());
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return toPayload(await this.#live().andWhere('uid', uid).first());
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return toPayload(await this.#live().andWhere('user_code', userCode).first());
    }

    /**
     * Marks the payload consumed; the first consumption time is kept.
     * @throws Error for the Client model.
     */
    async consume(id: string): Promise<void> {
      this.#refuseClientWrites();
      await this.#rows().andWhere('id', id).whereNull('consumed_at').update({ consumed_at: clock.now() });
    }

    /** @throws Error for the Client model. */
    async destroy(id: string): Promise<void> {
      this.#refuseClientWrites();
      await this.#rows().andWhere('id', id).del();
    }

    /** @throws Error for the Client model. */
    async revokeByGrantId(grantId: string): Promise<void> {
      this.#refuseClientWrites();
      await this.#rows().andWhere('grant_id', grantId).del();
    }
  };
}

/**
 * Ends a user's sessions and what they hold: sessions, grants, authorization
 * codes, access and refresh tokens (every payload of the account, and every
 * payload of its grants), in one transaction.
 * @returns how many sessions were ended.
 */
export async function endSessionsOf(db: Db, accountId: string): Promise<number> {
  return db.transaction(async (trx) => {
    const sessions = trx(TABLE).where({ model: 'Session', account_id: accountId });
    const ended = await sessions.clone().count<{ n: number | string }[]>({ n: '*' });
    await sessions.del();
    const grants = (await trx(TABLE).where({ model: 'Grant', account_id: accountId }).select('id')).map((r: { id: string }) => r.id);
    if (grants.length > 0) await trx(TABLE).whereIn('grant_id', grants).andWhereNot({ model: 'Session' }).del();
    await trx(TABLE).where({ account_id: accountId }).whereIn('model', ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode']).del();
    return Number(ended[0]?.n ?? 0);
  });
}

/**
 * Deletes every expired payload, of any model; rows without expiry stay.
 * @returns how many rows were deleted.
 */
export async function sweepExpired(db: Db, clock: Clock): Promise<number> {
  return db(TABLE).where('expires_at', '<=', clock.now()).del();
}
