/**
 * Enrolment grace for the `required` policy: a user without a second factor
 * may skip setting one up a configured number of times, or until a date, and
 * then must enrol. A skipped enrolment signs in with the password alone
 * (acr password), and never satisfies a request that asks for a second-factor
 * level: those have no grace.
 */
import type { EnrollmentGraceStore } from '../store/enrollment-grace.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import { AppError } from '../errors.ts';
import { requestsSecondFactor } from './policy.ts';

export interface GracePolicy {
  /** Skips allowed per user (0: none). */
  skips: number;
  /** ISO date before which skipping is allowed however often (null: no date). */
  until: string | null;
}

export interface GraceStatus {
  allowed: boolean;
  /** Skips left by count (null while the date allows unlimited skips). */
  remaining: number | null;
  until: number | null;
}

export type EnrollmentGrace = ReturnType<typeof createEnrollmentGrace>;

export function createEnrollmentGrace(deps: { store: EnrollmentGraceStore; events: EventsStore; clock: Clock; policy: GracePolicy }) {
  const { store, clock, policy } = deps;
  const until = policy.until ? Date.parse(policy.until) : null;
  const dateAllows = () => until !== null && clock.now() < until;

  /** @param requestedAcrs what the relying party asked for: a second-factor level has no grace. */
  async function status(userId: string, requestedAcrs: readonly string[] = []): Promise<GraceStatus> {
    if (requestsSecondFactor(requestedAcrs)) return { allowed: false, remaining: 0, until: null };
    if (dateAllows()) return { allowed: true, remaining: null, until };
    const { count } = await store.skips(userId);
    const remaining = Math.max(0, policy.skips - count);
    return { allowed: remaining > 0, remaining, until: null };
  }

  return {
    status,

    /**
     * Records a skip.
     * @throws AppError mfa.enrollment_required when no grace is left (also
     *   under concurrent skips), or the request asked for a second-factor level.
     */
    async skip(userId: string, clientId: string, requestedAcrs: readonly string[]): Promise<void> {
      const ok = !requestsSecondFactor(requestedAcrs) && await store.recordSkip(userId, dateAllows() ? null : policy.skips);
      if (!ok) throw new AppError('mfa.enrollment_required');
      await deps.events.record({ type: 'mfa.enrollment_skipped', userId, clientId });
    },

    /**
     * True when the user skipped enrolment in the sign-in made at `loginMs`:
     * the skip and the sign-in happen in one request, so they are seconds
     * apart. An older session is not covered by a later skip.
     */
    async skippedAt(userId: string, loginMs: number): Promise<boolean> {
      const { lastAt } = await store.skips(userId);
      return lastAt !== null && Math.abs(lastAt - loginMs) <= 5_000;
    },
  };
}
