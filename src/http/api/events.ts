/**
 * The audit trail, newest first:
 *
 *   GET /api/v1/events?type=&userId=&since=&until=&limit=&after= → 200 {events, nextCursor}
 *
 * `since` is inclusive and `until` exclusive (ISO 8601 times with an offset).
 */
import { z } from 'zod';
import { route, type ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';
import { EVENT_TYPES, type StoredEvent } from '../../store/events.ts';

const EventBody = z.object({
  id: z.number().int(),
  at: z.string(),
  type: z.enum(EVENT_TYPES),
  userId: z.string().nullable(),
  clientId: z.string().nullable(),
  ip: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

const eventBody = (e: StoredEvent): z.infer<typeof EventBody> => ({
  id: e.id, at: new Date(e.at).toISOString(), type: e.type, userId: e.userId, clientId: e.clientId, ip: e.ip, details: e.details,
});

/** Cursors are opaque to callers: base64url of the last id of the previous page. */
function encodeCursor(id: number): string {
  return Buffer.from(JSON.stringify({ i: id }), 'utf8').toString('base64url');
}

const Cursor = z.string().max(100).transform((raw, ctx) => {
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    const id = typeof v === 'object' && v !== null ? (v as { i?: unknown }).i : undefined;
    if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) return id;
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'not a cursor this API gave out' });
  return z.NEVER;
});

const Time = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export function eventRoutes(deps: ApiDeps): ApiRoute[] {
  const { events } = deps.stores;
  return [
    route({
      method: 'get', path: '/api/v1/events', tag: 'Events', scopes: ['events:read'],
      summary: 'Read the audit trail, newest first',
      query: z.object({
        type: z.enum(EVENT_TYPES).optional(),
        userId: z.string().max(100).optional(),
        since: Time.optional(),
        until: Time.optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        after: Cursor.optional(),
      }),
      responses: {
        200: { description: 'One page of events; nextCursor is null on the last', schema: z.object({ events: z.array(EventBody), nextCursor: z.string().nullable() }) },
      },
      async handler({ query }) {
        const { after, ...filter } = query;
        const page = await events.page({ ...filter, beforeId: after });
        return {
          status: 200,
          body: { events: page.events.map(eventBody), nextCursor: page.nextBeforeId === null ? null : encodeCursor(page.nextBeforeId) },
        };
      },
    }),
  ];
}
