import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';

/** Audit event types. Append-only: nothing updates or deletes an event. */
export const EVENT_TYPES = [
  'user.created', 'user.updated', 'user.suspended', 'user.unsuspended', 'user.deleted', 'user.password_changed',
  'login.password.succeeded', 'login.password.failed', 'login.succeeded',
  'mfa.challenge.created', 'mfa.challenge.succeeded', 'mfa.challenge.failed',
  'factor.enrolled', 'factor.activated', 'factor.verified', 'factor.verify_failed', 'factor.deleted', 'factor.reset',
  'client.created', 'client.updated', 'client.deleted',
  'api_key.created', 'api_key.revoked', 'api_key.used',
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

export type EventsStore = ReturnType<typeof createEventsStore>;

export function createEventsStore(db: Db, clock: Clock) {
  return {
    async record(e: AuditEvent, trx: Db = db): Promise<void> {
      await trx('events').insert({
        at: clock.now(), type: e.type, user_id: e.userId ?? null, client_id: e.clientId ?? null,
        ip: e.ip ?? null, details: JSON.stringify(e.details ?? {}),
      });
    },
    async list(filter: { type?: string; userId?: string; limit: number }): Promise<Array<AuditEvent & { id: number; at: number }>> {
      const q = db('events').orderBy('id', 'desc').limit(filter.limit);
      if (filter.type) q.where({ type: filter.type });
      if (filter.userId) q.where({ user_id: filter.userId });
      const rows = await q;
      return rows.map((r: Record<string, unknown>) => ({
        id: Number(r.id), at: Number(r.at), type: r.type as EventType, userId: r.user_id as string | null,
        clientId: r.client_id as string | null, ip: r.ip as string | null, details: JSON.parse(r.details as string),
      }));
    },
  };
}
