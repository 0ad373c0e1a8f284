/**
 * The challenge (`twoFactorId`): the one state machine every door onto the
 * second factor uses. No HTTP and no oidc-provider here.
 *
 * pending --verify ok--> succeeded
 *         --verify bad (attempts++)--> pending | failed (out of attempts, or account locked)
 *         --time passes--> (expired: no longer found)
 *
 * Each kind of factor is a MethodHandler (./methods.ts); this module owns
 * what is common to all: attempts, the account's lock-out, the transaction,
 * the audit trail and the amr/acr of the outcome.
 */
import type { Db } from '../store/db.ts';
import type { ChallengesStore, ChallengeRecord, ChallengeMethod, ChallengeOrigin } from '../store/challenges.ts';
import type { Factor, FactorsStore } from '../store/factors.ts';
import { credentialOf } from './passkeys.ts';
import { amrFor } from './factors/webauthn.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import type { FactorService } from './factors/index.ts';
import type { DomainMetrics } from '../metrics.ts';
import type { SecondFactorLock } from './lockout.ts';
import type { RecoveryCodes } from './recovery-codes.ts';
import type { Answer, MethodHandlers } from './methods.ts';
import type { SentCodes } from './sent-codes.ts';
import type { Push, PushContent } from './push.ts';
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
  /** A first second factor was just activated: the new recovery codes, shown once. */
  recoveryCodes: string[] | null;
  /** After a recovery code was used: how many are left. */
  remainingRecoveryCodes: number | null;
}

/** A method as answered to clients (242 responses, the verification API). */
export interface PublicMethod {
  id: string;
  method: string;
  authenticator?: { algorithm: string; codeLength: number; timeStep: number };
  enrollment?: { secret: string; uri: string };
  /** Masked destination of an email or SMS factor. */
  email?: string;
  mobilePhone?: string;
  /** For a passkey: the options for `navigator.credentials.get()`; answer with `credential`. */
  webauthn?: { options: unknown };
}

/** `ab***@example.com`: enough for the person to recognise, not to harvest. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${email.slice(0, Math.min(2, Math.max(1, at - 1)))}***${email.slice(at)}`;
}

/** `+*******1234` */
export function maskPhone(phone: string): string {
  return `${phone.slice(0, 1)}${'*'.repeat(Math.max(0, phone.length - 5))}${phone.slice(-4)}`;
}

export type ChallengeService = ReturnType<typeof createChallengeService>;

/**
 * The public reference of a challenge (callbacks, logs an app may keep):
 * derived from the stored id, never the twoFactorId, and useless for
 * answering it.
 */
export function challengeRef(challengeId: string): string {
  return `ch_${sha256(`ref:${challengeId}`).slice(0, 32)}`;
}

