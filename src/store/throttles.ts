/**
 * Counters in the database, so that several nodes count together: failure
 * counts with lock-outs (second factor), windows of hits (per-IP and send
 * limits) and growing delays (password failures). Every change is one
 * conditional statement, so concurrent requests cannot overshoot a limit.
 */
import type { Db } from './db.ts';
import { isSqlite } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export interface ThrottleState {
  count: number;
  /** Start of the current window, or the time of the last failure. */
  windowStart: number;
  /** Set while locked out. */
  lockedUntil: number | null;
  /** Lock-outs so far. */
  level: number;
}

interface Row { key: string; count: number; window_start: number; locked_until: number | null; level: number; updated_at: number }

const toState = (r: Row): ThrottleState => ({
  count: Number(r.count), windowStart: Number(r.window_start),
  lockedUntil: r.locked_until === null ? null : Number(r.locked_until), level: Number(r.level),
});

export type ThrottlesStore = ReturnType<typeof createThrottlesStore>;

export function createThrottlesStore(db: Db, clock: Clock) {
  const rows = (raw: unknown): Row[] => (isSqlite(db) ? raw as Row[] : (raw as { rows: Row[] }).rows);

  async function ensure(key: string, trx: Db = db): Promise<void> {
    const now = clock.now();
    await trx('throttles').insert({ key, count: 0, window_start: now, locked_until: null, level: 0, updated_at: now }).onConflict('key').ignore();
  }

  return {
    async get(key: string): Promise<ThrottleState | undefined> {
      const r = await db<Row>('throttles').where({ key }).first();
      return r && toState(r);
    },

    /**
     * Counts one hit in a fixed window of `windowMs`, starting a new window
     * when the last one has passed.
     * @returns the state after the hit (`count` includes it).
     */
    async hit(key: string, windowMs: number): Promise<ThrottleState> {
      const now = clock.now();
      const expired = now - windowMs;
      const raw = await db.raw(
        `insert into throttles (key, count, window_start, locked_until, level, updated_at) values (?, 1, ?, null, 0, ?)
         on conflict (key) do update set
           count = case when throttles.window_start <= ? then 1 else throttles.count + 1 end,
           window_start = case when throttles.window_start <= ? then ? else throttles.window_start end,
           updated_at = ?
         returning key, count, window_start, locked_until, level, updated_at`,
        [key, now, now, expired, expired, now, now],
      );
      return toState(rows(raw)[0]!);
    },

    /**
     * Reserves one failure before an answer is evaluated: succeeds only while
     * the key is not locked and fewer than `limit` failures are counted, so
     * parallel guesses can never evaluate more than `limit` answers. An
     * expired lock-out is cleared first.
     * @returns false when locked (or the limit is already reserved).
     */
    async reserveFailure(key: string, limit: number): Promise<boolean> {
      const now = clock.now();
      // Rows are reset, never deleted while in use, but the sweeper may remove
      // an idle one between these statements: then the row is made again.
      for (let tries = 0; tries < 2; tries += 1) {
        await ensure(key);
        await db('throttles').where({ key }).andWhere('locked_until', '<=', now).update({ count: 0, locked_until: null, updated_at: now });
        const n = await db('throttles').where({ key }).whereNull('locked_until').andWhere('count', '<', limit)
          .update({ count: db.raw('count + 1'), updated_at: now });
        if (n === 1) return true;
        if (await db('throttles').where({ key }).first('key')) return false;
      }
      return false;
    },

    /** Gives back a reserved failure that was not the user's (a server error). */
    async refundFailure(key: string): Promise<void> {
      await db('throttles').where({ key }).whereNull('locked_until').andWhere('count', '>', 0).decrement('count', 1);
    },

    /**
     * Locks the key once `limit` failures are counted, for `durationOf(level)`
     * where level counts earlier lock-outs. Only one caller wins the lock.
     * @returns the lock's end when this call locked it, else null.
     */
    async lockIfExhausted(key: string, limit: number, durationOf: (level: number) => number): Promise<number | null> {
      const r = await db<Row>('throttles').where({ key }).first();
      if (!r || r.locked_until !== null || Number(r.count) < limit) return null;
      const now = clock.now();
      const until = now + durationOf(Number(r.level));
      const n = await db('throttles').where({ key, level: r.level }).whereNull('locked_until').andWhere('count', '>=', limit)
        .update({ locked_until: until, level: Number(r.level) + 1, updated_at: now });
      return n === 1 ? until : null;
    },

    /**
     * Starts the key afresh: a full success, or an admin unlock. The row is
     * reset rather than deleted, so a concurrent reservation never loses it.
     * @returns true when there was a count or a lock to clear.
     */
    async clear(key: string, trx: Db = db): Promise<boolean> {
      const n = await trx('throttles').where({ key }).andWhere((q) => q.where('count', '>', 0).orWhereNotNull('locked_until').orWhere('level', '>', 0))
        .update({ count: 0, locked_until: null, level: 0, updated_at: clock.now() });
      return n > 0;
    },

    /**
     * Records one failure for a growing delay, only if the count is still
     * `expected` (compare-and-set: of concurrent callers that read the same
     * count, one wins and the others read again).
     * @returns false when another request changed the count first.
     */
    async recordFailureIf(key: string, expected: number): Promise<boolean> {
      const now = clock.now();
      await ensure(key);
      const n = await db('throttles').where({ key, count: expected }).update({ count: expected + 1, window_start: now, updated_at: now });
      return n === 1;
    },

    /** Deletes rows untouched since `olderThan` whose lock (if any) has ended. */
    async sweep(olderThan: number): Promise<number> {
      return db('throttles').where('updated_at', '<', olderThan)
        .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<', clock.now())).del();
    },
  };
}
