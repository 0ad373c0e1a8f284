/**
 * Recovery codes: one row per code, only a keyed hash stored. Spending is one
 * guarded write, so a code works once even under concurrent submissions.
 */
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { uuid } from '../lib/random.ts';

export type RecoveryCodesStore = ReturnType<typeof createRecoveryCodesStore>;

export function createRecoveryCodesStore(db: Db, clock: Clock) {
  return {
    /** Voids the user's codes and stores these (hashes) instead. */
    async replace(userId: string, hashes: readonly string[], trx: Db = db): Promise<void> {
      await trx('recovery_codes').where({ user_id: userId }).del();
      const now = clock.now();
      await trx('recovery_codes').insert(hashes.map((hash) => ({ id: uuid(), user_id: userId, hash, created_at: now, used_at: null })));
    },
    async isUnused(userId: string, hash: string): Promise<boolean> {
      return (await db('recovery_codes').where({ user_id: userId, hash }).whereNull('used_at').first('id')) !== undefined;
    },
    /** @returns false when the code was used already (or never existed). */
    async spend(userId: string, hash: string, trx: Db = db): Promise<boolean> {
      return (await trx('recovery_codes').where({ user_id: userId, hash }).whereNull('used_at').update({ used_at: clock.now() })) === 1;
    },
    async remaining(userId: string, trx: Db = db): Promise<number> {
      const r = await trx('recovery_codes').where({ user_id: userId }).whereNull('used_at').count<{ n: number | string }[]>({ n: '*' });
      return Number(r[0]?.n ?? 0);
    },
    /** True when the user has ever had a set (used up or not). */
    async hasSet(userId: string, trx: Db = db): Promise<boolean> {
      return (await trx('recovery_codes').where({ user_id: userId }).first('id')) !== undefined;
    },
    async deleteAll(userId: string, trx: Db = db): Promise<void> {
      await trx('recovery_codes').where({ user_id: userId }).del();
    },
  };
}