export function createChallengeService(deps: {
  db: Db;
  clock: Clock;
  challenges: ChallengesStore;
  factors: FactorsStore;
  events: EventsStore;
  factorService: FactorService;
  metrics: DomainMetrics;
  lock: SecondFactorLock;
  recoveryCodes: RecoveryCodes;
  handlers: MethodHandlers;
  sentCodes: SentCodes;
  /** Passkey request options for clients that build their own screens (242 answers). */
  passkeyOptions?: (challenge: Challenge) => Promise<{ options: unknown } | null>;
  /** Push approval, when devices can be linked. */
  push?: Push;
  /** True when the user has a linked device to push to. */
  hasPushDevice?: (userId: string) => Promise<boolean>;
  /** Posts outcomes to the client's callback URL (from the outbox, signed). */
  callbacks?: { enqueue(trx: Db, event: { clientId: string; type: 'challenge.succeeded' | 'challenge.failed' | 'challenge.expired'; data: { challengeRef: string; userId: string; state?: unknown; method?: string } }): Promise<unknown> };
  /** Tells the person a factor was added (enrolment at sign-in or on the security page). */
  notify?: (userId: string, change: 'factor-added', factorName: string) => Promise<void>;
  ttlSeconds: number;
  maxAttempts: number;
}) {
  const { db, clock, challenges, factors, events, factorService, lock } = deps;

  async function pushRequest(challenge: Challenge): Promise<{ state: 'pending' | 'approved' | 'denied'; number: string } | undefined> {
    const r = deps.push ? await deps.push.current(challenge) : undefined;
    return r && r.state !== 'consumed' ? { state: r.state, number: r.number } : undefined;
  }

  /** Ends a challenge as failed and tells the client's callback, in one transaction. */
  async function failChallenge(challenge: Challenge): Promise<void> {
    await db.transaction(async (trx) => {
      if (!(await challenges.complete(challenge.id, 'failed', null, trx))) return;
      await deps.callbacks?.enqueue(trx, { clientId: challenge.clientId, type: 'challenge.failed', data: { challengeRef: challengeRef(challenge.id), userId: challenge.userId, state: challenge.appState } });
    });
  }

  /** Every way the user can answer: each active factor, passkeys together, and recovery codes while some are left. */
  async function methodsOf(userId: string): Promise<ChallengeMethod[]> {
    const active = (await factors.listByUser(userId)).filter((f) => f.status === 'ACTIVE');
    const methods: ChallengeMethod[] = [];
    for (const f of active) {
      if (f.type === 'token:software:totp') methods.push({ id: f.id, method: 'authenticator', factorId: f.id });
      else if (f.type === 'email') methods.push({ id: f.id, method: 'email', factorId: f.id });
      else if (f.type === 'sms') methods.push({ id: f.id, method: 'sms', factorId: f.id });
      else if (f.type === 'webauthn' && !methods.some((m) => m.method === 'webauthn')) methods.push({ id: 'webauthn', method: 'webauthn', factorId: null });
    }
    if (deps.push && deps.hasPushDevice && (await deps.hasPushDevice(userId))) methods.push({ id: 'push', method: 'push', factorId: null });
    if (methods.length > 0 && (await deps.recoveryCodes.remaining(userId)) > 0) {
      methods.push({ id: 'recovery-code', method: 'recovery-code', factorId: null });
    }
    return methods.filter((m) => deps.handlers[m.method]);
  }

  async function insert(input: {
    userId: string; clientId: string; origin: ChallengeOrigin; binding: string | null; amr: string[];
    methods: ChallengeMethod[]; enrollmentFactorId: string | null; appState?: unknown;
  }): Promise<{ twoFactorId: string; challenge: Challenge }> {
    // 256 random bits; only its hash is stored.
    const twoFactorId = randomToken(32);
    const record = { id: sha256(twoFactorId), ...input, appState: input.appState, expiresAt: clock.now() + deps.ttlSeconds * 1000 };
    // A new password step replaces the same user's earlier challenge under this
    // binding; an API key is shared by every user of the app, so never void another user's.
    if (input.binding) await challenges.voidByBinding(input.binding, input.userId);
    await challenges.insert(record);
    await events.record({ type: 'mfa.challenge.created', userId: input.userId, clientId: input.clientId, details: { origin: input.origin } });
    return { twoFactorId, challenge: { ...record, state: 'pending', attempts: 0, createdAt: clock.now(), completedAt: null } };
  }

  return {
    /**
     * Starts a second-factor check for a user who has an active factor.
     * @throws AppError mfa.enrollment_required when the user has none.
     */
    async begin(input: { userId: string; clientId: string; origin: ChallengeOrigin; binding: string | null; amr: string[]; appState?: unknown; phishingResistant?: boolean }) {
      const { phishingResistant, ...rest } = input;
      let methods = await methodsOf(input.userId);
      assertThat(methods.some((m) => m.method !== 'recovery-code'), 'mfa.enrollment_required');
      // Only a passkey is bound to our origin; a code can be phished and relayed.
      if (phishingResistant) methods = methods.filter((m) => m.method === 'webauthn');
      assertThat(methods.length > 0, 'mfa.level_unavailable');
      return insert({ ...rest, methods, enrollmentFactorId: null });
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
     * method name and its details; for an enrolment, the seed to show once;
     * with `passkeyOptions`, the options a client passes to the browser.
     */
    async describe(challenge: Challenge, accountName: string, opts: { passkeyOptions?: boolean } = {}): Promise<PublicMethod[]> {
      return Promise.all(challenge.methods.map(async (m): Promise<PublicMethod> => {
        // Creating passkey options stores a new WebAuthn challenge (voiding the last):
        // only for clients that will use them.
        if (m.method === 'webauthn' && opts.passkeyOptions && deps.passkeyOptions) {
          const webauthn = await deps.passkeyOptions(challenge);
          return webauthn ? { id: m.id, method: m.method, webauthn } : { id: m.id, method: m.method };
        }
        const factor = m.factorId ? await factors.findById(m.factorId) : undefined;
        if (!factor) return { id: m.id, method: m.method };
        if (m.method === 'email') return { id: m.id, method: m.method, email: maskEmail(String(factor.settings.email ?? '')) };
        if (m.method === 'sms') return { id: m.id, method: m.method, mobilePhone: maskPhone(String(factor.settings.phoneNumber ?? '')) };
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
     * Sends (or resends) a code for an email or SMS method of the challenge;
     * the previous code stops working.
     * @throws AppError mfa.method_not_available, mfa.send_limited, delivery.failed
     */
    async sendCode(challenge: Challenge, methodId: string | undefined, content?: PushContent): Promise<{ push?: { ref: string; number: string } }> {
      const method = challenge.methods.find((m) => m.id === methodId) ?? (methodId === undefined ? challenge.methods[0] : undefined);
      if (method?.method === 'push' && deps.push) return { push: await deps.push.send(challenge, content) };
      assertThat(method && (method.method === 'email' || method.method === 'sms') && method.factorId, 'mfa.method_not_available');
      const factor = await factors.findById(method.factorId);
      assertThat(factor && factor.userId === challenge.userId && (factor.status === 'ACTIVE' || factor.id === challenge.enrollmentFactorId), 'mfa.method_not_available');
      await deps.sentCodes.send(factor, challenge.id);
      return {};
    },

    /** A push request's state by public reference, only for the holder of the challenge's binding. */
    async pushStatus(ref: string, binding: string) {
      const found = deps.push ? await deps.push.status(ref) : undefined;
      if (!found) return undefined;
      const c = await challenges.findById(found.record.challengeId);
      return c && c.binding === binding ? found.state : undefined;
    },

    /**
     * Completes an enrolment challenge with a passkey the person has just
     * registered (instead of the authenticator app the challenge offered):
     * registering it proved possession of the new key. The pending
     * authenticator is dropped. `amr` says which kind of key it is.
     * @throws AppError mfa.challenge_not_found (spent or expired meanwhile)
     */
    async completeEnrollmentWithPasskey(challenge: Challenge, passkey: Factor, recoveryCodes: string[] | null): Promise<ChallengeOutcome> {
      assertThat(challenge.enrollmentFactorId, 'mfa.challenge_not_found');
      const credential = credentialOf(passkey);
      assertThat(credential && passkey.userId === challenge.userId, 'mfa.challenge_not_found');
      const passkeyAmr = amrFor(credential);
      await db.transaction(async (trx) => {
        if (!(await challenges.complete(challenge.id, 'succeeded', 'webauthn', trx))) throw new AppError('mfa.challenge_not_found');
        await lock.succeeded(challenge.userId, trx);
        await deps.callbacks?.enqueue(trx, { clientId: challenge.clientId, type: 'challenge.succeeded', data: { challengeRef: challengeRef(challenge.id), userId: challenge.userId, state: challenge.appState, method: 'webauthn' } });
      });
      await factors.deletePendingOfType(challenge.userId, 'token:software:totp');
      await events.record({ type: 'mfa.challenge.succeeded', userId: challenge.userId, clientId: challenge.clientId, details: { method: 'webauthn', enrollment: true } });
      deps.metrics.recordSecondFactor('webauthn', 'success');
      return {
        userId: challenge.userId, clientId: challenge.clientId, amr: amrAfterSecondFactor(challenge.amr, passkeyAmr), acr: ACR.mfa,
        method: { id: 'webauthn', method: 'webauthn', factorId: null }, appState: challenge.appState, recoveryCodes, remainingRecoveryCodes: null,
      };
    },

    /** Ends a challenge nobody will answer (enrolment put off), with its pending factor. */
    async abandon(challenge: Challenge): Promise<void> {
      await challenges.complete(challenge.id, 'failed', null);
      if (challenge.enrollmentFactorId) await factors.deletePendingOfType(challenge.userId, 'token:software:totp');
    },

    /**
     * Marks challenges that expired unanswered and tells their clients'
     * callbacks (run by the sweeper, so it may lag by its interval).
     * @returns how many expired.
     */
    async expireUnanswered(): Promise<number> {
      let n = 0;
      for (const c of await challenges.listExpiredPending(100)) {
        await db.transaction(async (trx) => {
          if (!(await challenges.markExpired(c.id, trx))) return;
          n += 1;
          await deps.callbacks?.enqueue(trx, { clientId: c.clientId, type: 'challenge.expired', data: { challengeRef: challengeRef(c.id), userId: c.userId, state: c.appState } });
        });
      }
      return n;
    },

    /**
     * What a waiting page's script polls: the push request's state, `none`
     * before one is sent, `expired` once the challenge is gone.
     */
    pushProgress: async (challenge: Challenge | undefined): Promise<'pending' | 'approved' | 'denied' | 'none' | 'expired'> =>
      (challenge ? (await pushRequest(challenge))?.state ?? 'none' : 'expired'),

    /** The challenge's push request (state, and the number the page shows), if one was sent. */
    pushRequest,

    /** True when a code was sent for this challenge's email or SMS method and is still good. */
    codeSent: (challenge: Challenge, factorId: string) => deps.sentCodes.hasLive(factorId, challenge.id),

    /** Whether the user's second factor is locked out, and until when. */
    lockStatus: (userId: string) => lock.status(userId),

    /**
     * Checks an answer and, when it is right, spends it and the challenge in
     * one transaction. Every evaluation first reserves a failure on the
     * account's lock-out count and an attempt on the challenge, so parallel
     * guesses through any door never evaluate more answers than the limits.
     * @throws AppError mfa.invalid_code (wrong, malformed, expired, used or
     *   replayed: one answer), mfa.locked, mfa.too_many_attempts,
     *   mfa.challenge_not_found, mfa.method_not_available
     */
    async verify(challenge: Challenge, input: Answer & { methodId?: string | undefined }): Promise<ChallengeOutcome> {
      const method = input.methodId === undefined ? challenge.methods[0] : challenge.methods.find((m) => m.id === input.methodId);
      assertThat(method, 'mfa.method_not_available');
      const handler = deps.handlers[method.method];
      assertThat(handler, 'mfa.method_not_available');
      // An unanswered or denied push is not a wrong answer from this person.
      if (method.method === 'push') await deps.push?.assertAnswered(challenge);

      await lock.reserve(challenge.userId);
      if (!(await challenges.reserveAttempt(challenge.id, deps.maxAttempts))) {
        await lock.refund(challenge.userId);
        const used = await challenges.attempts(challenge.id);
        throw new AppError(used >= deps.maxAttempts ? 'mfa.too_many_attempts' : 'mfa.challenge_not_found');
      }

      let accepted: { amr: readonly Amr[]; phishingResistant: boolean; recoveryCodes: string[] | null } | null = null;
      try {
        const factor = method.factorId ? await factors.findById(method.factorId) : undefined;
        const usable = !method.factorId || (factor && factor.userId === challenge.userId
          && (factor.status === 'ACTIVE' || factor.id === challenge.enrollmentFactorId));
        const right = usable ? await handler.check({ challenge, method, factor }, input) : null;
        if (right) {
          accepted = await db.transaction(async (trx) => {
            if (!(await right.spend(trx))) return null;
            if (!(await challenges.complete(challenge.id, 'succeeded', method.method, trx))) {
              throw new AppError('mfa.challenge_not_found');
            }
            await lock.succeeded(challenge.userId, trx);
            await deps.callbacks?.enqueue(trx, { clientId: challenge.clientId, type: 'challenge.succeeded', data: { challengeRef: challengeRef(challenge.id), userId: challenge.userId, state: challenge.appState, method: method.method } });
            // A first second factor comes with the recovery codes for the day it is lost.
            const recoveryCodes = challenge.enrollmentFactorId ? await deps.recoveryCodes.generateIfNone(challenge.userId, trx) : null;
            return { amr: right.amr, phishingResistant: right.phishingResistant, recoveryCodes };
          });
        }
      } catch (err) {
        // A server error must not cost the user a try.
        if (!(err instanceof AppError)) {
          await challenges.refundAttempt(challenge.id);
          await lock.refund(challenge.userId);
        }
        throw err;
      }

      if (!accepted) {
        await events.record({ type: 'mfa.challenge.failed', userId: challenge.userId, clientId: challenge.clientId, details: { method: method.method } });
        await lock.failed(challenge.userId);
        if ((await lock.status(challenge.userId)).locked) {
          await failChallenge(challenge);
          deps.metrics.recordSecondFactor(method.method, 'locked');
          deps.metrics.recordSignIn('second_factor_failed');
          throw await lock.lockedError(challenge.userId);
        }
        if ((await challenges.attempts(challenge.id)) >= deps.maxAttempts) {
          await failChallenge(challenge);
          deps.metrics.recordSecondFactor(method.method, 'too_many_attempts');
          deps.metrics.recordSignIn('second_factor_failed');
          throw new AppError('mfa.too_many_attempts');
        }
        deps.metrics.recordSecondFactor(method.method, 'invalid');
        throw new AppError('mfa.invalid_code', method.method === 'webauthn'
          ? { message: 'That passkey or security key could not be verified. Try again, or choose another way below.' }
          : method.method === 'recovery-code' ? { message: 'That recovery code is not correct or was already used.' } : {});
      }

      if (challenge.enrollmentFactorId) {
        const factor = await factors.findById(challenge.enrollmentFactorId);
        await events.record({ type: 'factor.activated', userId: challenge.userId, details: { factorId: challenge.enrollmentFactorId, type: factor?.type ?? null } });
        if (factor) await deps.notify?.(challenge.userId, 'factor-added', factor.name);
      }
      deps.metrics.recordSecondFactor(method.method, 'success');
      await events.record({ type: 'mfa.challenge.succeeded', userId: challenge.userId, clientId: challenge.clientId, details: { method: method.method } });
      const amr = amrAfterSecondFactor(challenge.amr, accepted.amr);
      const remainingRecoveryCodes = method.method === 'recovery-code' ? await deps.recoveryCodes.remaining(challenge.userId) : null;
      // A passed challenge is a second factor: when the first was the
      // calling app's own (verification API), it vouches for it.
      return {
        userId: challenge.userId, clientId: challenge.clientId, amr, acr: accepted.phishingResistant ? ACR.phr : ACR.mfa, method,
        appState: challenge.appState, recoveryCodes: accepted.recoveryCodes, remainingRecoveryCodes,
      };
    },
  };
}
