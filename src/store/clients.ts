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
  createdAt: number;
  updatedAt: number;
}

interface Row {
  client_id: string; metadata: string; client_secret_sealed: string | null; mfa_policy: string | null;
  first_party: boolean | number; created_at: number; updated_at: number;
}

function toRecord(r: Row): ClientRecord {
  return {
    clientId: r.client_id, metadata: parseJson(r.metadata), clientSecretSealed: r.client_secret_sealed,
    mfaPolicy: r.mfa_policy as MfaPolicy | null, firstParty: Boolean(r.first_party),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

export type ClientsStore = ReturnType<typeof createClientsStore>;

export function createClientsStore(db: Db, clock: Clock) {
  return {
    /** @throws the driver's unique violation when the id is taken. */
    async insert(c: Omit<ClientRecord, 'createdAt' | 'updatedAt'>): Promise<ClientRecord> {
      const now = clock.now();
      const row: Row = {
        client_id: c.clientId, metadata: JSON.stringify(c.metadata), client_secret_sealed: c.clientSecretSealed,
        mfa_policy: c.mfaPolicy, first_party: c.firstParty, created_at: now, updated_at: now,
      };
      await db('clients').insert(row);
      return toRecord(row);
    },
    async find(clientId: string): Promise<ClientRecord | undefined> {
      const r = await db<Row>('clients').where({ client_id: clientId }).first();
      return r && toRecord(r);
    },
    async list(): Promise<ClientRecord[]> {
      return (await db<Row>('clients').orderBy('client_id')).map(toRecord);
    },
    /** @returns false when no such client. */
    async delete(clientId: string): Promise<boolean> {
      return (await db('clients').where({ client_id: clientId }).del()) > 0;
    },
  };
}
