import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export type KeyKind = 'signing' | 'cookie';

export interface ProviderKeyRecord {
  id: string;
  kind: KeyKind;
  sealed: string;
  createdAt: number;
}

export type ProviderKeysStore = ReturnType<typeof createProviderKeysStore>;

export function createProviderKeysStore(db: Db, clock: Clock) {
  return {
    /** Active keys of a kind, oldest first (so every node picks the same current key). */
    async listActive(kind: KeyKind): Promise<ProviderKeyRecord[]> {
      const rows = await db('provider_keys').where({ kind }).whereNull('retired_at').orderBy([{ column: 'created_at' }, { column: 'id' }]);
      return rows.map((r: Record<string, unknown>) => ({
        id: r.id as string, kind: r.kind as KeyKind, sealed: r.sealed as string, createdAt: Number(r.created_at),
      }));
    },
    async insert(k: { id: string; kind: KeyKind; sealed: string }): Promise<void> {
      await db('provider_keys').insert({ id: k.id, kind: k.kind, sealed: k.sealed, created_at: clock.now(), retired_at: null });
    },
  };
}
