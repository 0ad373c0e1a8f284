/**
 * Management API for OIDC clients:
 *
 *   POST   /api/v1/clients               {clientId?, name, redirectUris, postLogoutRedirectUris?, public?, firstParty?, mfaPolicy?, callbackUrl?}
 *                                        → 201 {client, clientSecret, callbackSecret}
 *   GET    /api/v1/clients               → 200 {clients}
 *   GET    /api/v1/clients/:id           → 200 client
 *   PATCH  /api/v1/clients/:id           {name?, redirectUris?, postLogoutRedirectUris?, firstParty?, mfaPolicy?, callbackUrl?}
 *                                        → 200 client (+ callbackSecret when the first callback URL was set)
 *   POST   /api/v1/clients/:id/secret    → 200 {clientSecret}
 *   POST   /api/v1/clients/:id/callback-secret → 200 {callbackSecret}
 *   POST   /api/v1/clients/:id/callback/enable → 200 client
 *   DELETE /api/v1/clients/:id           → 204
 *
 * A secret appears only in the answer that created it; client bodies are
 * strict, so a secret slipping into one fails the response check. The
 * callback fields appear in a client body only when it has a callback URL.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { route, ErrorBody, type ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';
import type { ApiKeyRecord } from '../../store/api-keys.ts';
import type { ClientRecord } from '../../store/clients.ts';
import { clientView, type ClientAuditContext } from '../../oidc/clients.ts';

const Params = z.object({ id: z.string().min(1).max(100) });
const Uris = z.array(z.string().max(2000)).max(20);
const MfaPolicy = z.enum(['off', 'optional', 'required']);

const ClientBody = z.strictObject({
  clientId: z.string(),
  name: z.string(),
  redirectUris: z.array(z.string()),
  postLogoutRedirectUris: z.array(z.string()),
  public: z.boolean(),
  firstParty: z.boolean(),
  mfaPolicy: MfaPolicy.nullable(),
  clientCredentials: z.boolean(),
  // Present only for a client with a callback URL.
  callbackUrl: z.string().optional(),
  callbackStatus: z.enum(['active', 'disabled']).optional(),
  callbackDisabledAt: z.string().nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const UpdatedClientBody = z.strictObject({ ...ClientBody.shape, callbackSecret: z.string().optional() });

/** A client as the API shows it: never a secret or its sealed form. */
function clientBody(c: ClientRecord): z.infer<typeof ClientBody> {
  const { callbackUrl, callbackStatus, callbackDisabledAt, ...v } = clientView(c);
  return {
    ...v,
    ...(callbackUrl !== null && callbackStatus !== null
      ? { callbackUrl, callbackStatus, callbackDisabledAt: callbackDisabledAt === null ? null : new Date(callbackDisabledAt).toISOString() }
      : {}),
    createdAt: new Date(v.createdAt).toISOString(), updatedAt: new Date(v.updatedAt).toISOString(),
  };
}

const CallbackUrl = z.string().max(2000).nullable();

// Strict bodies: a misspelt `mfaPolicy` must not quietly leave the policy unset.
const CreateBody = z.strictObject({
  clientId: z.string().max(100).optional(),
  name: z.string().max(1000),
  redirectUris: Uris,
  postLogoutRedirectUris: Uris.optional(),
  public: z.boolean().default(false),
  firstParty: z.boolean().default(false),
  mfaPolicy: MfaPolicy.nullable().default(null),
  callbackUrl: CallbackUrl.optional(),
  /** Also allow the client_credentials grant (confidential clients only). */
  clientCredentials: z.boolean().default(false),
});
const PatchBody = z.strictObject({
  name: z.string().max(1000).optional(),
  redirectUris: Uris.optional(),
  postLogoutRedirectUris: Uris.optional(),
  firstParty: z.boolean().optional(),
  mfaPolicy: MfaPolicy.nullable().optional(),
  callbackUrl: CallbackUrl.optional(),
}).refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');

const notFound = { description: 'No such client (client.not_found)', schema: ErrorBody };
const auditOf = (key: ApiKeyRecord | null, ctx: Context): ClientAuditContext => ({ actor: `api_key:${key!.id}`, ip: ctx.ip });

