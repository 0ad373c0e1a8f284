/**
 * The factor-management API, with Okta's Factors API paths, fields and
 * statuses:
 *
 *   POST   /api/v1/users/:id/factors                           enrol → 200 PENDING_ACTIVATION + _embedded.activation
 *   GET    /api/v1/users/:id/factors                           list → 200 [factor]
 *   GET    /api/v1/users/:id/factors/:fid                      get → 200 factor
 *   GET    /api/v1/users/:id/factors/:fid/qr                   the otpauth URI as a PNG, while pending
 *   POST   /api/v1/users/:id/factors/:fid/lifecycle/activate   {passCode} → 200 ACTIVE | 403 E0000068
 *   POST   /api/v1/users/:id/factors/:fid/verify               {passCode} → 200 {factorResult} | 403 E0000068
 *   DELETE /api/v1/users/:id/factors/:fid                      → 204
 *   POST   /api/v1/users/:id/lifecycle/reset_factors           → 200 {}
 *   POST   /api/v1/users/:id/lifecycle/unlock                  end a second-factor lock-out → 200 {}
 *   GET    /api/v1/users/:id/lockout                           → 200 {locked, lockedUntil, failures}
 *   POST   /api/v1/users/:id/recovery-codes                    new set → 200 {recoveryCodes} (shown once)
 *   GET    /api/v1/users/:id/recovery-codes                    → 200 {remaining}
 *
 * Verify and activate count toward the account's second-factor lock-out
 * (429 mfa.locked while locked), like every other door.
 *
 * A wrong code answers Okta's error body (the handler builds it); every other
 * error is ours, `{error, message, details?}`.
 */
