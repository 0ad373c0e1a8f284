/**
 * The password step and what follows it, shared by every door that signs a
 * user in (hosted pages, JSON interaction API, `/api/login`): check the
 * password, decide from policy whether a second factor is needed, and if so
 * start the challenge.
 */
import type { MfaPolicy } from '../config.ts';
import type { User } from '../store/users.ts';
import type { ChallengeOrigin } from '../store/challenges.ts';
import type { UserService } from '../users/users.ts';
import type { ChallengeService, Challenge } from './challenges.ts';
import { requestsPhishingResistant, requestsSecondFactor, secondFactorRequirement } from './policy.ts';
import { ACR, type Acr } from './amr.ts';
import { AppError } from '../errors.ts';
import type { EventsStore } from '../store/events.ts';
import type { DomainMetrics } from '../metrics.ts';
import type { PasswordThrottle } from '../users/password-throttle.ts';
import type { EnrollmentGrace } from './enrollment-grace.ts';

export interface SignInContext {
  clientId: string;
  /** The client's policy, or the global one. */
  policy: MfaPolicy;
  /** acr values the relying party asked for. */
  requestedAcrs: readonly string[];
  origin: ChallengeOrigin;
  /** The interaction uid or API call the challenge is bound to. */
  binding: string | null;
  ip?: string;
  /** The calling app's state, echoed back when the challenge completes. */
  appState?: unknown;
  /** True when this browser is remembered for the user (hosted sign-in only). */
  trustedBrowser?: (userId: string) => Promise<boolean>;
}

export type SignInStep =
  | { kind: 'complete'; user: User; amr: ['pwd']; acr: Acr }
  | { kind: 'second_factor'; user: User; twoFactorId: string; challenge: Challenge };

export type SignInService = ReturnType<typeof createSignInService>;

export function createSignInService(deps: {
  users: UserService; challenges: ChallengeService; events: EventsStore; metrics: DomainMetrics; passwordThrottle: PasswordThrottle;
  /** Enrolment grace; without it enrolment cannot be put off. */
  grace?: EnrollmentGrace;
  hasActiveFactor(userId: string): Promise<boolean>;
}) {
  const { users, challenges, events, metrics } = deps;

  async function completed(input: { userId: string; clientId: string; amr: readonly string[]; ip?: string }): Promise<void> {
    metrics.recordSignIn('success', input.amr);
    await events.record({ type: 'login.succeeded', userId: input.userId, clientId: input.clientId, ip: input.ip ?? null, details: { amr: input.amr } });
  }

  /** Starts the check for the factor this sign-in still needs (or the enrolment of one). */
  async function secondFactorFor(user: User, amr: string[], ctx: SignInContext, requirement: 'verify' | 'enroll') {
    const base = { userId: user.id, clientId: ctx.clientId, origin: ctx.origin, binding: ctx.binding, amr, appState: ctx.appState };
    const phishingResistant = requestsPhishingResistant(ctx.requestedAcrs);
    // A new authenticator app cannot satisfy a request for a passkey.
    if (phishingResistant && requirement === 'enroll') throw new AppError('mfa.level_unavailable');
    const { twoFactorId, challenge } = requirement === 'enroll'
      ? await challenges.beginEnrollment({ ...base, accountName: user.email })
      : await challenges.begin({ ...base, phishingResistant });
    return { kind: 'second_factor' as const, user, twoFactorId, challenge };
  }

  return {
    /**
     * @throws AppError auth.invalid_credentials (unknown user, wrong password
     *   and suspended user alike), auth.throttled (too many failures for this
     *   login id: known or not, the same answer)
     */
    async passwordStep(loginId: string, password: string, ctx: SignInContext): Promise<SignInStep> {
      await deps.passwordThrottle.reserve(loginId);
      const user = await users.authenticate(loginId, password, { clientId: ctx.clientId, ...(ctx.ip ? { ip: ctx.ip } : {}) });
      if (!user) {
        metrics.recordSignIn('invalid_credentials');
        throw new AppError('auth.invalid_credentials');
      }
      await deps.passwordThrottle.succeeded(loginId);
      const need = secondFactorRequirement({ policy: ctx.policy, requestedAcrs: ctx.requestedAcrs, hasActiveFactor: await deps.hasActiveFactor(user.id) });
      if (need === 'none') return { kind: 'complete', user, amr: ['pwd'], acr: ACR.password };
      // A remembered browser skips a factor only the policy asks for, and the
      // token says the password alone was used; a requested level is always asked.
      if (need === 'verify' && !requestsSecondFactor(ctx.requestedAcrs) && ctx.trustedBrowser && await ctx.trustedBrowser(user.id)) {
        return { kind: 'complete', user, amr: ['pwd'], acr: ACR.password };
      }
      return secondFactorFor(user, ['pwd'], ctx, need);
    },

    /**
     * Puts off enrolment (grace): the enrolment challenge is abandoned and
     * the sign-in finishes with the password alone, and says so.
     * @throws AppError mfa.enrollment_required (no grace left, or a level was
     *   requested), interaction.unexpected_step (not an enrolment, or no grace configured)
     */
    async skipEnrollment(challenge: Challenge, requestedAcrs: readonly string[], ip?: string): Promise<{ accountId: string; amr: ['pwd']; acr: Acr }> {
      if (!deps.grace || !challenge.enrollmentFactorId) throw new AppError('interaction.unexpected_step');
      await deps.grace.skip(challenge.userId, challenge.clientId, requestedAcrs);
      await challenges.abandon(challenge);
      await completed({ userId: challenge.userId, clientId: challenge.clientId, amr: ['pwd'], ...(ip ? { ip } : {}) });
      return { accountId: challenge.userId, amr: ['pwd'], acr: ACR.password };
    },

    /** Records a finished sign-in (every factor done) in the audit trail. */
    completed,

    /**
     * A second-factor check for a user some other way already identified:
     * step-up of an existing session (`amr` from the session), or an app that
     * did its own password login (`amr` empty).
     * @throws AppError user.not_found, mfa.enrollment_required (when enrolment
     *   is not possible through this door)
     */
    async secondFactorStep(userId: string, amr: string[], ctx: SignInContext & { allowEnrollment: boolean }) {
      const user = await users.findById(userId);
      if (!user || user.status !== 'ACTIVE') throw new AppError('user.not_found');
      const has = await deps.hasActiveFactor(user.id);
      if (!has && !ctx.allowEnrollment) throw new AppError('mfa.enrollment_required');
      return secondFactorFor(user, amr, ctx, has ? 'verify' : 'enroll');
    },
  };
}
