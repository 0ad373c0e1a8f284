/**
 * Enrolment grace: a user who must set up a second factor may skip it a few
 * times. The count and the last skip live on the user's row.
 */
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export type EnrollmentGraceStore = ReturnType<typeof createEnrollmentGraceStore>;

export function createEnrollmentGraceStore(db: Db, clock: Clock) {
  return {
    async skips(userId: string): Promise<{ count: number; lastAt: number | null }> {
      const r = await db('users').where({ id: userId }).first('enrollment_skips', 'enrollment_skipped_at');
      return { count: Number(r?.enrollment_skips ?? 0), lastAt: r?.enrollment_skipped_at == null ? null : Number(r.enrollment_skipped_at) };
    },
    /** Counts a skip while fewer than `max` were used (one guarded write). @returns false when none is left. */
    async recordSkip(userId: string, max: number | null): Promise<boolean> {
      const q = db('users').where({ id: userId });
      if (max !== null) q.andWhere('enrollment_skips', '<', max);
      return (await q.update({ enrollment_skips: db.raw('enrollment_skips + 1'), enrollment_skipped_at: clock.now() })) === 1;
    },
  };
}
