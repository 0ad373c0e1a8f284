/**
 * Email and SMS codes: send (and resend) a code to a factor's address or
 * number, check it, spend it once. A code is random digits, lives a few
 * minutes, is stored as a keyed hash bound to its row, and is bound to the
 * challenge that asked for it: a code sent for one sign-in does not work in
 * another. Send limits per user and per destination answer 429 before
 * anything is sent (SMS toll fraud, mail bombing).
 */
import { randomInt } from 'node:crypto';
import type { Factor, FactorsStore } from '../store/factors.ts';
import type { OtpCodesStore } from '../store/otp-codes.ts';
import type { ThrottlesStore } from '../store/throttles.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import type { Delivery } from '../delivery/index.ts';
import { DeliveryError } from '../delivery/index.ts';
import { safeEqual, sha256 } from '../lib/hash.ts';
import { AppError } from '../errors.ts';
import { METHOD_AMR } from './amr.ts';
import type { MethodHandler } from './methods.ts';

export interface SentCodePolicy {
  digits: number;
  ttlSeconds: number;
  /** Sends allowed per user, and per destination, in each window. */
  perUser: number;
  perDestination: number;
  windowSeconds: number;
}

export type SentCodes = ReturnType<typeof createSentCodes>;

/** Where a factor's codes go, and on which channel. */
export function destinationOf(factor: Factor): { channel: 'email' | 'sms'; to: string } {
  if (factor.type === 'email') return { channel: 'email', to: String(factor.settings.email) };
  if (factor.type === 'sms') return { channel: 'sms', to: String(factor.settings.phoneNumber) };
  throw new Error(`factor type ${factor.type} has no destination`);
}

export function createSentCodes(deps: {
  store: OtpCodesStore;
  factors: FactorsStore;
  throttles: ThrottlesStore;
  events: EventsStore;
  clock: Clock;
  delivery: Delivery;
  policy: SentCodePolicy;
  hash: (value: string) => string;
  /** Host for the SMS WebOTP line (`@host #code`). */
  domain?: string;
  log: (msg: string, err?: unknown) => void;
}) {
  const { store, throttles, events, clock, policy } = deps;
  const hashOf = (rowId: string, code: string) => deps.hash(`${rowId}:${code}`);

  async function withinLimits(factor: Factor, to: string): Promise<boolean> {
    const windowMs = policy.windowSeconds * 1000;
    const perUser = await throttles.hit(`send:user:${factor.userId}`, windowMs);
    const perDestination = await throttles.hit(`send:dest:${sha256(to.toLowerCase())}`, windowMs);
    return perUser.count <= policy.perUser && perDestination.count <= policy.perDestination;
  }

  return {
    /**
     * Sends a new code for `factor` (bound to `challengeId`, or to none for an
     * activation outside a sign-in) and voids the previous one.
     * @throws AppError mfa.send_limited (429, nothing sent), delivery.failed
     *   (503: nothing changed, try again)
     */
    async send(factor: Factor, challengeId: string | null): Promise<void> {
      const { channel, to } = destinationOf(factor);
      if (!(await withinLimits(factor, to))) {
        await events.record({ type: 'mfa.code.send_limited', userId: factor.userId, details: { factorId: factor.id, channel } });
        throw new AppError('mfa.send_limited', { details: { retryAfter: policy.windowSeconds } });
      }
      const code = Array.from({ length: policy.digits }, () => String(randomInt(10))).join('');
      const id = store.newId();
      await store.replace({
        id, userId: factor.userId, factorId: factor.id, challengeId, hash: hashOf(id, code),
        expiresAt: clock.now() + policy.ttlSeconds * 1000,
      });
      try {
        await deps.delivery.send({
          channel, to, template: 'otp',
          data: { code, minutes: Math.ceil(policy.ttlSeconds / 60), ...(channel === 'sms' && deps.domain ? { domain: deps.domain } : {}) },
        });
      } catch (err) {
        await store.remove(id);
        if (!(err instanceof DeliveryError)) throw err;
        deps.log('delivery failed', err);
        await events.record({ type: 'mfa.code.send_failed', userId: factor.userId, details: { factorId: factor.id, channel } });
        throw new AppError('delivery.failed', { message: err.message + ' Try again in a moment.', cause: err });
      }
      await events.record({ type: 'mfa.code.sent', userId: factor.userId, details: { factorId: factor.id, channel } });
    },

    /** True when a live code was sent for this factor and challenge (the page then asks for it). */
    async hasLive(factorId: string, challengeId: string | null): Promise<boolean> {
      return (await store.findLive(factorId, challengeId)) !== undefined;
    },

    /**
     * Checks a typed code against the live one, without spending it.
     * @returns the code's row id for `spend`, or null: wrong, malformed,
     *   expired, superseded or used (one answer).
     */
    async match(factor: Factor, challengeId: string | null, typed: string): Promise<string | null> {
      if (typeof typed !== 'string' || typed.length !== policy.digits || !/^[0-9]+$/.test(typed)) return null;
      const live = await store.findLive(factor.id, challengeId);
      if (!live) return null;
      return safeEqual(live.hash, hashOf(live.id, typed)) ? live.id : null;
    },

    spend: store.spend,
  };
}

/** The challenge method for `email` and `sms` factors: the code sent for this challenge. */
export function sentCodeMethod(deps: { sentCodes: SentCodes; factors: FactorsStore }): MethodHandler {
  return {
    async check({ challenge, factor }, answer) {
      if (!factor || (factor.type !== 'email' && factor.type !== 'sms') || typeof answer.code !== 'string') return null;
      const id = await deps.sentCodes.match(factor, challenge.id, answer.code);
      if (!id) return null;
      const activate = factor.status === 'PENDING_ACTIVATION' && factor.id === challenge.enrollmentFactorId;
      return {
        async spend(trx) {
          if (!(await deps.sentCodes.spend(id, trx))) return false;
          await deps.factors.markUsed(factor.id, activate, trx);
          return true;
        },
        amr: factor.type === 'sms' ? METHOD_AMR.sms : METHOD_AMR.email,
        phishingResistant: false,
      };
    },
  };
}
