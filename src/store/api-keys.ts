import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export interface ApiKeyRecord {
  id: string;
  prefix: string;
  name: string;
  hash: string;
  scopes: string[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface Row {
  id: string; prefix: string; name: string; hash: string; scopes: string;
  created_at: number; last_used_at: number | null; revoked_at: number | null;
}

const toRecord = (r: Row): ApiKeyRecord => ({
  id: r.id, prefix: r.prefix, name: r.name, hash: r.hash, scopes: parseJson(r.scopes), createdAt: Number(r.created_at),
  lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
});

export type ApiKeysStore = ReturnType<typeof createApiKeysStore>;

export function createApiKeysStore(db: Db, clock: Clock) {
  return {
    async insert(k: { id: string; prefix: string; name: string; hash: string; scopes: string[] }): Promise<ApiKeyRecord> {
      const row: Row = { ...k, scopes: JSON.stringify(k.scopes), created_at: clock.now(), last_used_at: null, revoked_at: null };
      await db('api_keys').insert(row);
      return toRecord(row);
    },
    async findByPrefix(prefix: string): Promise<ApiKeyRecord | undefined> {
      const r = await db<Row>('api_keys').where({ prefix }).first();
      return r && toRecord(r);
    },
    async list(): Promise<ApiKeyRecord[]> {
      return (await db<Row>('api_keys').orderBy('created_at')).map(toRecord);
    },
    async touch(id: string): Promise<void> {
      await db('api_keys').where({ id }).update({ last_used_at: clock.now() });
    },
    /** @returns false when no such key or already revoked. */
    async revoke(idOrPrefix: string): Promise<boolean> {
      const n = await db('api_keys').where((q) => q.where({ id: idOrPrefix }).orWhere({ prefix: idOrPrefix }))
        .whereNull('revoked_at').update({ revoked_at: clock.now() });
      return n > 0;
    },
  };
}
