/**
 * The account's second-factor lock-out: one failure count per user, kept in
 * the database, shared by every method and every door (hosted pages, JSON
 * interaction API, verification API, management API factor verify). After
 * `maxFailures` wrong answers the second factor is locked for `lockSeconds`,
 * doubling with each repeat up to `maxLockSeconds`; while locked even the
 * right answer is refused. A full success clears the count; a new password
 * step does not.
 *
 * Usage, around every evaluation of an answer:
 *   await lock.reserve(userId)         // throws mfa.locked
 *   …evaluate…
 *   right: await lock.succeeded(userId) | wrong: await lock.failed(userId) | server error: await lock.refund(userId)
 */
import type { ThrottlesStore } from '../store/throttles.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import { AppError } from '../errors.ts';

export interface LockoutPolicy {
  maxFailures: number;
  lockSeconds: number;
  maxLockSeconds: number;
}

export interface LockStatus {
  locked: boolean;
  lockedUntil: number | null;
  /** Seconds until the lock ends (0 when not locked). */
  retryAfter: number;
  failures: number;
}

export type SecondFactorLock = ReturnType<typeof createSecondFactorLock>;

export function createSecondFactorLock(deps: {
  throttles: ThrottlesStore;
  events: EventsStore;
  clock: Clock;
  policy: LockoutPolicy;
  /** Told when an account gets locked (metrics, a notice to the user). */
  onLocked?: (userId: string, until: number) => Promise<void> | void;
}) {
  const { throttles, events, clock, policy } = deps;
  const key = (userId: string) => `mfa:${userId}`;
  const durationOf = (level: number) => Math.min(policy.lockSeconds * 2 ** Math.min(level, 20), policy.maxLockSeconds) * 1000;

  async function lockedError(userId: string): Promise<AppError> {
    const state = await throttles.get(key(userId));
    const until = state?.lockedUntil ?? clock.now() + policy.lockSeconds * 1000;
    const retryAfter = Math.max(1, Math.ceil((until - clock.now()) / 1000));
    return new AppError('mfa.locked', { details: { retryAfter } });
  }

  return {
    /** The error a locked account answers with (`details.retryAfter` in seconds). */
    lockedError,

    /**
     * Counts a failure in advance, before an answer is evaluated.
     * @throws AppError mfa.locked (with `details.retryAfter` in seconds)
     */
    async reserve(userId: string): Promise<void> {
      if (!(await throttles.reserveFailure(key(userId), policy.maxFailures))) throw await lockedError(userId);
    },

    /** The answer was wrong: the reserved failure stays, and the account is locked once the limit is reached. */
    async failed(userId: string): Promise<void> {
      const until = await throttles.lockIfExhausted(key(userId), policy.maxFailures, durationOf);
      if (until === null) return;
      await events.record({ type: 'user.locked', userId, details: { until, reason: 'second_factor_failures' } });
      await deps.onLocked?.(userId, until);
    },

    /** The evaluation failed on our side: the user did not spend a try. */
    refund: (userId: string) => throttles.refundFailure(key(userId)),

    /** A full success: the count starts again. */
    async succeeded(userId: string, trx?: Db): Promise<void> {
      await throttles.clear(key(userId), trx);
    },

    async status(userId: string): Promise<LockStatus> {
      const s = await throttles.get(key(userId));
      const locked = Boolean(s?.lockedUntil && s.lockedUntil > clock.now());
      const lockedUntil = locked ? s!.lockedUntil : null;
      const retryAfter = lockedUntil ? Math.ceil((lockedUntil - clock.now()) / 1000) : 0;
      return { locked, lockedUntil, retryAfter, failures: s?.count ?? 0 };
    },

    /** An admin ends a lock-out (and the failure count). @returns whether there was anything to clear. */
    async unlock(userId: string, actor: string | null): Promise<boolean> {
      const cleared = await throttles.clear(key(userId));
      if (cleared) await events.record({ type: 'user.unlocked', userId, details: actor ? { actor } : {} });
      return cleared;
    },
  };
}
