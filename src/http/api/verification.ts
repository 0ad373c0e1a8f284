/**
 * The verification API, for apps with their own login screens. Paths, fields
 * and statuses follow FusionAuth's Login and Two Factor APIs:
 *
 *   POST /api/login              {loginId, password, applicationId} → 200 {user, token} | 242 {twoFactorId, methods}
 *   POST /api/two-factor/start   {userId | loginId, applicationId, state?} → 200 {twoFactorId, methods}
 *   POST /api/two-factor/login   {twoFactorId, code, methodId?} → 200 {user, token, state?}
 *   POST /api/two-factor/send    {twoFactorId, methodId?} → 200 {}  (email and SMS methods)
 *
 * A wrong code answers 400 mfa.invalid_code, not FusionAuth's 421: fetch
 * implementations resend a request answered 421, spending two tries.
 *
 * A challenge started here is bound to the API key that started it.
 */
import { z } from 'zod';
import { route, ErrorBody, type ApiRoute } from './route.ts';
import { PendingBody, UserBody, userBody } from './shapes.ts';
import type { ApiDeps } from './index.ts';
import { AppError } from '../../errors.ts';
import type { ApiKeyRecord } from '../../store/api-keys.ts';
import type { User } from '../../store/users.ts';
import type { MfaPolicy } from '../../config.ts';

const bindingOf = (key: ApiKeyRecord | null) => `api_key:${key!.id}`;

const Completed = z.object({ user: UserBody, token: z.string(), state: z.unknown().optional() });

