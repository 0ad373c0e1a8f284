/**
 * The challenge (`twoFactorId`): the one state machine every door onto the
 * second factor uses. No HTTP and no oidc-provider here.
 *
 * pending --verify ok--> succeeded
 *         --verify bad (attempts++)--> pending | failed (out of attempts)
 *         --time passes--> (expired: no longer found)
 */
import type { Db } from '../store/db.ts';
import type { ChallengesStore, ChallengeRecord, ChallengeMethod, ChallengeOrigin } from '../store/challenges.ts';
import type { FactorsStore } from '../store/factors.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import type { FactorService } from './factors/index.ts';
import type { DomainMetrics } from '../metrics.ts';
import { AppError, assertThat } from '../errors.ts';
import { randomToken } from '../lib/random.ts';
import { sha256 } from '../lib/hash.ts';
import { amrAfterSecondFactor, ACR, type Acr, type Amr } from './amr.ts';

export type Challenge = ChallengeRecord;

export interface ChallengeOutcome {
  userId: string;
  clientId: string;
  amr: Amr[];
  acr: Acr;
  method: ChallengeMethod;
  appState: unknown;
}

/** A method as answered to clients (242 responses, the verification API). */
export interface PublicMethod {
  id: string;
  method: string;
  authenticator?: { algorithm: string; codeLength: number; timeStep: number };
  enrollment?: { secret: string; uri: string };
}

export type ChallengeService = ReturnType<typeof createChallengeService>;

