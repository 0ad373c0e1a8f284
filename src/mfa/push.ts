/**
 * Push approval with number matching: a challenge asks the user's linked
 * devices to approve; the sign-in page shows a short number the person must
 * type on the device, so a push they did not start cannot be approved by a
 * reflex tap. The device's answer (checked and signed on the device side,
 * src/push/) moves the request to approved or denied; the sign-in then
 * spends the approval once, through the challenge module like any method.
 *
 * Push fatigue: pushes per user are limited per window, and after repeated
 * denials pushes pause for a while (an event says so, and the sign-in page
 * offers the other methods).
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import type { PushRequestsStore, PushRecord, PushKind } from '../store/push-requests.ts';
import type { ThrottlesStore } from '../store/throttles.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import { challengeRef, type Challenge } from './challenges.ts';
import type { SecondFactorLock } from './lockout.ts';
import type { MethodHandler } from './methods.ts';
import type { PushAnswer, PushRequests, PushRequestView } from '../push/requests.ts';
import { safeEqual } from '../lib/hash.ts';
import { AppError } from '../errors.ts';

export interface PushPolicy {
  /** Digits of the number to match (2 to 6). */
  numberDigits: number;
  /** Pushes per user in each window. */
  perUser: number;
  windowSeconds: number;
  /** Denials within the window that pause pushes. */
  pauseAfterDenials: number;
  pauseSeconds: number;
}

/** What the app asks the device to show, and the local check it needs. */
export interface PushContent {
  header?: string | undefined;
  text?: string | undefined;
  details?: Record<string, string> | undefined;
  kind?: PushKind | undefined;
}

export type Push = ReturnType<typeof createPush>;

