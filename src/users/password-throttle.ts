/**
 * A soft throttle on password failures, per login id: a few free tries, then
 * a wait between tries that doubles with each failure (capped). It delays
 * guessing without locking anyone out of their account, and it is keyed on
 * the login id as typed (normalised), not on the account, so an unknown
 * address is throttled exactly like a known one: the answer says nothing
 * about who exists.
 */
import type { ThrottlesStore } from '../store/throttles.ts';
import type { Clock } from '../lib/clock.ts';
import { sha256 } from '../lib/hash.ts';
import { AppError } from '../errors.ts';

export interface PasswordThrottlePolicy {
  freeFailures: number;
  baseDelaySeconds: number;
  maxDelaySeconds: number;
}

export type PasswordThrottle = ReturnType<typeof createPasswordThrottle>;

export function createPasswordThrottle(deps: { throttles: ThrottlesStore; clock: Clock; policy: PasswordThrottlePolicy }) {
  const { throttles, clock, policy } = deps;
  // Hashed: the throttle table is not a list of the addresses people typed.
  const key = (loginId: string) => `pwd:${sha256(loginId.normalize('NFC').trim().toLowerCase())}`;
  const delayAfter = (failures: number) => {
    const extra = failures - policy.freeFailures;
    return extra < 0 ? 0 : Math.min(policy.baseDelaySeconds * 2 ** Math.min(extra, 30), policy.maxDelaySeconds) * 1000;
  };

  return {
    /**
     * Counts a failure in advance, before the password is checked, so that
     * parallel guesses cannot all slip in before the first failure is written:
     * one conditional write per try, and a try that loses the race re-reads.
     * @throws AppError auth.throttled (details.retryAfter in seconds) while the wait after the last failure runs.
     */
    async reserve(loginId: string): Promise<void> {
      const k = key(loginId);
      for (;;) {
        const state = await throttles.get(k);
        const count = state?.count ?? 0;
        const until = state ? state.windowStart + delayAfter(count) : 0;
        if (clock.now() < until) {
          throw new AppError('auth.throttled', { details: { retryAfter: Math.ceil((until - clock.now()) / 1000) } });
        }
        if (await throttles.recordFailureIf(k, count)) return;
      }
    },
    /** The password was right: the reserved failure and the count are forgotten. */
    async succeeded(loginId: string): Promise<void> {
      await throttles.clear(key(loginId));
    },
  };
}
