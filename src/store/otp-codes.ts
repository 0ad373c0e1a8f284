/**
 * Codes sent by SMS or email. Only a keyed hash is stored; a code is bound to
 * its factor and to the challenge that asked for it (or to no challenge, for
 * an activation through the management API). Sending a new code spends the
 * previous one; using a code is one guarded write.
 */
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { uuid } from '../lib/random.ts';

export interface OtpCode {
  id: string;
  hash: string;
  expiresAt: number;
}

export type OtpCodesStore = ReturnType<typeof createOtpCodesStore>;

export function createOtpCodesStore(db: Db, clock: Clock) {
  const scope = (factorId: string, challengeId: string | null) => (q: ReturnType<Db>) =>
    challengeId === null ? q.where({ factor_id: factorId }).whereNull('challenge_id') : q.where({ factor_id: factorId, challenge_id: challengeId });

  return {
    /** A new id, so the caller can bind the hash to it. */
    newId: () => uuid(),

    /** Stores a code and spends every earlier one of the same factor and challenge (a resend voids the last code). */
    async replace(input: { id: string; userId: string; factorId: string; challengeId: string | null; hash: string; expiresAt: number }): Promise<void> {
      const now = clock.now();
      await db.transaction(async (trx) => {
        await scope(input.factorId, input.challengeId)(trx('otp_codes')).whereNull('spent_at').update({ spent_at: now });
        await trx('otp_codes').insert({
          id: input.id, user_id: input.userId, factor_id: input.factorId, challenge_id: input.challengeId,
          hash: input.hash, created_at: now, expires_at: input.expiresAt, spent_at: null,
        });
      });
    },

    /** The live (unspent, unexpired) code of the factor and challenge, if any. */
    async findLive(factorId: string, challengeId: string | null): Promise<OtpCode | undefined> {
      const r = await scope(factorId, challengeId)(db('otp_codes')).whereNull('spent_at').andWhere('expires_at', '>', clock.now())
        .orderBy('created_at', 'desc').first('id', 'hash', 'expires_at');
      return r && { id: r.id, hash: r.hash, expiresAt: Number(r.expires_at) };
    },

    /** @returns false when it was spent (used, superseded) or expired meanwhile. */
    async spend(id: string, trx: Db = db): Promise<boolean> {
      const now = clock.now();
      return (await trx('otp_codes').where({ id }).whereNull('spent_at').andWhere('expires_at', '>', now).update({ spent_at: now })) === 1;
    },

    /** Removes a code whose delivery failed: it was never seen, so it must not count as sent. */
    async remove(id: string): Promise<void> {
      await db('otp_codes').where({ id }).del();
    },

    async sweep(olderThan: number): Promise<number> {
      return db('otp_codes').where('expires_at', '<', olderThan).del();
    },
  };
}