export function createPush(deps: {
  store: PushRequestsStore;
  throttles: ThrottlesStore;
  events: EventsStore;
  lock: SecondFactorLock;
  clock: Clock;
  policy: PushPolicy;
  clientName(clientId: string): Promise<string>;
  /** Tells the person pushes are paused (after repeated denials). */
  onPaused?: (userId: string, seconds: number) => Promise<void>;
  /** Wakes the user's devices when a request is sent (a push gateway); failures are the notifier's to log. */
  wake?: (userId: string, ref: string) => Promise<void>;
  /** Called with each device answer, inside the transaction that records it (callbacks). */
  onAnswered?: (record: PushRecord, state: 'approved' | 'denied', trx: Db) => Promise<void>;
  db: Db;
}) {
  const { store, throttles, events, clock, policy } = deps;
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const changed = (userId: string) => changes.emit(userId);

  async function view(r: PushRecord): Promise<PushRequestView> {
    return {
      ref: r.ref, header: r.request.header, text: r.request.text, details: r.request.details, kind: r.kind,
      clientName: await deps.clientName(r.clientId), numberLength: r.number.length, createdAt: r.sentAt, expiresAt: r.expiresAt,
    };
  }

  const requests: PushRequests = {
    async pendingFor(userId) {
      return Promise.all((await store.pendingFor(userId)).map(view));
    },

    async answer({ ref, deviceId, userId, answer }: { ref: string; deviceId: string; userId: string; answer: PushAnswer }) {
      const r = typeof ref === 'string' && ref.length <= 64 ? await store.findByRef(ref) : undefined;
      const live = r && r.userId === userId && r.state === 'pending' && r.challengeState === 'pending' && r.expiresAt > clock.now();
      if (!live) throw new AppError('push.request_not_found');
      const localCheck = answer.localCheck ?? null;
      let state: 'approved' | 'denied' = 'denied';
      if (answer.decision === 'approve') {
        if (typeof answer.number !== 'string' || answer.number === '') {
          throw new AppError('request.invalid', { message: 'Type the number shown on the sign-in page.', details: { field: 'number' } });
        }
        if (r.kind !== 'simple' && localCheck !== r.kind) {
          throw new AppError('request.invalid', { message: `This request needs the device's ${r.kind === 'pin' ? 'PIN' : 'biometric'} check.`, details: { field: 'localCheck' } });
        }
        // A wrong number denies the request and counts as a second-factor failure.
        await deps.lock.reserve(userId);
        if (safeEqual(answer.number, r.number)) {
          await deps.lock.refund(userId);
          state = 'approved';
        } else {
          await deps.lock.failed(userId);
          await events.record({ type: 'push.wrong_number', userId, clientId: r.clientId, details: { ref, deviceId } });
        }
      }
      // The answer, its audit event and its callback are one transaction.
      const recorded = await deps.db.transaction(async (trx) => {
        if (!(await store.answer(ref, state, { deviceId, localCheck }, trx))) return false;
        await events.record({ type: state === 'approved' ? 'push.approved' : 'push.denied', userId, clientId: r.clientId, details: { ref, deviceId } }, trx);
        await deps.onAnswered?.(r, state, trx);
        return true;
      });
      if (!recorded) throw new AppError('push.request_not_found');
      if (state === 'denied') await countDenial(userId);
      changed(userId);
      return state;
    },

    subscribe(userId, onChange) {
      changes.on(userId, onChange);
      return () => changes.off(userId, onChange);
    },
  };

  async function countDenial(userId: string): Promise<void> {
    const s = await throttles.hit(`push:denied:${userId}`, policy.windowSeconds * 1000);
    if (s.count === policy.pauseAfterDenials) {
      await throttles.hit(`push:paused:${userId}`, policy.pauseSeconds * 1000);
      await events.record({ type: 'push.paused', userId, details: { denials: s.count, seconds: policy.pauseSeconds } });
      await deps.onPaused?.(userId, policy.pauseSeconds);
    }
  }

  return {
    requests,

    /**
     * Sends a push for the challenge (a resend replaces the last one, with a new number).
     * @returns the public reference and the number to show.
     * @throws AppError push.paused, push.limited, mfa.challenge_not_found
     */
    async send(challenge: Challenge, content: PushContent = {}): Promise<{ ref: string; number: string }> {
      const paused = await throttles.get(`push:paused:${challenge.userId}`);
      if (paused && paused.windowStart + policy.pauseSeconds * 1000 > clock.now()) {
        throw new AppError('push.paused', { details: { retryAfter: Math.ceil((paused.windowStart + policy.pauseSeconds * 1000 - clock.now()) / 1000) } });
      }
      const sent = await throttles.hit(`push:sent:${challenge.userId}`, policy.windowSeconds * 1000);
      if (sent.count > policy.perUser) throw new AppError('push.limited', { details: { retryAfter: policy.windowSeconds } });
      // One public reference per challenge: the same in device requests, status calls and callbacks.
      const ref = challengeRef(challenge.id);
      const number = String(randomInt(10 ** policy.numberDigits)).padStart(policy.numberDigits, '0');
      const clientName = await deps.clientName(challenge.clientId);
      const request = {
        header: (content.header ?? `Sign in to ${clientName}?`).slice(0, 100),
        text: (content.text ?? 'Someone is signing in with your password. Approve only if it is you, and type the number you see on the sign-in page.').slice(0, 500),
        details: content.details ?? {},
      };
      if (!(await store.start(challenge.id, { ref, number, kind: content.kind ?? 'simple', request }))) throw new AppError('mfa.challenge_not_found');
      await events.record({ type: 'push.sent', userId: challenge.userId, clientId: challenge.clientId, details: { ref } });
      changed(challenge.userId);
      await deps.wake?.(challenge.userId, ref);
      return { ref, number };
    },

    /** The push of a live challenge, if one was sent. */
    current: (challenge: Challenge) => store.findLiveByChallenge(challenge.id),

    /** The state an app polls, by public reference. */
    async status(ref: string): Promise<{ state: 'pending' | 'approved' | 'denied' | 'expired' | 'succeeded'; record: PushRecord } | undefined> {
      const r = typeof ref === 'string' && ref.length <= 64 ? await store.findByRef(ref) : undefined;
      if (!r) return undefined;
      if (r.state === 'consumed' || r.challengeState === 'succeeded') return { state: 'succeeded', record: r };
      if (r.state === 'denied') return { state: 'denied', record: r };
      if (r.challengeState !== 'pending' || r.expiresAt <= clock.now()) return { state: 'expired', record: r };
      return { state: r.state === 'approved' ? 'approved' : 'pending', record: r };
    },

    /**
     * Throws before an evaluation when the push is not answered yet, or was
     * denied: neither is a wrong answer from the person at the sign-in page.
     * @throws AppError push.pending, push.denied, push.not_sent
     */
    async assertAnswered(challenge: Challenge): Promise<void> {
      const r = await store.findLiveByChallenge(challenge.id);
      if (!r) throw new AppError('push.not_sent');
      if (r.state === 'pending') throw new AppError('push.pending');
      if (r.state === 'denied') throw new AppError('push.denied');
    },
  };
}

/** The challenge method for push: the approval of this challenge's request, used once. */
export function pushMethod(deps: { store: PushRequestsStore }): MethodHandler {
  return {
    async check({ challenge }) {
      const r = await deps.store.findLiveByChallenge(challenge.id);
      if (!r || r.state !== 'approved') return null;
      const local = r.answer?.localCheck;
      return {
        spend: (trx) => deps.store.consume(challenge.id, trx),
        amr: local === 'pin' ? ['swk', 'pin'] : local === 'biometric' ? ['swk', 'fpt', 'user'] : ['swk'],
        phishingResistant: false,
      };
    },
  };
}