export function clientRoutes(deps: ApiDeps): ApiRoute[] {
  const { clients } = deps;
  return [
    route({
      method: 'post', path: '/api/v1/clients', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Register a client; a confidential client\'s secret is shown only in this answer',
      body: CreateBody,
      responses: {
        201: {
          description: 'The new client, its secret (null for a public client) and its callback signing secret (null without a callback URL)',
          schema: z.strictObject({ client: ClientBody, clientSecret: z.string().nullable(), callbackSecret: z.string().nullable() }),
        },
        409: { description: 'A client with that id exists (client.id_taken)', schema: ErrorBody },
      },
      async handler({ body, key, ctx }) {
        const { client, clientSecret, callbackSecret } = await clients.create(body, auditOf(key, ctx));
        return { status: 201, body: { client: clientBody(client), clientSecret, callbackSecret }, headers: { Location: `/api/v1/clients/${encodeURIComponent(client.clientId)}` } };
      },
    }),

    route({
      method: 'get', path: '/api/v1/clients', tag: 'Clients', scopes: ['clients:read'],
      summary: 'List clients in id order',
      responses: { 200: { description: 'Every client', schema: z.strictObject({ clients: z.array(ClientBody) }) } },
      async handler() {
        return { status: 200, body: { clients: (await clients.list()).map(clientBody) } };
      },
    }),

    route({
      method: 'get', path: '/api/v1/clients/:id', tag: 'Clients', scopes: ['clients:read'],
      summary: 'Get a client',
      params: Params,
      responses: { 200: { description: 'The client', schema: ClientBody }, 404: notFound },
      async handler({ params }) {
        return { status: 200, body: clientBody(await clients.get(params.id)) };
      },
    }),

    route({
      method: 'patch', path: '/api/v1/clients/:id', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Change a client\'s name, redirect URIs, first-party flag, MFA policy or callback URL; the next sign-in uses them',
      params: Params,
      body: PatchBody,
      responses: {
        200: { description: 'The client as changed, with callbackSecret (shown only here) when it got its first callback URL', schema: UpdatedClientBody },
        404: notFound,
      },
      async handler({ params, body, key, ctx }) {
        const { client, callbackSecret } = await clients.update(params.id, body, auditOf(key, ctx));
        return { status: 200, body: { ...clientBody(client), ...(callbackSecret ? { callbackSecret } : {}) } };
      },
    }),

    route({
      method: 'post', path: '/api/v1/clients/:id/callback-secret', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Replace the callback signing secret; callbacks are signed with the new one at once',
      params: Params,
      responses: {
        200: { description: 'The new whsec_ secret, shown only here', schema: z.strictObject({ callbackSecret: z.string() }) },
        400: { description: 'The client has no callback URL, or the request is not valid (request.invalid)', schema: ErrorBody },
        404: notFound,
      },
      async handler({ params, key, ctx }) {
        return { status: 200, body: { callbackSecret: await clients.rotateCallbackSecret(params.id, auditOf(key, ctx)) } };
      },
    }),

    route({
      method: 'post', path: '/api/v1/clients/:id/callback/enable', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Re-enable a callback that was disabled after sustained delivery failure',
      params: Params,
      responses: {
        200: { description: 'The client, callback active', schema: ClientBody },
        400: { description: 'The client has no callback URL, or the request is not valid (request.invalid)', schema: ErrorBody },
        404: notFound,
      },
      async handler({ params, key, ctx }) {
        return { status: 200, body: clientBody(await clients.enableCallback(params.id, auditOf(key, ctx))) };
      },
    }),

    route({
      method: 'post', path: '/api/v1/clients/:id/secret', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Replace a confidential client\'s secret; the old one stops working at once',
      params: Params,
      responses: {
        200: { description: 'The new secret, shown only here', schema: z.strictObject({ clientSecret: z.string() }) },
        400: { description: 'The client is public (client.no_secret), or the request is not valid', schema: ErrorBody },
        404: notFound,
      },
      async handler({ params, key, ctx }) {
        return { status: 200, body: { clientSecret: await clients.rotateSecret(params.id, auditOf(key, ctx)) } };
      },
    }),

    route({
      method: 'delete', path: '/api/v1/clients/:id', tag: 'Clients', scopes: ['clients:write'],
      summary: 'Delete a client with every grant and token issued to it',
      params: Params,
      responses: { 204: { description: 'Deleted' }, 404: notFound },
      async handler({ params, key, ctx }) {
        await clients.delete(params.id, auditOf(key, ctx));
        return { status: 204 };
      },
    }),
  ];
}
