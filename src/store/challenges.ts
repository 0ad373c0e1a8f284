import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export type ChallengeOrigin = 'interaction' | 'login_api' | 'start_api' | 'account';
export type ChallengeState = 'pending' | 'succeeded' | 'failed' | 'expired';

/** The second-factor methods (FusionAuth's names). */
export type MethodName = 'authenticator' | 'recovery-code' | 'email' | 'sms' | 'webauthn' | 'push';

/**
 * One way the user can answer a challenge. `id` is stable: the factor's id,
 * or the method's name for methods that are not one factor (recovery codes,
 * passkeys: any of the user's).
 */
export interface ChallengeMethod {
  id: string;
  method: MethodName;
  factorId: string | null;
}

export interface ChallengeRecord {
  id: string;
  userId: string;
  clientId: string;
  origin: ChallengeOrigin;
  binding: string | null;
  state: ChallengeState;
  methods: ChallengeMethod[];
  amr: string[];
  enrollmentFactorId: string | null;
  attempts: number;
  /** The calling app's `state` (verification API), echoed back on success. */
  appState: unknown;
  createdAt: number;
  expiresAt: number;
  completedAt: number | null;
}

interface Row {
  id: string; user_id: string; client_id: string; origin: string; binding: string | null; state: string;
  methods: string; amr: string; enrollment_factor_id: string | null; attempts: number;
  created_at: number; expires_at: number; completed_at: number | null; completed_method: string | null;
  app_state: string | null;
}

function toRecord(r: Row): ChallengeRecord {
  return {
    id: r.id, userId: r.user_id, clientId: r.client_id, origin: r.origin as ChallengeOrigin, binding: r.binding,
    state: r.state as ChallengeState, methods: parseJson(r.methods), amr: parseJson(r.amr),
    enrollmentFactorId: r.enrollment_factor_id, attempts: Number(r.attempts),
    appState: r.app_state === null ? undefined : parseJson(r.app_state), createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at), completedAt: r.completed_at === null ? null : Number(r.completed_at),
  };
}

export type ChallengesStore = ReturnType<typeof createChallengesStore>;

export function createChallengesStore(db: Db, clock: Clock) {
  const live = () => db<Row>('challenges').where({ state: 'pending' }).andWhere('expires_at', '>', clock.now());
  return {
    async insert(c: Omit<ChallengeRecord, 'state' | 'attempts' | 'createdAt' | 'completedAt'>): Promise<void> {
      await db('challenges').insert({
        id: c.id, user_id: c.userId, client_id: c.clientId, origin: c.origin, binding: c.binding, state: 'pending',
        methods: JSON.stringify(c.methods), amr: JSON.stringify(c.amr), enrollment_factor_id: c.enrollmentFactorId,
        attempts: 0, created_at: clock.now(), expires_at: c.expiresAt, completed_at: null, completed_method: null,
        app_state: c.appState === undefined ? null : JSON.stringify(c.appState),
      });
    },
    /** A challenge by id, whatever its state. */
    async findById(id: string): Promise<ChallengeRecord | undefined> {
      const r = await db<Row>('challenges').where({ id }).first();
      return r && toRecord(r);
    },
    /** A pending, unexpired challenge by id (the hash of its twoFactorId). */
    async findLive(id: string): Promise<ChallengeRecord | undefined> {
      const r = await live().andWhere({ id }).first();
      return r && toRecord(r);
    },
    /** The newest pending, unexpired challenge bound to `binding`. */
    async findLiveByBinding(binding: string): Promise<ChallengeRecord | undefined> {
      const r = await live().andWhere({ binding }).orderBy('created_at', 'desc').first();
      return r && toRecord(r);
    },
    /** Voids the user's pending challenges bound to `binding` (a new password step replaces them). */
    async voidByBinding(binding: string, userId: string): Promise<void> {
      await db('challenges').where({ binding, user_id: userId, state: 'pending' }).update({ state: 'failed', completed_at: clock.now() });
    },
    /**
     * Reserves one attempt before a code is evaluated, so parallel guesses can
     * never evaluate more than `max` codes in total.
     * @returns false when the challenge is gone or out of attempts.
     */
    async reserveAttempt(id: string, max: number): Promise<boolean> {
      const n = await live().andWhere({ id }).andWhere('attempts', '<', max).increment('attempts', 1);
      return n === 1;
    },
    /** Gives back an attempt that a server error, not the user, spent. */
    async refundAttempt(id: string): Promise<void> {
      await db('challenges').where({ id }).andWhere('attempts', '>', 0).decrement('attempts', 1);
    },
    /** @returns the attempts used so far (0 when gone). */
    async attempts(id: string): Promise<number> {
      const r = await db<Row>('challenges').where({ id }).first('attempts');
      return r ? Number(r.attempts) : 0;
    },
    /**
     * The single conditional write that spends a challenge.
     * @returns false when it was already spent, failed or expired.
     */
    async complete(id: string, state: 'succeeded' | 'failed', method: string | null, trx: Db = db): Promise<boolean> {
      const now = clock.now();
      const n = await trx('challenges')
        .where({ id, state: 'pending' }).andWhere('expires_at', '>', now)
        .update({ state, completed_at: now, completed_method: method });
      return n === 1;
    },
    /** True when a challenge bound to `binding` succeeded at or after `since`. */
    async succeededSince(binding: string, since: number): Promise<boolean> {
      const r = await db('challenges').where({ binding, state: 'succeeded' }).andWhere('completed_at', '>=', since).first('id');
      return r !== undefined;
    },
    /** Pending challenges past their expiry, oldest first. */
    async listExpiredPending(limit: number): Promise<Array<{ id: string; userId: string; clientId: string; appState: unknown; pushRef: string | null }>> {
      const rows = await db('challenges').where({ state: 'pending' }).andWhere('expires_at', '<=', clock.now()).orderBy('expires_at').limit(limit)
        .select('id', 'user_id', 'client_id', 'app_state', 'push_ref');
      return rows.map((r: { id: string; user_id: string; client_id: string; app_state: string | null; push_ref: string | null }) => ({
        id: r.id, userId: r.user_id, clientId: r.client_id, appState: r.app_state === null ? undefined : parseJson(r.app_state), pushRef: r.push_ref,
      }));
    },
    /** @returns false when it was completed meanwhile. */
    async markExpired(id: string, trx: Db = db): Promise<boolean> {
      return (await trx('challenges').where({ id, state: 'pending' }).andWhere('expires_at', '<=', clock.now()).update({ state: 'expired', completed_at: clock.now() })) === 1;
    },
    async sweepExpired(olderThan: number): Promise<number> {
      return db('challenges').where('expires_at', '<', olderThan).del();
    },
  };
}