export function verificationRoutes(deps: ApiDeps): ApiRoute[] {
  const { users, clients, challenges, signIn, tokens, config, clock } = deps;

  async function clientOf(applicationId: string) {
    const client = await clients.find(applicationId);
    if (!client) throw new AppError('request.invalid', { message: 'applicationId is not a registered client.', details: { field: 'applicationId' } });
    return client;
  }

  /** The sign-in context of a call through this API: the client's policy, bound to the calling key. */
  function contextOf(client: { clientId: string; mfaPolicy: MfaPolicy | null }, origin: 'login_api' | 'start_api', key: ApiKeyRecord | null, ip: string) {
    return { clientId: client.clientId, policy: client.mfaPolicy ?? config.mfa.policy, requestedAcrs: [], origin, binding: bindingOf(key), ip };
  }

  async function completed(user: User, clientId: string, amr: string[], acr: string, state?: unknown) {
    await signIn.completed({ userId: user.id, clientId, amr });
    const token = await tokens.sign({ sub: user.id, aud: clientId, amr, acr, authTime: Math.floor(clock.now() / 1000) });
    return { status: 200, body: { user: userBody(user), token, ...(state === undefined ? {} : { state }) } };
  }

  async function pending(twoFactorId: string, challenge: Parameters<typeof challenges.describe>[0], user: User, status: number) {
    return { status, body: { twoFactorId, methods: await challenges.describe(challenge, user.email, { passkeyOptions: true }) } };
  }

  return [
    route({
      method: 'post', path: '/api/login', tag: 'Verification', scopes: ['login'],
      summary: 'Check a password; answers 242 when a second factor is needed',
      body: z.object({ loginId: z.string().min(1).max(320), password: z.string().min(1).max(1024), applicationId: z.string().min(1) }),
      responses: {
        200: { description: 'Signed in: the user and a short-lived JWT', schema: Completed },
        242: { description: 'A second factor is needed', schema: PendingBody },
        404: { description: 'The user was not found or the password was incorrect', schema: ErrorBody },
        429: { description: 'Too many password failures for this loginId (auth.throttled, details.retryAfter): the same for every loginId, known or not', schema: ErrorBody },
      },
      async handler({ body, key, ctx }) {
        const client = await clientOf(body.applicationId);
        const step = await signIn.passwordStep(body.loginId, body.password, contextOf(client, 'login_api', key, ctx.ip)).catch((err: unknown) => {
          // FusionAuth answers 404 for an unknown user and a wrong password alike.
          throw err instanceof AppError && err.code === 'auth.invalid_credentials' ? new AppError('auth.login_failed') : err;
        });
        if (step.kind === 'complete') return completed(step.user, client.clientId, step.amr, step.acr);
        return pending(step.twoFactorId, step.challenge, step.user, 242);
      },
    }),

    route({
      method: 'post', path: '/api/two-factor/start', tag: 'Verification', scopes: ['login'],
      summary: 'Start a second-factor check for a user the app already signed in',
      body: z.object({
        userId: z.string().optional(), loginId: z.string().optional(), applicationId: z.string().min(1), state: z.unknown().optional(),
      }).refine((b) => Boolean(b.userId) !== Boolean(b.loginId), 'give exactly one of userId and loginId'),
      responses: {
        200: { description: 'The challenge and the methods the user can answer it with', schema: PendingBody },
        404: { description: 'No such user', schema: ErrorBody },
        403: { description: 'The user has no active second factor, or the key lacks a scope', schema: ErrorBody },
      },
      async handler({ body, key, ctx }) {
        const client = await clientOf(body.applicationId);
        const user = body.userId ? await users.findById(body.userId) : await users.findByEmail(body.loginId!);
        if (!user) throw new AppError('user.not_found');
        const step = await signIn.secondFactorStep(user.id, [], { ...contextOf(client, 'start_api', key, ctx.ip), appState: body.state, allowEnrollment: false });
        return pending(step.twoFactorId, step.challenge, step.user, 200);
      },
    }),

    route({
      method: 'post', path: '/api/two-factor/login', tag: 'Verification', scopes: ['login'],
      summary: 'Answer a challenge with a code',
      body: z.object({ twoFactorId: z.string().min(1).max(100), code: z.string().max(32).optional(), methodId: z.string().optional(), credential: z.unknown().optional() }),
      responses: {
        200: { description: 'The second factor is verified: the user and a short-lived JWT', schema: Completed },
        404: { description: 'The challenge is unknown, expired or already used', schema: ErrorBody },
        400: { description: 'The code is not correct (mfa.invalid_code), or bad input. Not FusionAuth\'s 421: fetch implementations resend a request answered 421, which would spend two tries per wrong code', schema: ErrorBody },
        429: { description: 'Too many wrong codes: the challenge has failed (mfa.too_many_attempts), or the account\'s second factor is locked (mfa.locked)', schema: ErrorBody },
        403: { description: 'Push: the request was denied on the device (push.denied)', schema: ErrorBody },
        409: { description: 'Push: not answered yet (push.pending); poll GET /api/push/:ref or retry', schema: ErrorBody },
      },
      async handler({ body, key }) {
        const challenge = await challenges.find(body.twoFactorId, bindingOf(key));
        // A client deleted since the challenge began gets no token.
        if (!(await clients.find(challenge.clientId))) throw new AppError('mfa.challenge_not_found');
        const outcome = await challenges.verify(challenge, { methodId: body.methodId, code: body.code ?? '', credential: body.credential });
        const user = await users.findById(outcome.userId);
        // Suspended while the challenge was pending: no token.
        if (!user || user.status !== 'ACTIVE') throw new AppError('mfa.challenge_not_found');
        return completed(user, outcome.clientId, outcome.amr, outcome.acr, outcome.appState);
      },
    }),

    route({
      method: 'post', path: '/api/two-factor/send', tag: 'Verification', scopes: ['login'],
      summary: 'Send (or resend) the code of an email or SMS method (the previous code stops working), or a push approval request to the user\'s linked devices',
      body: z.object({
        twoFactorId: z.string().min(1).max(100),
        methodId: z.string().max(100).optional(),
        /** For push: what the device shows, and the local check it must do. */
        push: z.object({
          header: z.string().min(1).max(100).optional(),
          text: z.string().min(1).max(500).optional(),
          details: z.record(z.string().max(40), z.string().max(200)).refine((d) => Object.keys(d).length <= 10, 'at most 10 details').optional(),
          kind: z.enum(['simple', 'pin', 'biometric']).optional(),
        }).optional(),
      }),
      responses: {
        200: { description: 'Sent; for push, the public reference to poll and the number the app must show for the person to type on the device', schema: z.union([z.strictObject({}), z.strictObject({ pushRef: z.string(), number: z.string() })]) },
        400: { description: 'The method is not an email or SMS method of this challenge (mfa.method_not_available), or bad input', schema: ErrorBody },
        404: { description: 'The challenge is unknown, expired or already used', schema: ErrorBody },
        429: { description: 'Send limit reached for the user or the destination (mfa.send_limited), or pushes limited or paused (push.limited, push.paused): nothing was sent', schema: ErrorBody },
        503: { description: 'The email or SMS gateway failed (delivery.failed): nothing changed, try again', schema: ErrorBody },
      },
      async handler({ body, key }) {
        const sent = await challenges.sendCode(await challenges.find(body.twoFactorId, bindingOf(key)), body.methodId, body.push);
        return { status: 200, body: sent.push ? { pushRef: sent.push.ref, number: sent.push.number } : {} };
      },
    }),

    route({
      method: 'get', path: '/api/push/:ref', tag: 'Verification', scopes: ['login'],
      summary: 'The state of a push approval request by its public reference: pending, approved, denied, expired or succeeded',
      params: z.object({ ref: z.string().min(1).max(64) }),
      responses: {
        200: { description: 'The state', schema: z.strictObject({ state: z.enum(['pending', 'approved', 'denied', 'expired', 'succeeded']) }) },
        404: { description: 'No such request started with this API key', schema: ErrorBody },
      },
      async handler({ params, key }) {
        const found = await challenges.pushStatus(params.ref, bindingOf(key));
        if (!found) throw new AppError('push.request_not_found');
        return { status: 200, body: { state: found } };
      },
    }),
  ];
}
