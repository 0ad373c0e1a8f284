/**
 * Composes Twofold from its parts. Everything is passed in or built here, so
 * tests build the same app on their own database and clock.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { ROOT_DIR, type Config } from './config.ts';
import type { Db } from './store/db.ts';
import type { Clock } from './lib/clock.ts';
import { createSealer } from './lib/seal.ts';
import { createUsersStore } from './store/users.ts';
import { createFactorsStore } from './store/factors.ts';
import { createChallengesStore } from './store/challenges.ts';
import { createClientsStore } from './store/clients.ts';
import { createEventsStore } from './store/events.ts';
import { createProviderKeysStore } from './store/provider-keys.ts';
import { createThrottlesStore } from './store/throttles.ts';
import { createRecoveryCodesStore } from './store/recovery-codes.ts';
import { createSecondFactorLock } from './mfa/lockout.ts';
import { createPasswordThrottle } from './users/password-throttle.ts';
import { perIpLimit } from './http/middleware/rate-limit.ts';
import { createRecoveryCodes } from './mfa/recovery-codes.ts';
import { authenticatorMethod, recoveryCodeMethod } from './mfa/methods.ts';
import { keyedHasher } from './lib/hash.ts';
import { createOtpCodesStore } from './store/otp-codes.ts';
import { createWebAuthnStore } from './store/webauthn-challenges.ts';
import { createPasskeys } from './mfa/passkeys.ts';
import { createPushRequestsStore } from './store/push-requests.ts';
import { createPush, pushMethod } from './mfa/push.ts';
import { createCallbacks } from './delivery/callbacks.ts';
import { createPushNotifier, type PushNotifier } from './push/notifier.ts';
import { createEnrollmentGraceStore } from './store/enrollment-grace.ts';
import { createEnrollmentGrace } from './mfa/enrollment-grace.ts';
import { createTrustedBrowsersStore } from './store/trusted-browsers.ts';
import { createTrustedBrowsers } from './mfa/trusted-browsers.ts';
import { TRUST_COOKIE, enrollBinding } from './http/interaction/routes.ts';
import { createSentCodes, sentCodeMethod } from './mfa/sent-codes.ts';
import { createDelivery } from './delivery/index.ts';
import { createPasswordHasher } from './users/passwords.ts';
import { createUserService } from './users/users.ts';
import { createFactorService } from './mfa/factors/index.ts';
import { createChallengeService } from './mfa/challenges.ts';
import { createSignInService } from './mfa/sign-in.ts';
import { createClientService } from './oidc/clients.ts';
import { loadProviderKeys } from './oidc/keys.ts';
import { createAdapterClass, endSessionsOf, sweepExpired } from './oidc/adapter.ts';
import { createProvider } from './oidc/provider.ts';
import { createInteractions } from './oidc/interaction.ts';
import { errorHandler } from './http/middleware/error-handler.ts';
import { securityHeaders } from './http/middleware/security-headers.ts';
import { csrf } from './http/middleware/csrf.ts';
import { interactionRouter } from './http/interaction/routes.ts';
import { createPages } from './http/interaction/pages.ts';
import { providerPages } from './http/provider-pages.ts';
import { render } from './http/render.ts';
import { createApiKeysStore } from './store/api-keys.ts';
import { createApiKeyService } from './admin/api-keys.ts';
import { createApiTokenSigner } from './oidc/api-token.ts';
import { apiRoutes } from './http/api/index.ts';
import { mountRoutes } from './http/api/route.ts';
import { openApiDocument } from './http/api/openapi.ts';
import { createOps, metricsMiddleware } from './http/ops.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createLogger, requestLog, type Logger } from './lib/log.ts';
import { createFactorAdmin } from './mfa/factor-admin.ts';
import { accountRouter, ACCOUNT_CLIENT_ID } from './http/account/routes.ts';
import { AppError } from './errors.ts';
import { createDevicesStore } from './store/devices.ts';
import { createDevices } from './push/devices.ts';
import { deviceRouter } from './http/device/routes.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  clock: Clock;
  sealKey: Buffer;
  log?: (msg: string, err?: unknown) => void;
  logger?: Logger;
  metrics?: Metrics;
  /** True once shutdown began: /readyz then answers 503. */
  stopping?: () => boolean;
}

