/**
 * Push approval requests: the push columns of a challenge. Every state change
 * is one guarded write (pending → approved | denied, approved → consumed), so
 * a request is answered once and its approval is used once.
 */
import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export type PushState = 'pending' | 'approved' | 'denied' | 'consumed';
export type PushKind = 'simple' | 'pin' | 'biometric';

export interface PushRecord {
  /** The challenge id (SHA-256 of the twoFactorId). */
  challengeId: string;
  userId: string;
  clientId: string;
  ref: string;
  number: string;
  state: PushState;
  kind: PushKind;
  request: { header: string; text: string; details: Record<string, string> };
  answer: { deviceId: string; localCheck: 'pin' | 'biometric' | null } | null;
  sentAt: number;
  expiresAt: number;
  /** The challenge's own state (pending until it is spent or failed). */
  challengeState: string;
  /** The calling app's `state`, echoed in callbacks. */
  appState: unknown;
}

interface Row {
  id: string; user_id: string; client_id: string; state: string; expires_at: number;
  push_ref: string | null; push_number: string | null; push_state: string | null; push_kind: string | null;
  push_request: string | null; push_answer: string | null; push_sent_at: number | null; app_state: string | null;
}

function toRecord(r: Row): PushRecord {
  return {
    challengeId: r.id, userId: r.user_id, clientId: r.client_id, ref: r.push_ref!, number: r.push_number!,
    state: r.push_state as PushState, kind: (r.push_kind ?? 'simple') as PushKind,
    request: parseJson(r.push_request ?? '{}'), answer: r.push_answer ? parseJson(r.push_answer) : null,
    sentAt: Number(r.push_sent_at), expiresAt: Number(r.expires_at), challengeState: r.state,
    appState: r.app_state === null ? undefined : parseJson(r.app_state),
  };
}

export type PushRequestsStore = ReturnType<typeof createPushRequestsStore>;

export function createPushRequestsStore(db: Db, clock: Clock) {
  const live = () => db<Row>('challenges').where({ state: 'pending' }).andWhere('expires_at', '>', clock.now()).whereNotNull('push_ref');
  return {
    /** Starts (or restarts, with a new reference and number) the push of a pending challenge. @returns false when the challenge is gone. */
    async start(challengeId: string, push: { ref: string; number: string; kind: PushKind; request: PushRecord['request'] }): Promise<boolean> {
      const n = await db('challenges').where({ id: challengeId, state: 'pending' }).andWhere('expires_at', '>', clock.now()).update({
        push_ref: push.ref, push_number: push.number, push_state: 'pending', push_kind: push.kind,
        push_request: JSON.stringify(push.request), push_answer: null, push_sent_at: clock.now(),
      });
      return n === 1;
    },
    async findByRef(ref: string): Promise<PushRecord | undefined> {
      const r = await db<Row>('challenges').where({ push_ref: ref }).first();
      return r && toRecord(r);
    },
    async findLiveByChallenge(challengeId: string): Promise<PushRecord | undefined> {
      const r = await live().andWhere({ id: challengeId }).first();
      return r && toRecord(r);
    },
    /** The user's live, unanswered requests, newest first. */
    async pendingFor(userId: string): Promise<PushRecord[]> {
      return (await live().andWhere({ user_id: userId, push_state: 'pending' }).orderBy('push_sent_at', 'desc')).map(toRecord);
    },
    /** @returns false when it was answered already, or the challenge is gone. */
    async answer(ref: string, state: 'approved' | 'denied', answer: PushRecord['answer'], trx: Db = db): Promise<boolean> {
      const n = await trx<Row>('challenges').where({ state: 'pending', push_ref: ref, push_state: 'pending' }).andWhere('expires_at', '>', clock.now())
        .update({ push_state: state, push_answer: answer ? JSON.stringify(answer) : null });
      return n === 1;
    },
    /** Uses an approval, once. @returns false when already used (or not approved). */
    async consume(challengeId: string, trx: Db = db): Promise<boolean> {
      return (await trx('challenges').where({ id: challengeId, push_state: 'approved' }).update({ push_state: 'consumed' })) === 1;
    },
  };
}
