/**
 * oidc-provider's storage adapter over the `oidc_payloads` table, and the
 * read-only Client model served from Twofold's `clients` table.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';

interface Row {
  model: string; id: string; payload: string; grant_id: string | null; uid: string | null;
  user_code: string | null; expires_at: number | null; consumed_at: number | null;
}

export interface AdapterDeps {
  db: Db;
  clock: Clock;
  findClient(id: string): Promise<Record<string, unknown> | undefined>;
}

/** @returns the class oidc-provider instantiates once per model name. */
export function createAdapterClass(deps: AdapterDeps): new (name: string) => Adapter {
  const { db, clock } = deps;

  return class KnexAdapter implements Adapter {
    constructor(private readonly model: string) {}

    private live() {
      const now = clock.now();
      return db<Row>('oidc_payloads').where({ model: this.model })
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now));
    }

    private static toPayload(row: Row | undefined): AdapterPayload | undefined {
      if (!row) return undefined;
      const payload = JSON.parse(row.payload) as AdapterPayload;
      return row.consumed_at === null ? payload : { ...payload, consumed: Math.floor(Number(row.consumed_at) / 1000) };
    }

    private refuseClientWrites(): void {
      // Clients are managed through Twofold (CLI, management API), never by the provider.
      if (this.model === 'Client') throw new Error('clients are managed through Twofold, not the provider');
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      this.refuseClientWrites();
      const row = {
        model: this.model, id, payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null, uid: payload.uid ?? null, user_code: payload.userCode ?? null,
        expires_at: expiresIn ? clock.now() + expiresIn * 1000 : null, consumed_at: null,
      };
      await db('oidc_payloads').insert(row).onConflict(['model', 'id']).merge();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return (await deps.findClient(id)) as AdapterPayload | undefined;
      return KnexAdapter.toPayload(await this.live().andWhere({ id }).first());
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return KnexAdapter.toPayload(await this.live().andWhere({ uid }).first());
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return KnexAdapter.toPayload(await this.live().andWhere({ user_code: userCode }).first());
    }

    async consume(id: string): Promise<void> {
      this.refuseClientWrites();
      await db('oidc_payloads').where({ model: this.model, id }).update({ consumed_at: clock.now() });
    }

    async destroy(id: string): Promise<void> {
      this.refuseClientWrites();
      await db('oidc_payloads').where({ model: this.model, id }).del();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      this.refuseClientWrites();
      await db('oidc_payloads').where({ model: this.model, grant_id: grantId }).del();
    }
  };
}

/** Deletes expired rows. @returns how many. */
export async function sweepExpired(db: Db, clock: Clock): Promise<number> {
  return db('oidc_payloads').whereNotNull('expires_at').andWhere('expires_at', '<=', clock.now()).del();
}
