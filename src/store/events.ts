import type { Db } from './db.ts';
import { parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';

/** Audit event types. Append-only: nothing updates or deletes an event. */
export const EVENT_TYPES = [
  'user.created', 'user.updated', 'user.suspended', 'user.unsuspended', 'user.deleted', 'user.password_changed',
  'login.password.succeeded', 'login.password.failed', 'login.succeeded',
  'mfa.challenge.created', 'mfa.challenge.succeeded', 'mfa.challenge.failed',
  'factor.enrolled', 'factor.activated', 'factor.verified', 'factor.verify_failed', 'factor.deleted', 'factor.reset',
  'client.created', 'client.updated', 'client.deleted', 'client.callback_disabled',
  'api_key.created', 'api_key.revoked', 'api_key.used',
  'user.locked', 'user.unlocked', 'login.throttled', 'user.sessions_ended',
  'mfa.enrollment_skipped', 'trusted_browser.added', 'trusted_browser.revoked', 'push.sent', 'push.approved', 'push.denied', 'push.wrong_number', 'push.paused',
  'recovery_codes.generated', 'mfa.code.sent', 'mfa.code.send_failed', 'mfa.code.send_limited',
  'device.link_code_created', 'device.linked', 'device.renamed', 'device.unlinked',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface AuditEvent {
  type: EventType;
  userId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  /** Never a secret, code or token. */
  details?: Record<string, unknown>;
}

/** An event as recorded: ids increase with every insert. */
export interface StoredEvent {
  id: number;
  at: number;
  type: EventType;
  userId: string | null;
  clientId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

export interface EventFilter {
  type?: EventType;
  userId?: string;
  /** Milliseconds; inclusive. */
  since?: number;
  /** Milliseconds; exclusive. */
  until?: number;
  /** Only events older than this id (the previous page's last). */
  beforeId?: number;
  limit: number;
}

interface Row {
  id: number | string; at: number | string; type: string; user_id: string | null; client_id: string | null;
  ip: string | null; details: string;
}

const toEvent = (r: Row): StoredEvent => ({
  id: Number(r.id), at: Number(r.at), type: r.type as EventType, userId: r.user_id, clientId: r.client_id,
  ip: r.ip, details: parseJson(r.details),
});

export type EventsStore = ReturnType<typeof createEventsStore>;

export function createEventsStore(db: Db, clock: Clock) {
  return {
    async record(e: AuditEvent, trx: Db = db): Promise<void> {
      await trx('events').insert({
        at: clock.now(), type: e.type, user_id: e.userId ?? null, client_id: e.clientId ?? null,
        ip: e.ip ?? null, details: JSON.stringify(e.details ?? {}),
      });
    },

    /**
     * Newest first (by id: `at` can repeat and a clock can step back, the id
     * cannot). `nextBeforeId` is the `beforeId` of the next page, or null
     * when this is the last.
     */
    async page(filter: EventFilter): Promise<{ events: StoredEvent[]; nextBeforeId: number | null }> {
      // One extra row tells whether another page exists without a count query.
      const q = db<Row>('events').orderBy('id', 'desc').limit(filter.limit + 1);
      if (filter.type !== undefined) q.where({ type: filter.type });
      if (filter.userId !== undefined) q.where({ user_id: filter.userId });
      if (filter.since !== undefined) q.where('at', '>=', filter.since);
      if (filter.until !== undefined) q.where('at', '<', filter.until);
      if (filter.beforeId !== undefined) q.where('id', '<', filter.beforeId);
      const rows = (await q).map(toEvent);
      const more = rows.length > filter.limit;
      const events = more ? rows.slice(0, filter.limit) : rows;
      return { events, nextBeforeId: more ? events[events.length - 1]!.id : null };
    },
  };
}
