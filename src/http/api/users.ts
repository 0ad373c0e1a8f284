/**
 * Management API for users (Okta-style lifecycle paths):
 *
 *   POST   /api/v1/users                            {email, name?, password?} → 201 user
 *   GET    /api/v1/users?q=&limit=&after=           → 200 {users, nextCursor}
 *   GET    /api/v1/users/:id                        → 200 user
 *   PATCH  /api/v1/users/:id                        {email?, name?, password?} → 200 user
 *   POST   /api/v1/users/:id/lifecycle/suspend      → 200 user
 *   POST   /api/v1/users/:id/lifecycle/unsuspend    → 200 user
 *   DELETE /api/v1/users/:id                        → 204
 *
 * Responses are built by userBody, which never carries the password hash.
 */
import type { Context } from 'koa';
import { AppError } from '../../errors.ts';
import { z } from 'zod';
import { route, ErrorBody, type ApiRoute } from './route.ts';
import { UserBody, userBody } from './shapes.ts';
import type { ApiDeps } from './index.ts';
import type { ApiKeyRecord } from '../../store/api-keys.ts';
import type { AuditContext } from '../../users/users.ts';

const Params = z.object({ id: z.string().min(1).max(100) });
const UserList = z.object({ users: z.array(UserBody), nextCursor: z.string().nullable() });

const notFound = { description: 'No such user', schema: ErrorBody };
const emailTaken = { description: 'Another user has that email address', schema: ErrorBody };

/** Cursors are opaque to callers: base64url of the last email of the previous page. */
function encodeCursor(email: string): string {
  return Buffer.from(JSON.stringify({ e: email }), 'utf8').toString('base64url');
}

const Cursor = z.string().max(1500).transform((raw, ctx) => {
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && typeof (v as { e?: unknown }).e === 'string') return (v as { e: string }).e;
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'not a cursor this API gave out' });
  return z.NEVER;
});

// Strict bodies: a misspelt `password` must not quietly create a user without one.
const CreateBody = z.strictObject({ email: z.string(), name: z.string().nullable().optional(), password: z.string().optional() });
const PatchBody = z.strictObject({ email: z.string().optional(), name: z.string().nullable().optional(), password: z.string().optional() })
  .refine((b) => b.email !== undefined || b.name !== undefined || b.password !== undefined, 'give at least one of email, name and password');

const auditOf = (key: ApiKeyRecord | null, ctx: Context): AuditContext => ({ actor: `api_key:${key!.id}`, ip: ctx.ip });

export function userRoutes(deps: ApiDeps): ApiRoute[] {
  const { users } = deps;
  const lifecycle = (action: 'suspend' | 'unsuspend', summary: string) => route({
    method: 'post', path: `/api/v1/users/:id/lifecycle/${action}`, tag: 'Users', scopes: ['users:write'], summary,
    params: Params,
    responses: {
      200: { description: 'The user, in its new status', schema: UserBody },
      404: notFound,
      409: { description: 'The user is already in that status (user.already_in_state)', schema: ErrorBody },
    },
    async handler({ params, key, ctx }) {
      return { status: 200, body: userBody(await users[action](params.id, auditOf(key, ctx))) };
    },
  });

  return [
    route({
      method: 'post', path: '/api/v1/users', tag: 'Users', scopes: ['users:write'],
      summary: 'Create a user, with or without a password',
      body: CreateBody,
      responses: {
        201: { description: 'The new user', schema: UserBody },
        409: emailTaken,
      },
      async handler({ body, key, ctx }) {
        const user = await users.create(body, auditOf(key, ctx));
        return { status: 201, body: userBody(user), headers: { Location: `/api/v1/users/${user.id}` } };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users', tag: 'Users', scopes: ['users:read'],
      summary: 'List users in email order, optionally searching email and name',
      query: z.object({
        q: z.string().max(200).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        after: Cursor.optional(),
      }),
      responses: { 200: { description: 'One page of users; nextCursor is null on the last', schema: UserList } },
      async handler({ query }) {
        const page = await users.page({ q: query.q, limit: query.limit, afterEmail: query.after });
        return {
          status: 200,
          body: { users: page.users.map(userBody), nextCursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter) },
        };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id', tag: 'Users', scopes: ['users:read'],
      summary: 'Get a user',
      params: Params,
      responses: { 200: { description: 'The user', schema: UserBody }, 404: notFound },
      async handler({ params }) {
        return { status: 200, body: userBody(await users.get(params.id)) };
      },
    }),

    route({
      method: 'patch', path: '/api/v1/users/:id', tag: 'Users', scopes: ['users:write'],
      summary: 'Change a user\'s email, name or password',
      params: Params,
      body: PatchBody,
      responses: { 200: { description: 'The user as changed', schema: UserBody }, 404: notFound, 409: emailTaken },
      async handler({ params, body, key, ctx }) {
        return { status: 200, body: userBody(await users.update(params.id, body, auditOf(key, ctx))) };
      },
    }),

    lifecycle('suspend', 'Suspend a user: password sign-in is refused and its tokens stop yielding claims'),
    lifecycle('unsuspend', 'Let a suspended user sign in again'),

    route({
      method: 'get', path: '/api/v1/users/:id/trusted-browsers', tag: 'Users', scopes: ['users:read'],
      summary: 'Browsers remembered for the user ("don\'t ask again on this browser"), live ones only',
      params: Params,
      responses: {
        200: {
          description: 'The remembered browsers, newest first',
          schema: z.array(z.strictObject({ id: z.string(), label: z.string(), created: z.iso.datetime(), expires: z.iso.datetime(), lastUsed: z.iso.datetime().nullable() })),
        },
        404: notFound,
      },
      async handler({ params }) {
        const user = await users.get(params.id);
        const iso = (ms: number) => new Date(ms).toISOString();
        return {
          status: 200,
          body: (await deps.trust.list(user.id)).map((b) => ({ id: b.id, label: b.label, created: iso(b.createdAt), expires: iso(b.expiresAt), lastUsed: b.lastUsedAt === null ? null : iso(b.lastUsedAt) })),
        };
      },
    }),

    route({
      method: 'delete', path: '/api/v1/users/:id/trusted-browsers/:bid', tag: 'Users', scopes: ['users:write'],
      summary: 'Forget a remembered browser: it is asked for the second factor again',
      params: Params.extend({ bid: z.string().min(1).max(100) }),
      responses: { 204: { description: 'Forgotten' }, 404: { description: 'No such user, or no such live remembered browser of this user', schema: ErrorBody } },
      async handler({ params, key }) {
        if (!(await deps.trust.revoke(params.id, params.bid, `api_key:${key!.id}`))) throw new AppError('request.not_found');
        return { status: 204 };
      },
    }),

    route({
      method: 'delete', path: '/api/v1/users/:id/sessions', tag: 'Users', scopes: ['users:write'],
      summary: 'End every session of the user and revoke its grants, access and refresh tokens (Okta: clear user sessions)',
      params: Params,
      responses: { 204: { description: 'Ended' }, 404: notFound },
      async handler({ params, key }) {
        const user = await users.get(params.id);
        await deps.endSessions(user.id, `api_key:${key!.id}`);
        return { status: 204 };
      },
    }),

    route({
      method: 'delete', path: '/api/v1/users/:id', tag: 'Users', scopes: ['users:write'],
      summary: 'Delete a user with its factors and challenges',
      params: Params,
      responses: { 204: { description: 'Deleted' }, 404: notFound },
      async handler({ params, key, ctx }) {
        await users.delete(params.id, auditOf(key, ctx));
        return { status: 204 };
      },
    }),
  ];
}