export type App = Awaited<ReturnType<typeof createApp>>;

/** Builds the provider (a Koa app) with Twofold's routes in front of it. */
export async function createApp(deps: AppDeps) {
  const { config, db, clock } = deps;
  const log = deps.log ?? ((msg: string, err?: unknown) => console.error(msg, err ?? ''));
  const sealer = createSealer(deps.sealKey);
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: false });

  const stores = {
    users: createUsersStore(db, clock),
    factors: createFactorsStore(db, clock),
    challenges: createChallengesStore(db, clock),
    clients: createClientsStore(db, clock),
    events: createEventsStore(db, clock),
    keys: createProviderKeysStore(db, clock),
    apiKeys: createApiKeysStore(db, clock),
    throttles: createThrottlesStore(db, clock),
    recoveryCodes: createRecoveryCodesStore(db, clock),
    otpCodes: createOtpCodesStore(db, clock),
    webauthn: createWebAuthnStore(db, clock),
    pushRequests: createPushRequestsStore(db, clock),
    devices: createDevicesStore(db, clock),
  };
  const delivery = createDelivery({ config: config.delivery, rootDir: ROOT_DIR, clock, logger: deps.logger ?? createLogger({ level: 'silent' }) });
  const hasher = createPasswordHasher(config.passwords, (work) => metrics.timePasswordHash(work));
  const users = createUserService({ users: stores.users, events: stores.events, hasher });
  const factorService = createFactorService({ factors: stores.factors, sealer, clock, totp: { ...config.totp } });
  const recoveryCodes = createRecoveryCodes({ store: stores.recoveryCodes, events: stores.events, hash: keyedHasher(deps.sealKey, 'recovery-codes') });
  const lock = createSecondFactorLock({
    throttles: stores.throttles, events: stores.events, clock, policy: config.throttle.secondFactor,
    async onLocked(userId, until) {
      metrics.recordLockout();
      // Tell the person: if it was not them, someone has their password.
      const user = await stores.users.findById(userId);
      if (!user) return;
      await delivery.send({ channel: 'email', to: user.email, template: 'account-locked', data: { minutes: Math.max(1, Math.ceil((until - clock.now()) / 60_000)) } })
        .catch((err: unknown) => log('lock-out notice not sent', err));
    },
  });
  /** Security notices by email; a failed notice is logged, never an error for the change itself. */
  async function notify(userId: string, change: 'factor-added' | 'factor-removed', factorName: string): Promise<void> {
    const user = await stores.users.findById(userId);
    if (!user) return;
    await delivery.send({ channel: 'email', to: user.email, template: change, data: { factor: factorName.slice(0, 64) } })
      .catch((err: unknown) => log('security notice not sent', err));
  }
  const sentCodes = createSentCodes({
    store: stores.otpCodes, factors: stores.factors, throttles: stores.throttles, events: stores.events, clock, delivery,
    policy: config.sentCodes, hash: keyedHasher(deps.sealKey, 'sent-codes'), domain: new URL(config.issuer).host, log,
  });
  const passkeys = createPasskeys({
    db, clock, factors: stores.factors, store: stores.webauthn, events: stores.events, recoveryCodes,
    issuer: config.issuer, rpName: config.totp.issuer,
  });
  const callbacks = createCallbacks({
    db, clock, clients: stores.clients, sealer, log, allowLoopbackHttp: config.env !== 'production',
    maxAttempts: config.callbacks.maxAttempts, baseDelayMs: config.callbacks.baseDelaySeconds * 1000,
    maxDelayMs: config.callbacks.maxDelaySeconds * 1000, disableAfter: config.callbacks.disableAfter,
    timeoutMs: config.callbacks.timeoutSeconds * 1000,
    onDisabled: (clientId, trx) => stores.events.record({ type: 'client.callback_disabled', clientId, details: { reason: 'sustained delivery failure' } }, trx),
  });
  if (config.callbacks.pollIntervalSeconds > 0) callbacks.start(config.callbacks.pollIntervalSeconds * 1000);
  const wakeDevices = (notify: PushNotifier) => async (userId: string, ref: string) =>
    notify({ userId, ref, deviceIds: (await stores.devices.listActive(userId)).map((d) => d.id) });
  const push = createPush({
    store: stores.pushRequests, throttles: stores.throttles, events: stores.events, lock, clock, policy: config.push,
    // The app hears of the device's answer at once; of the sign-in's outcome when it completes.
    db,
    async onPaused(userId, seconds) {
      const user = await stores.users.findById(userId);
      if (!user) return;
      await delivery.send({ channel: 'email', to: user.email, template: 'push-paused', data: { minutes: Math.ceil(seconds / 60) } })
        .catch((err: unknown) => log('push pause notice not sent', err));
    },
    ...(config.push.notifier ? { wake: wakeDevices(createPushNotifier({ target: config.push.notifier, clock, log })) } : {}),
    onAnswered: async (r, state, trx) => {
      await callbacks.enqueue(trx, {
        clientId: r.clientId, type: state === 'approved' ? 'challenge.approved' : 'challenge.denied',
        data: { challengeRef: r.ref, userId: r.userId, method: 'push', state: r.appState },
      });
    },
    async clientName(clientId) {
      const client = await stores.clients.find(clientId);
      return typeof client?.metadata.client_name === 'string' ? client.metadata.client_name : clientId;
    },
  });
  const devices = createDevices({
    db, clock, issuer: config.issuer, users: stores.users, store: stores.devices, events: stores.events,
    ...(deps.logger ? { debug: (msg: string, details: Record<string, unknown>) => deps.logger!.debug(details, msg) } : {}),
  });
  const challenges = createChallengeService({
    db, clock, challenges: stores.challenges, factors: stores.factors, events: stores.events, factorService,
    metrics, lock, recoveryCodes, ttlSeconds: config.ttl.challenge, maxAttempts: config.mfa.maxAttempts,
    handlers: {
      authenticator: authenticatorMethod({ factors: stores.factors, factorService }),
      'recovery-code': recoveryCodeMethod({ recoveryCodes }),
      email: sentCodeMethod({ sentCodes, factors: stores.factors }),
      sms: sentCodeMethod({ sentCodes, factors: stores.factors }),
      webauthn: passkeys.methodHandler,
      push: pushMethod({ store: stores.pushRequests }),
    },
    push,
    hasPushDevice: (userId) => devices.hasActive(userId),
    passkeyOptions: (challenge) => passkeys.describeForApi(challenge),
    callbacks,
    sentCodes,
    notify,
  });
  const clients = createClientService({ clients: stores.clients, events: stores.events, sealer, callbackUrls: { allowLoopbackHttp: config.env !== 'production' } });
  const trustedBrowsersStore = createTrustedBrowsersStore(db, clock);
  const trust = createTrustedBrowsers({ store: trustedBrowsersStore, events: stores.events, clock, policy: config.mfa.rememberBrowser });
  const grace = createEnrollmentGrace({ store: createEnrollmentGraceStore(db, clock), events: stores.events, clock, policy: config.mfa.enrollmentGrace });
  const policy = {
    // A linked push device is a second factor like any other.
    globalPolicy: config.mfa.policy,
    hasActiveFactor: async (userId: string) => (await stores.factors.hasActive(userId)) || stores.devices.hasActive(userId),
    freshness: config.mfa.freshSeconds, now: () => clock.now(),
    // Only while the user still has no factor, and only for the sign-in that skipped.
    skippedEnrollmentAt: async (userId: string, since: number) => !(await stores.factors.hasActive(userId)) && !(await stores.devices.hasActive(userId)) && grace.skippedAt(userId, since),
    trustedBrowser: async (ctx: KoaContextWithOIDC, userId: string, client: { firstParty: boolean }) =>
      trust.allowedFor(client) && trust.isTrusted(userId, ctx.cookies.get(TRUST_COOKIE)),
  };
  const passwordThrottle = createPasswordThrottle({ throttles: stores.throttles, clock, policy: config.throttle.password });
  const signIn = createSignInService({ users, challenges, events: stores.events, metrics, passwordThrottle, grace, hasActiveFactor: policy.hasActiveFactor });
  const apiKeys = createApiKeyService({ keys: stores.apiKeys, events: stores.events });

  const keys = await loadProviderKeys(stores.keys, sealer);
  const provider: Provider = createProvider({
    config, clock, keys, users, ...policy,
    adapter: createAdapterClass({ db, clock, findClient: (id) => clients.providerMetadata(id) }),
    ...providerPages(),
  });
  provider.on('server_error', (_ctx, err) => log('oidc-provider server_error', err));

  const interactions = createInteractions(provider, clock);
  const pages = createPages({
    interactions, factorService, factors: stores.factors, users, maxAttempts: config.mfa.maxAttempts,
    lockStatus: (userId) => lock.status(userId),
    enrollmentGrace: (userId, acrs) => grace.status(userId, acrs),
    passkeyRegistration: async (user, details) => JSON.stringify(await passkeys.registrationOptions(user, enrollBinding(details.uid))),
    async rememberDays(details) {
      const client = await interactions.client(details);
      return trust.allowedFor({ firstParty: client.metadata().twofold_first_party === true }) ? trust.policy.days : null;
    },
    async methodDetails(challenge, method) {
      if (method.method === 'webauthn') return passkeys.methodDetails(challenge, method);
      if (method.method === 'push') {
        const current = await push.current(challenge);
        return current ? { sent: true, pushNumber: current.number, pushState: current.state } : { sent: false };
      }
      if ((method.method === 'email' || method.method === 'sms') && method.factorId) return { sent: await challenges.codeSent(challenge, method.factorId) };
      return {};
    },
  });

  const site = new Router();
  site.get('/', (ctx) => render(ctx, 'home', {
    title: 'Twofold', issuer: config.issuer,
    demoUrl: config.demo.enabled ? `http://localhost:${config.demo.port}/` : null,
  }));
  const css = await readFile(path.join(ROOT_DIR, 'static', 'app.css'), 'utf8');
  site.get('/static/app.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = css;
  });
  for (const script of ['webauthn.js', 'push.js']) {
    const js = await readFile(path.join(ROOT_DIR, 'static', script), 'utf8');
    site.get(`/static/${script}`, (ctx) => {
      ctx.type = 'text/javascript';
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.body = js;
    });
  }

  const interaction = interactionRouter({ interactions, signIn, users, challenges, policy, pages, trust, passkeys });
  const forms = new Router();
  forms.use(bodyParser({ enableTypes: ['form', 'json'], formLimit: '16kb', jsonLimit: '16kb' }));
  forms.use(csrf({ key: keys.cookieKeys[0]!, issuer: config.issuer }));
  const signInLimit = perIpLimit({ throttles: stores.throttles, bucket: 'signin', perMinute: config.throttle.perIp.signInPerMinute, now: clock.now });
  forms.use(async (ctx, next) => (ctx.method === 'POST' && /^\/interaction\/[^/]+\/(login|two-factor|send)\/?$/i.test(ctx.path) ? signInLimit(ctx, next) : next()));
  forms.use(interaction.routes(), interaction.allowedMethods());

  const factorAdmin = createFactorAdmin({ db, users, factors: stores.factors, events: stores.events, factorService, lock, recoveryCodes, sentCodes, notify,
    unlinkDevices: (userId, trx) => stores.devices.unlinkAll(userId, trx),
    forgetBrowsers: (userId, trx) => trustedBrowsersStore.revokeAll(userId, trx),
  });
  const tokens = createApiTokenSigner({ issuer: config.issuer, jwk: keys.jwks.keys[0]!, clock });
  /** Sign out everywhere: every session of the user ends, with its grants and tokens (audited). */
  async function endSessions(userId: string, actor: string | null): Promise<number> {
    const ended = await endSessionsOf(db, userId);
    // A remembered browser is a standing sign-in too.
    const browsers = await trustedBrowsersStore.revokeAll(userId);
    await stores.events.record({ type: 'user.sessions_ended', userId, details: { sessions: ended, browsers, ...(actor ? { actor } : {}) } });
    return ended;
  }
  const routes = apiRoutes({
    config, clock, db, sealer, users, clients, challenges, signIn, factorService, factorAdmin, apiKeys, tokens, endSessions, trust,
    stores: { users: stores.users, factors: stores.factors, events: stores.events },
  });
  const api = new Router();
  api.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
  });
  api.use(perIpLimit({ throttles: stores.throttles, bucket: 'api', perMinute: config.throttle.perIp.apiPerMinute, now: clock.now }));
  api.use(async (ctx, next) => (/^\/api\/(login|two-factor)(\/|$)/i.test(ctx.path) ? signInLimit(ctx, next) : next()));
  api.use(bodyParser({ enableTypes: ['json'], jsonLimit: '64kb' }));
  mountRoutes(api, routes, { apiKeys, events: stores.events, strict: config.env !== 'production', log });
  const openapi = openApiDocument(routes, { issuer: config.issuer, version: '1' });
  api.get('/api/openapi.json', (ctx) => { ctx.body = openapi; });

  // The security page signs in through Twofold's own first-party client.
  const accountRedirect = `${config.issuer}/account/callback`;
  await clients.create({
    clientId: ACCOUNT_CLIENT_ID, name: 'Your Twofold account', public: true, firstParty: true, mfaPolicy: null,
    redirectUris: [accountRedirect], postLogoutRedirectUris: [],
  }).catch((err: unknown) => {
    if (!(err instanceof AppError && err.code === 'client.id_taken')) throw err;
  });
  const account = accountRouter({
    provider, issuer: config.issuer, stateKey: keys.cookieKeys[0]!, users, challenges, factorService,
    removeFactor: (userId, factorId) => factorAdmin.remove(userId, factorId),
    renameFactor: (userId, factorId, name) => factorAdmin.rename(userId, factorId, name),
    passkeys,
    devices,
    factorAdmin,
    endSessions,
    trust,
  });
  forms.use(account.routes(), account.allowedMethods());

  // Logging and metrics come first: the routers end the responses they answer.
  if (deps.logger) provider.use(requestLog(deps.logger));
  provider.use(metricsMiddleware(metrics));
  provider.use(errorHandler({ log }));
  provider.use(securityHeaders({ hsts: config.issuer.startsWith('https://') }));
  provider.use(createOps({ db, metrics, log, ...(deps.stopping ? { stopping: deps.stopping } : {}) }).routes());
  provider.use(site.routes());
  provider.use(deviceRouter({ devices, requests: push.requests, log }).routes());
  provider.use(forms.routes());
  provider.use(api.routes());

  let sweeper: NodeJS.Timeout | undefined;
  if (config.sweepIntervalSeconds > 0) {
    sweeper = setInterval(() => {
      Promise.all([sweepExpired(db, clock), challenges.expireUnanswered().then(() => stores.challenges.sweepExpired(clock.now() - 3_600_000)), stores.throttles.sweep(clock.now() - 86_400_000), stores.otpCodes.sweep(clock.now() - 3_600_000),
        stores.webauthn.sweepExpired(clock.now() - 3_600_000), stores.devices.sweep(clock.now() - 3_600_000),
        callbacks.outbox.sweep(clock.now() - 7 * 86_400_000)])
        .catch((err: unknown) => log('sweeping expired rows failed', err));
    }, config.sweepIntervalSeconds * 1000);
    sweeper.unref();
  }

  return {
    provider,
    services: { users, clients, challenges, factorService, signIn, apiKeys, lock, recoveryCodes, factorAdmin, passkeys, devices, trust, grace, push, callbacks },
    routes,
    metrics,
    stores,
    sealer,
    stop() {
      if (sweeper) clearInterval(sweeper);
      void delivery.close();
      void callbacks.stop();
    },
  };
}
