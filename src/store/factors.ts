import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { uuid } from '../lib/random.ts';

/** Okta's factorType names; `webauthn` is one passkey or security key. */
export type FactorType = 'token:software:totp' | 'sms' | 'email' | 'webauthn';
export type FactorStatus = 'PENDING_ACTIVATION' | 'ACTIVE';

export interface Factor {
  id: string;
  userId: string;
  type: FactorType;
  status: FactorStatus;
  name: string;
  secretSealed: string | null;
  settings: Record<string, unknown>;
  lastTimeStep: number | null;
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number | null;
}

interface Row {
  id: string; user_id: string; type: string; status: string; name: string; secret_sealed: string | null;
  settings: string; last_time_step: number | null; created_at: number; updated_at: number; last_used_at: number | null;
}

function toFactor(r: Row): Factor {
  return {
    id: r.id, userId: r.user_id, type: r.type as FactorType, status: r.status as FactorStatus, name: r.name,
    secretSealed: r.secret_sealed, settings: parseJson(r.settings),
    lastTimeStep: r.last_time_step === null ? null : Number(r.last_time_step),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  };
}

export type FactorsStore = ReturnType<typeof createFactorsStore>;

export function createFactorsStore(db: Db, clock: Clock) {
  return {
    /** A new id, so the caller can seal the secret with the id as context before inserting. */
    newId: () => uuid(),
    async insert(f: { id: string; userId: string; type: FactorType; name: string; secretSealed: string | null; settings: Record<string, unknown> }): Promise<Factor> {
      const now = clock.now();
      const row: Row = {
        id: f.id, user_id: f.userId, type: f.type, status: 'PENDING_ACTIVATION', name: f.name,
        secret_sealed: f.secretSealed, settings: JSON.stringify(f.settings), last_time_step: null,
        created_at: now, updated_at: now, last_used_at: null,
      };
      await db('factors').insert(row);
      return toFactor(row);
    },
    async findById(id: string): Promise<Factor | undefined> {
      const r = await db<Row>('factors').where({ id }).first();
      return r && toFactor(r);
    },
    async listByUser(userId: string): Promise<Factor[]> {
      return (await db<Row>('factors').where({ user_id: userId }).orderBy('created_at')).map(toFactor);
    },
    async hasActive(userId: string, trx: Db = db): Promise<boolean> {
      const r = await trx('factors').where({ user_id: userId, status: 'ACTIVE' }).first('id');
      return r !== undefined;
    },
    /**
     * Records an accepted TOTP step with one guarded write: it succeeds only if
     * no step at or after `timeStep` was accepted before, so of two concurrent
     * submissions of the same code exactly one wins.
     * @returns false when the step was already used (a replay or a lost race).
     */
    async acceptTimeStep(id: string, timeStep: number, activate: boolean, trx: Db = db): Promise<boolean> {
      const now = clock.now();
      const n = await trx('factors')
        .where({ id })
        .andWhere((q) => q.whereNull('last_time_step').orWhere('last_time_step', '<', timeStep))
        .update({
          last_time_step: timeStep, last_used_at: now, updated_at: now,
          ...(activate ? { status: 'ACTIVE' } : {}),
        });
      return n === 1;
    },
    /** Records a use (and activates a pending factor) after a sent code or passkey was accepted. */
    async markUsed(id: string, activate: boolean, trx: Db = db): Promise<void> {
      const now = clock.now();
      await trx('factors').where({ id }).update({ last_used_at: now, updated_at: now, ...(activate ? { status: 'ACTIVE' } : {}) });
    },
    /** A factor only if it belongs to `userId`, so one user's id never reaches another user's factor. */
    async findOfUser(userId: string, id: string): Promise<Factor | undefined> {
      const r = await db<Row>('factors').where({ id, user_id: userId }).first();
      return r && toFactor(r);
    },
    async hasActiveOfType(userId: string, type: FactorType): Promise<boolean> {
      const r = await db('factors').where({ user_id: userId, type, status: 'ACTIVE' }).first('id');
      return r !== undefined;
    },
    /**
     * Merges `patch` into the factor's settings JSON (non-secret metadata such
     * as the management API's `provider`). Read and write share a transaction.
     * @returns the updated factor, or undefined when no such factor.
     */
    /** @returns false when the user has no such factor. */
    async rename(userId: string, id: string, name: string): Promise<boolean> {
      return (await db('factors').where({ id, user_id: userId }).update({ name, updated_at: clock.now() })) === 1;
    },
    async mergeSettings(id: string, patch: Record<string, unknown>): Promise<Factor | undefined> {
      return db.transaction(async (trx) => {
        const r = await trx<Row>('factors').where({ id }).first();
        if (!r) return undefined;
        const changes = { settings: JSON.stringify({ ...parseJson<Record<string, unknown>>(r.settings), ...patch }), updated_at: clock.now() };
        await trx('factors').where({ id }).update(changes);
        return toFactor({ ...r, ...changes });
      });
    },
    /** @returns false when `userId` has no factor `id`. */
    async deleteOfUser(userId: string, id: string, trx: Db = db): Promise<boolean> {
      return (await trx('factors').where({ id, user_id: userId }).del()) > 0;
    },
    /** @returns how many factors were deleted. */
    async deleteAllOfUser(userId: string, trx: Db = db): Promise<number> {
      return trx('factors').where({ user_id: userId }).del();
    },
    async deletePendingOfType(userId: string, type: FactorType, exceptId?: string): Promise<void> {
      const q = db('factors').where({ user_id: userId, type, status: 'PENDING_ACTIVATION' });
      if (exceptId) q.whereNot({ id: exceptId });
      await q.del();
    },
  };
}
