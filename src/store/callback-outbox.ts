/**
 * The callback outbox: challenge outcomes waiting to be POSTed to a
 * client's callback URL. A row is written in the transaction that commits
 * the outcome, so an event exists if and only if the outcome does, and it
 * survives a restart until delivered or given up.
 *
 * `next_attempt_at` is the row's state: due when <= now, a lease while a
 * node delivers it, null once delivered (`delivered_at` set) or given up.
 */
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export interface OutboxRow {
  id: number;
  clientId: string;
  /** The webhook-id: the same on every attempt. */
  eventId: string;
  type: string;
  /** The JSON body exactly as signed and sent. */
  payload: string;
  attempts: number;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
  lastError: string | null;
  createdAt: number;
}

interface Row {
  id: number | string; client_id: string; event_id: string; type: string; payload: string;
  attempts: number | string; next_attempt_at: number | string | null; delivered_at: number | string | null;
  last_error: string | null; created_at: number | string;
}

const num = (v: number | string | null): number | null => (v == null ? null : Number(v));

const toOutbox = (r: Row): OutboxRow => ({
  id: Number(r.id), clientId: r.client_id, eventId: r.event_id, type: r.type, payload: r.payload,
  attempts: Number(r.attempts), nextAttemptAt: num(r.next_attempt_at), deliveredAt: num(r.delivered_at),
  lastError: r.last_error, createdAt: Number(r.created_at),
});

const MAX_ERROR = 200;

export type CallbackOutboxStore = ReturnType<typeof createCallbackOutboxStore>;

export function createCallbackOutboxStore(db: Db, clock: Clock) {
  const pending = (trx: Db, id: number) => trx('callback_outbox').where({ id }).whereNull('delivered_at');
  return {
    /** Queues an event, due now. */
    async insert(e: { clientId: string; eventId: string; type: string; payload: string }, trx: Db = db): Promise<void> {
      const now = clock.now();
      await trx('callback_outbox').insert({
        client_id: e.clientId, event_id: e.eventId, type: e.type, payload: e.payload,
        attempts: 0, next_attempt_at: now, delivered_at: null, last_error: null, created_at: now,
      });
    },

    /** Rows due at `now`, oldest first. */
    async due(now: number, limit: number): Promise<OutboxRow[]> {
      const rows = await db<Row>('callback_outbox').whereNull('delivered_at').whereNotNull('next_attempt_at')
        .where('next_attempt_at', '<=', now).orderBy([{ column: 'next_attempt_at' }, { column: 'id' }]).limit(limit);
      return rows.map(toOutbox);
    },

    /**
     * Takes a due row for one delivery by moving its `next_attempt_at` from
     * the value this node read to `leaseUntil`: of two nodes that read the
     * same row, only one write matches.
     * @returns true when this caller now owns the attempt.
     */
    async claim(row: OutboxRow, leaseUntil: number): Promise<boolean> {
      if (row.nextAttemptAt === null) return false;
      const n = await pending(db, row.id).where({ next_attempt_at: row.nextAttemptAt }).update({ next_attempt_at: leaseUntil });
      return n === 1;
    },

    async markDelivered(id: number, attempts: number, trx: Db = db): Promise<void> {
      await pending(trx, id).update({ delivered_at: clock.now(), next_attempt_at: null, attempts, last_error: null });
    },

    /** A failed attempt; `nextAttemptAt` null gives up on the row. */
    async markFailed(id: number, f: { attempts: number; nextAttemptAt: number | null; error: string }, trx: Db = db): Promise<void> {
      await pending(trx, id).update({ attempts: f.attempts, next_attempt_at: f.nextAttemptAt, last_error: f.error.slice(0, MAX_ERROR) });
    },

    async find(eventId: string): Promise<OutboxRow | undefined> {
      const r = await db<Row>('callback_outbox').where({ event_id: eventId }).first();
      return r && toOutbox(r);
    },

    /** A client's events, oldest first (tests, support). */
    async listForClient(clientId: string): Promise<OutboxRow[]> {
      return (await db<Row>('callback_outbox').where({ client_id: clientId }).orderBy('id')).map(toOutbox);
    },

    /** Deletes delivered and given-up rows created before `before`. @returns how many. */
    async sweep(before: number): Promise<number> {
      return db('callback_outbox').whereNull('next_attempt_at').where('created_at', '<', before).del();
    },
  };
}