export function createChallengeService(deps: {
  db: Db;
  clock: Clock;
  challenges: ChallengesStore;
  factors: FactorsStore;
  events: EventsStore;
  factorService: FactorService;
  metrics: DomainMetrics;
  ttlSeconds: number;
  maxAttempts: number;
}) {
  const { db, clock, challenges, factors, events, factorService } = deps;

  async function insert(input: {
    userId: string; clientId: string; origin: ChallengeOrigin; binding: string | null; amr: string[];
    methods: ChallengeMethod[]; enrollmentFactorId: string | null; appState?: unknown;
  }): Promise<{ twoFactorId: string; challenge: Challenge }> {
    // 256 random bits; only its hash is stored.
    const twoFactorId = randomToken(32);
    const record = { id: sha256(twoFactorId), ...input, appState: input.appState, expiresAt: clock.now() + deps.ttlSeconds * 1000 };
    if (input.binding) await challenges.voidByBinding(input.binding);
    await challenges.insert(record);
    await events.record({ type: 'mfa.challenge.created', userId: input.userId, clientId: input.clientId, details: { origin: input.origin } });
    return { twoFactorId, challenge: { ...record, state: 'pending', attempts: 0, createdAt: clock.now(), completedAt: null } };
  }

  return {
    /**
     * Starts a second-factor check for a user who has an active factor.
     * @throws AppError mfa.enrollment_required when the user has none.
     */
    async begin(input: { userId: string; clientId: string; origin: ChallengeOrigin; binding: string | null; amr: string[]; appState?: unknown }) {
      const active = (await factors.listByUser(input.userId)).filter((f) => f.status === 'ACTIVE');
      assertThat(active.length > 0, 'mfa.enrollment_required');
      const methods: ChallengeMethod[] = active.map((f) => ({ id: f.id, method: 'authenticator', factorId: f.id }));
      return insert({ ...input, methods, enrollmentFactorId: null });
    },

    /**
     * Starts a check that is answered by activating a new authenticator: the
     * user scans the seed and proves it with a first code.
     */
    async beginEnrollment(input: { userId: string; clientId: string; origin: ChallengeOrigin; binding: string | null; amr: string[]; accountName: string; appState?: unknown }) {
      const { factor } = await factorService.enrollTotp({ userId: input.userId, accountName: input.accountName });
      // Seeds from abandoned enrolments are never usable; don't let them pile up.
      await factors.deletePendingOfType(input.userId, 'token:software:totp', factor.id);
      const methods: ChallengeMethod[] = [{ id: factor.id, method: 'authenticator', factorId: factor.id }];
      const { accountName: _, ...rest } = input;
      return insert({ ...rest, methods, enrollmentFactorId: factor.id });
    },

    /**
     * A live challenge by its twoFactorId, checked against the binding of the
     * caller. A wrong binding answers exactly like an unknown id.
     * @throws AppError mfa.challenge_not_found
     */
    async find(twoFactorId: string, binding?: string | null): Promise<Challenge> {
      const c = typeof twoFactorId === 'string' && twoFactorId.length <= 100 ? await challenges.findLive(sha256(twoFactorId)) : undefined;
      assertThat(c && (binding === undefined || c.binding === binding), 'mfa.challenge_not_found');
      return c;
    },

    /**
     * The methods as a client sees them (FusionAuth's shape): a stable id, the
     * method name and its details; for an enrolment, the seed to show once.
     */
    async describe(challenge: Challenge, accountName: string): Promise<PublicMethod[]> {
      return Promise.all(challenge.methods.map(async (m) => {
        const factor = await factors.findById(m.factorId);
        if (!factor) return { id: m.id, method: m.method };
        const s = factorService.settingsOf(factor);
        const authenticator = { algorithm: `Hmac${s.algorithm}`, codeLength: s.digits, timeStep: s.period };
        if (factor.id !== challenge.enrollmentFactorId) return { id: m.id, method: m.method, authenticator };
        const { secret, uri } = factorService.pendingTotpDetails(factor, accountName);
        return { id: m.id, method: m.method, authenticator, enrollment: { secret, uri } };
      }));
    },

    /**
     * True when the holder of `binding` answered a second factor within the
     * last `withinSeconds`: what sensitive account changes ask for, instead
     * of trusting a session that may be hours old.
     */
    hasFreshSuccess: (binding: string, withinSeconds: number) => challenges.succeededSince(binding, clock.now() - withinSeconds * 1000),

    /** The live challenge of an interaction, if its password step was done. */
    findByBinding: (binding: string) => challenges.findLiveByBinding(binding),

    /**
     * Checks a code and, when it is right, spends the challenge and the TOTP
     * step in one transaction.
     * @throws AppError mfa.invalid_code (wrong, malformed or replayed: one answer),
     *   mfa.too_many_attempts, mfa.challenge_not_found, mfa.method_not_available
     */
    async verify(challenge: Challenge, input: { methodId?: string | undefined; code: string }): Promise<ChallengeOutcome> {
      const method = input.methodId === undefined ? challenge.methods[0] : challenge.methods.find((m) => m.id === input.methodId);
      assertThat(method, 'mfa.method_not_available');

      // Reserve the attempt before evaluating, so parallel guesses cannot
      // evaluate more codes than the limit allows.
      if (!(await challenges.reserveAttempt(challenge.id, deps.maxAttempts))) {
        const used = await challenges.attempts(challenge.id);
        throw new AppError(used >= deps.maxAttempts ? 'mfa.too_many_attempts' : 'mfa.challenge_not_found');
      }

      let accepted = false;
      try {
        const factor = await factors.findById(method.factorId);
        const usable = factor && factor.userId === challenge.userId
          && (factor.status === 'ACTIVE' || factor.id === challenge.enrollmentFactorId);
        const step = usable ? await factorService.matchTotp(factor, input.code) : null;
        if (step !== null) {
          accepted = await db.transaction(async (trx) => {
            const stepOk = await factors.acceptTimeStep(method.factorId, step, factor!.status === 'PENDING_ACTIVATION', trx);
            if (!stepOk) return false;
            if (!(await challenges.complete(challenge.id, 'succeeded', method.method, trx))) {
              throw new AppError('mfa.challenge_not_found');
            }
            return true;
          });
        }
      } catch (err) {
        // A server error must not cost the user an attempt.
        if (!(err instanceof AppError)) await challenges.refundAttempt(challenge.id);
        throw err;
      }

      if (!accepted) {
        await events.record({ type: 'mfa.challenge.failed', userId: challenge.userId, clientId: challenge.clientId, details: { method: method.method } });
        if ((await challenges.attempts(challenge.id)) >= deps.maxAttempts) {
          await challenges.complete(challenge.id, 'failed', null);
          deps.metrics.recordSecondFactor(method.method, 'too_many_attempts');
          deps.metrics.recordSignIn('second_factor_failed');
          throw new AppError('mfa.too_many_attempts');
        }
        deps.metrics.recordSecondFactor(method.method, 'invalid');
        throw new AppError('mfa.invalid_code');
      }

      if (challenge.enrollmentFactorId) {
        await events.record({ type: 'factor.activated', userId: challenge.userId, details: { factorId: method.factorId, type: 'token:software:totp' } });
      }
      deps.metrics.recordSecondFactor(method.method, 'success');
      await events.record({ type: 'mfa.challenge.succeeded', userId: challenge.userId, clientId: challenge.clientId, details: { method: method.method } });
      const amr = amrAfterSecondFactor(challenge.amr, method.method);
      // A passed challenge is a second factor: when the first was the
      // calling app's own (verification API), it vouches for it.
      return { userId: challenge.userId, clientId: challenge.clientId, amr, acr: ACR.mfa, method, appState: challenge.appState };
    },
  };
}