import { z } from 'zod';
import { route, ErrorBody, type ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';
import type { ApiKeyRecord } from '../../store/api-keys.ts';
import type { Context } from 'koa';
import { TOTP_PROVIDERS, type AuditContext, type FactorView } from '../../mfa/factor-admin.ts';

const Link = z.strictObject({ href: z.string(), hints: z.strictObject({ allow: z.array(z.string()) }) });

const factorFields = {
  id: z.string(),
  factorType: z.enum(['token:software:totp', 'sms', 'email', 'webauthn']),
  provider: z.enum(TOTP_PROVIDERS),
  vendorName: z.string(),
  status: z.enum(['PENDING_ACTIVATION', 'ACTIVE']),
  created: z.iso.datetime(),
  lastUpdated: z.iso.datetime(),
  lastVerified: z.iso.datetime().optional(),
  profile: z.union([z.strictObject({ credentialId: z.string() }), z.strictObject({ phoneNumber: z.string() }), z.strictObject({ email: z.string() })]),
  _links: z.record(z.string(), Link),
};
// Strict: a response that grew an `_embedded` (the seed) fails the declared-shape check.
const FactorBody = z.strictObject(factorFields);

const EnrolledBody = z.strictObject({
  ...factorFields,
  _embedded: z.strictObject({
    activation: z.strictObject({
      timeStep: z.number(),
      sharedSecret: z.string(),
      encoding: z.literal('base32'),
      /** Characters in sharedSecret. */
      keyLength: z.number(),
      algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']),
      digits: z.number(),
      uri: z.string(),
      _links: z.strictObject({ qrcode: z.strictObject({ href: z.string(), type: z.literal('image/png') }) }),
    }),
  }),
});

/** An activation that turned on the user's first factor also answers the new recovery codes, once. */
const ActivatedBody = z.strictObject({
  ...factorFields,
  _embedded: z.strictObject({ recoveryCodes: z.array(z.string()) }).optional(),
});
const locked = { description: 'The account\'s second factor is locked after too many wrong answers (mfa.locked, details.retryAfter in seconds)', schema: ErrorBody };
const RecoveryCodesBody = z.strictObject({ recoveryCodes: z.array(z.string()) });

/** Okta's wrong-code answer. */
const OktaError = z.strictObject({
  errorCode: z.literal('E0000068'),
  errorSummary: z.string(),
  errorLink: z.string(),
  errorCauses: z.array(z.strictObject({ errorSummary: z.string() })),
});
const invalidPassCode = {
  status: 403,
  body: {
    errorCode: 'E0000068', errorSummary: 'Invalid Passcode/Answer', errorLink: 'E0000068',
    errorCauses: [{ errorSummary: 'Your passcode doesn\'t match our records. Please try again.' }],
  } satisfies z.infer<typeof OktaError>,
};

// Okta spells HMAC names like HMacSHA256; the otpauth format says SHA256.
const Algorithm = z.string().transform((s) => s.replace(/^hmac/i, '').replace('-', '').toUpperCase()).pipe(z.enum(['SHA1', 'SHA256', 'SHA512']));

const UserParams = z.object({ id: z.string().min(1).max(100) });
const FactorParams = UserParams.extend({ fid: z.string().min(1).max(100) });
const PassCode = z.object({ passCode: z.string().max(64) });

const notFound = { description: 'No such user, or no such factor of this user', schema: ErrorBody };
const refused = { description: 'Wrong, malformed or replayed code (Okta E0000068), or the API key lacks a scope', schema: z.union([OktaError, ErrorBody]) };

export function factorRoutes(deps: ApiDeps): ApiRoute[] {
  const admin = deps.factorAdmin;
  const url = (path: string) => new URL(path, deps.config.issuer).href;
  const base = (userId: string) => `/api/v1/users/${encodeURIComponent(userId)}/factors`;
  const audit = (key: ApiKeyRecord | null, ctx: Context): AuditContext => ({ actor: `api_key:${key!.id}`, ip: ctx.ip });

  function factorBody(f: FactorView): z.infer<typeof FactorBody> {
    const self = `${base(f.userId)}/${encodeURIComponent(f.id)}`;
    const next: z.infer<typeof FactorBody>['_links'] = f.status === 'ACTIVE'
      ? { verify: { href: url(`${self}/verify`), hints: { allow: ['POST'] } } }
      : { activate: { href: url(`${self}/lifecycle/activate`), hints: { allow: ['POST'] } } };
    return {
      id: f.id, factorType: f.factorType, provider: f.provider, vendorName: f.provider, status: f.status,
      created: new Date(f.createdAt).toISOString(), lastUpdated: new Date(f.updatedAt).toISOString(),
      ...(f.lastVerifiedAt === null ? {} : { lastVerified: new Date(f.lastVerifiedAt).toISOString() }),
      profile: f.profile,
      _links: {
        ...next,
        self: { href: url(self), hints: { allow: ['GET', 'DELETE'] } },
        user: { href: url(`/api/v1/users/${encodeURIComponent(f.userId)}`), hints: { allow: ['GET'] } },
      },
    };
  }

  return [
    route({
      method: 'post', path: '/api/v1/users/:id/factors', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Enrol a factor: an authenticator app (the seed is answered here and never again), or sms/email (a code is sent; activate with it)',
      params: UserParams,
      body: z.object({
        factorType: z.string().min(1).max(64),
        provider: z.string().min(1).max(40).optional(),
        profile: z.object({ phoneNumber: z.string().max(40).optional(), email: z.string().max(320).optional() }).optional(),
        settings: z.object({
          algorithm: Algorithm.optional(),
          digits: z.union([z.literal(6), z.literal(8)]).optional(),
          period: z.union([z.literal(30), z.literal(60)]).optional(),
        }).optional(),
      }),
      responses: {
        200: { description: 'The PENDING_ACTIVATION factor: for an authenticator with its activation details (Okta answers 200)', schema: z.union([EnrolledBody, FactorBody]) },
        400: { description: 'Bad input (details.field names it, e.g. an invalid profile.phoneNumber), or an unsupported factorType/provider', schema: ErrorBody },
        404: { description: 'No such user', schema: ErrorBody },
        409: { description: 'The user already has an ACTIVE factor of this type', schema: ErrorBody },
        429: { description: 'Send limit reached for the user or the destination (mfa.send_limited)', schema: ErrorBody },
        503: { description: 'The code could not be sent (delivery.failed): no factor was created; try again', schema: ErrorBody },
      },
      async handler({ params, body, key, ctx }) {
        if (body.factorType === 'sms' || body.factorType === 'email') {
          const factor = await admin.enrollDelivered({ userId: params.id, factorType: body.factorType, phoneNumber: body.profile?.phoneNumber, email: body.profile?.email }, audit(key, ctx));
          return { status: 200, body: factorBody(factor) };
        }
        const { factor, secret, uri, settings } = await admin.enroll({ userId: params.id, ...body }, audit(key, ctx));
        const qr = url(`${base(factor.userId)}/${encodeURIComponent(factor.id)}/qr`);
        const activation = {
          timeStep: settings.period, sharedSecret: secret, encoding: 'base32' as const, keyLength: secret.length,
          algorithm: settings.algorithm, digits: settings.digits, uri, _links: { qrcode: { href: qr, type: 'image/png' as const } },
        };
        return { status: 200, body: { ...factorBody(factor), _embedded: { activation } } };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id/factors', tag: 'Factors', scopes: ['factors:read'],
      summary: 'List the user\'s factors, pending ones included',
      params: UserParams,
      responses: { 200: { description: 'The factors, oldest first', schema: z.array(FactorBody) }, 404: notFound },
      async handler({ params }) {
        return { status: 200, body: (await admin.list(params.id)).map(factorBody) };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id/factors/:fid', tag: 'Factors', scopes: ['factors:read'],
      summary: 'Get one factor (never its secret)',
      params: FactorParams,
      responses: { 200: { description: 'The factor', schema: FactorBody }, 404: notFound },
      async handler({ params }) {
        return { status: 200, body: factorBody(await admin.get(params.id, params.fid)) };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id/factors/:fid/qr', tag: 'Factors', scopes: ['factors:write'],
      summary: 'The otpauth URI as a QR code (image/png), only while the factor is PENDING_ACTIVATION',
      params: FactorParams,
      responses: { 200: { description: 'A PNG image' }, 404: { description: 'No such user or factor, or the factor is not pending', schema: ErrorBody } },
      async handler({ params }) {
        return { status: 200, body: await admin.qrPng(params.id, params.fid), headers: { 'Content-Type': 'image/png' } };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/factors/:fid/lifecycle/activate', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Activate a pending factor with a first code from the authenticator',
      params: FactorParams,
      body: PassCode,
      responses: {
        200: { description: 'The ACTIVE factor (with the new recovery codes when it is the user\'s first)', schema: ActivatedBody },
        400: { description: 'Bad input, or the factor is not PENDING_ACTIVATION', schema: ErrorBody },
        403: refused,
        404: notFound,
        429: locked,
      },
      async handler({ params, body, key, ctx }) {
        const activated = await admin.activate(params.id, params.fid, body.passCode, audit(key, ctx));
        if (!activated) return invalidPassCode;
        const embedded = activated.recoveryCodes ? { _embedded: { recoveryCodes: activated.recoveryCodes } } : {};
        return { status: 200, body: { ...factorBody(activated.factor), ...embedded } };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/factors/:fid/lifecycle/resend', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Send a new activation code to a pending sms or email factor; the previous code stops working',
      params: FactorParams,
      responses: {
        200: { description: 'Sent', schema: z.strictObject({}) },
        400: { description: 'The factor is not a pending sms or email factor', schema: ErrorBody },
        404: notFound,
        429: { description: 'Send limit reached (mfa.send_limited)', schema: ErrorBody },
        503: { description: 'The code could not be sent (delivery.failed); try again', schema: ErrorBody },
      },
      async handler({ params }) {
        await admin.resend(params.id, params.fid);
        return { status: 200, body: {} };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/factors/:fid/verify', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Verify a code; a code is accepted once. For sms and email, a call without passCode sends the code first (factorResult CHALLENGE)',
      params: FactorParams,
      body: z.object({ passCode: z.string().max(64).optional() }),
      responses: {
        201: { description: 'sms/email without passCode: a code was sent', schema: z.strictObject({ factorResult: z.literal('CHALLENGE') }) },
        503: { description: 'The code could not be sent (delivery.failed); try again', schema: ErrorBody },
        200: { description: 'The code is right', schema: z.strictObject({ factorResult: z.literal('SUCCESS') }) },
        400: { description: 'Bad input, or the factor is not ACTIVE', schema: ErrorBody },
        403: { ...refused, description: 'Wrong, malformed or replayed code (Okta E0000068), a suspended user, or the API key lacks a scope' },
        404: notFound,
        429: locked,
      },
      async handler({ params, body, key, ctx }) {
        if (body.passCode === undefined || body.passCode === '') {
          const factor = await admin.get(params.id, params.fid);
          if (factor.factorType === 'sms' || factor.factorType === 'email') {
            await admin.challenge(params.id, params.fid);
            return { status: 201, body: { factorResult: 'CHALLENGE' } };
          }
        }
        const ok = await admin.verify(params.id, params.fid, body.passCode ?? '', audit(key, ctx));
        return ok ? { status: 200, body: { factorResult: 'SUCCESS' } } : invalidPassCode;
      },
    }),

    route({
      method: 'delete', path: '/api/v1/users/:id/factors/:fid', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Delete (Okta: reset) one factor',
      params: FactorParams,
      responses: { 204: { description: 'Deleted' }, 404: notFound },
      async handler({ params, key, ctx }) {
        await admin.remove(params.id, params.fid, audit(key, ctx));
        return { status: 204 };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/lifecycle/reset_factors', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Delete every factor of the user',
      params: UserParams,
      responses: { 200: { description: 'Done (Okta answers 200 with an empty object)', schema: z.strictObject({}) }, 404: notFound },
      async handler({ params, key, ctx }) {
        await admin.reset(params.id, audit(key, ctx));
        return { status: 200, body: {} };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/lifecycle/unlock', tag: 'Factors', scopes: ['factors:write'],
      summary: 'End a second-factor lock-out and clear the failure count',
      params: UserParams,
      responses: { 200: { description: 'Unlocked (also when it was not locked)', schema: z.strictObject({}) }, 404: notFound },
      async handler({ params, key }) {
        await admin.unlock(params.id, `api_key:${key!.id}`);
        return { status: 200, body: {} };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id/lockout', tag: 'Factors', scopes: ['factors:read'],
      summary: 'Whether the user\'s second factor is locked, until when, and the failures counted',
      params: UserParams,
      responses: {
        200: { description: 'The lock-out state', schema: z.strictObject({ locked: z.boolean(), lockedUntil: z.iso.datetime().nullable(), failures: z.number() }) },
        404: notFound,
      },
      async handler({ params }) {
        const st = await admin.lockStatus(params.id);
        return { status: 200, body: { locked: st.locked, lockedUntil: st.lockedUntil ? new Date(st.lockedUntil).toISOString() : null, failures: st.failures } };
      },
    }),

    route({
      method: 'post', path: '/api/v1/users/:id/recovery-codes', tag: 'Factors', scopes: ['factors:write'],
      summary: 'Make a new set of recovery codes (the old set stops working); answered once',
      params: UserParams,
      responses: {
        200: { description: 'The new codes', schema: RecoveryCodesBody },
        400: { description: 'The user has no active second factor', schema: ErrorBody },
        404: notFound,
      },
      async handler({ params, key, ctx }) {
        return { status: 200, body: { recoveryCodes: await admin.regenerateRecoveryCodes(params.id, audit(key, ctx)) } };
      },
    }),

    route({
      method: 'get', path: '/api/v1/users/:id/recovery-codes', tag: 'Factors', scopes: ['factors:read'],
      summary: 'How many unused recovery codes the user has (never the codes)',
      params: UserParams,
      responses: { 200: { description: 'The count', schema: z.strictObject({ remaining: z.number() }) }, 404: notFound },
      async handler({ params }) {
        return { status: 200, body: { remaining: await admin.recoveryCodesLeft(params.id) } };
      },
    }),
  ];
}
