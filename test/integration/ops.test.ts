/**
 * Health, readiness, metrics and request logs over real HTTP: a Koa app
 * composed from the ops router and middleware, on a real database
 * (in-memory SQLite, or TEST_DATABASE_URL).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import Koa from 'koa';
import Router from '@koa/router';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { createOps, metricsMiddleware } from '../../src/http/ops.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { createLogger, logFunction, requestLog, type Logger } from '../../src/lib/log.ts';
import { TEST_SEAL_KEY } from '../helpers/server.ts';
import { loadConfig } from '../../src/config.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createApp } from '../../src/app.ts';

const DB_URL = process.env.TEST_DATABASE_URL ?? 'sqlite::memory:';

/** Collects pino's JSON lines. */
function captureLogs(): { logger: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const text = () => chunks.join('');
  return { logger, text, lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

interface Running { origin: string; close(): Promise<void> }

async function serve(app: Koa): Promise<Running> {
  const server: Server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The app the ops pieces are meant for: log, count, then routes (ops first). */
function composeApp(db: Db, metrics: Metrics, logger: Logger): Koa {
  const app = new Koa();
  app.use(requestLog(logger));
  app.use(metricsMiddleware(metrics));
  // A stand-in for Twofold's error handler, which logs through the (msg, err) function.
  const logError = logFunction(logger);
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      logError(`${ctx.method} ${ctx.path} failed`, err);
      ctx.status = 500;
      ctx.body = { error: 'server.error' };
    }
  });
  app.use(createOps({ db, metrics, readyTimeoutMs: 500 }).routes());
  const routes = new Router();
  routes.get('/users/:id', (ctx) => { ctx.body = { id: ctx.params.id }; });
  routes.get('/auth', (ctx) => { ctx.status = 302; ctx.redirect('/interaction/abc'); });
  routes.post('/interaction/:uid/login', (ctx) => { ctx.status = 303; });
  routes.get('/boom/:id', () => { throw new Error('kaput'); });
  app.use(routes.routes());
  app.silent = true;
  return app;
}

/** The value of one sample in Prometheus text, matched by name and labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const body = /\{([^}]*)\}/.exec(line)?.[1] ?? '';
    const have = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('ops endpoints', () => {
  let db: Db;
  let metrics: Metrics;
  let logs: ReturnType<typeof captureLogs>;
  let running: Running;

  before(async () => {
    db = createDb(DB_URL);
    await migrateLatest(db);
    metrics = createMetrics();
    logs = captureLogs();
    running = await serve(composeApp(db, metrics, logs.logger));
  });
  after(async () => {
    await running.close();
    await db.destroy();
  });

  it('healthz answers 200 while the process is up', async () => {
    const res = await fetch(`${running.origin}/healthz`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('cache-control')).to.equal('no-store');
    expect(await res.json()).to.deep.equal({ status: 'ok' });
  });

  it('readyz answers 200 when the database answers and migrations are current', async () => {
    const res = await fetch(`${running.origin}/readyz`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: 'ok' });
  });

  describe('readyz when not ready', () => {
    async function probe(target: Db, readyTimeoutMs = 500, stopping?: () => boolean) {
      const app = new Koa();
      app.use(createOps({ db: target, metrics, readyTimeoutMs, ...(stopping ? { stopping } : {}) }).routes());
      const r = await serve(app);
      try {
        const res = await fetch(`${r.origin}/readyz`);
        return { status: res.status, body: await res.json() as unknown };
      } finally {
        await r.close();
      }
    }

    it('answers 503 migrations_pending on a database without migrations', async () => {
      // Always SQLite: a fresh, empty database is what matters, not the dialect.
      const fresh = createDb('sqlite::memory:');
      try {
        expect(await probe(fresh)).to.deep.equal({ status: 503, body: { status: 'unavailable', reason: 'migrations_pending' } });
      } finally {
        await fresh.destroy();
      }
    });

    it('stays ready (and migrates) when a newer release added migrations this one does not know: a rolling upgrade', async () => {
      const shared = createDb('sqlite::memory:');
      try {
        await migrateLatest(shared);
        await shared('knex_migrations').insert({ name: '209912310001-from-a-newer-release', batch: 99, migration_time: new Date() });
        expect(await probe(shared)).to.deep.equal({ status: 200, body: { status: 'ok' } });
        await migrateLatest(shared);
        // Without one of ours, it is not ready.
        await shared('knex_migrations').where({ name: '202611240010-create-throttles-recovery-codes-otp-codes' }).del();
        expect((await probe(shared)).body).to.deep.equal({ status: 'unavailable', reason: 'migrations_pending' });
      } finally {
        await shared.destroy();
      }
    });

    it('answers 503 database_unreachable once the database is gone', async () => {
      const gone = createDb(DB_URL);
      await migrateLatest(gone);
      expect((await probe(gone)).status).to.equal(200);
      await gone.destroy();
      expect(await probe(gone)).to.deep.equal({ status: 503, body: { status: 'unavailable', reason: 'database_unreachable' } });
    });

    it('answers 503 shutting_down once a graceful shutdown has begun', async () => {
      let stopping = false;
      expect((await probe(db, 500, () => stopping)).status).to.equal(200);
      stopping = true;
      expect(await probe(db, 500, () => stopping)).to.deep.equal({ status: 503, body: { status: 'unavailable', reason: 'shutting_down' } });
    });

    it('answers 503 database_timeout when the database does not answer in time', async () => {
      const stuck = { raw: () => new Promise(() => {}) } as unknown as Db;
      expect(await probe(stuck, 50)).to.deep.equal({ status: 503, body: { status: 'unavailable', reason: 'database_timeout' } });
    });
  });

  it('exposes Prometheus text with request counters labelled by route template, not raw ids', async () => {
    for (const id of ['4f1c2a', '9e77d0', '4f1c2a']) await fetch(`${running.origin}/users/${id}`);
    await fetch(`${running.origin}/no/such/path/123`);
    await fetch(`${running.origin}/boom/77`);
    const res = await fetch(`${running.origin}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();

    expect(sample(text, 'http_requests_total', { method: 'GET', route: '/users/:id', status: '200' })).to.equal(3);
    expect(sample(text, 'http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).to.equal(1);
    expect(sample(text, 'http_requests_total', { method: 'GET', route: '/boom/:id', status: '500' })).to.equal(1);
    expect(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/users/:id' })).to.equal(3);
    for (const raw of ['4f1c2a', '9e77d0', '/no/such', '77']) expect(text).to.not.include(`${raw}"`);
    // Default process metrics come with the registry.
    expect(text).to.match(/^process_cpu_user_seconds_total /m);
    expect(text).to.match(/^nodejs_eventloop_lag_seconds /m);
  });

  it('exposes the domain counters the domain records through its small interface', async () => {
    metrics.recordSignIn('success', ['pwd', 'otp', 'mfa']);
    metrics.recordSignIn('success', ['pwd']);
    metrics.recordSignIn('invalid_credentials');
    metrics.recordSecondFactor('authenticator', 'invalid');
    metrics.recordSecondFactor('authenticator', 'success');
    metrics.recordLockout();
    await metrics.timePasswordHash(async () => 'hashed');
    metrics.observePasswordHash(0.04);
    const text = await (await fetch(`${running.origin}/metrics`)).text();

    expect(sample(text, 'twofold_signins_total', { outcome: 'success', amr: 'pwd+otp+mfa' })).to.equal(1);
    expect(sample(text, 'twofold_signins_total', { outcome: 'success', amr: 'pwd' })).to.equal(1);
    expect(sample(text, 'twofold_signins_total', { outcome: 'invalid_credentials', amr: 'none' })).to.equal(1);
    expect(sample(text, 'twofold_second_factor_total', { method: 'authenticator', outcome: 'invalid' })).to.equal(1);
    expect(sample(text, 'twofold_lockouts_total', {})).to.equal(1);
    expect(sample(text, 'twofold_password_hash_seconds_count', {})).to.equal(2);
  });

  it('keeps registries apart: a second app starts from zero', async () => {
    const other = createMetrics({ defaultMetrics: false });
    expect(sample(await other.render(), 'twofold_lockouts_total', {})).to.equal(0);
  });

  it('logs one line per request with the request id, and no credentials, codes, cookies or query strings', async () => {
    const before = logs.lines().length;
    const auth = await fetch(`${running.origin}/auth?code=abc&state=st4te&client_id=c1`, {
      headers: { Authorization: 'Bearer secret123', Cookie: '_session=cookieval456', 'X-Request-Id': 'req-from-lb-1' },
      redirect: 'manual',
    });
    expect(auth.headers.get('x-request-id')).to.equal('req-from-lb-1');
    const login = await fetch(`${running.origin}/interaction/abc/login`, {
      method: 'POST', body: new URLSearchParams({ email: 'who@example.com', password: 'hunter2pass' }),
      headers: { Cookie: '_interaction=ia789' }, redirect: 'manual',
    });
    const generated = login.headers.get('x-request-id');
    expect(generated).to.match(/^[0-9a-f-]{36}$/);
    // A forged id with a newline is replaced, not echoed into the log.
    const forged = await fetch(`${running.origin}/healthz`, { headers: { 'X-Request-Id': 'x y' } });
    expect(forged.headers.get('x-request-id')).to.not.equal('x y');

    const lines = logs.lines().slice(before);
    expect(lines).to.have.length(3);
    expect(lines[0]).to.include({ reqId: 'req-from-lb-1', method: 'GET', route: '/auth', status: 302, msg: 'request' });
    expect(lines[0]!.ms).to.be.a('number');
    expect(lines[1]).to.include({ reqId: generated, method: 'POST', route: '/interaction/:uid/login', status: 303 });
    const text = logs.text();
    for (const secret of ['secret123', 'Bearer', 'cookieval456', '_session', 'ia789', 'code=abc', 'abc&', 'st4te', 'hunter2pass', 'who@example.com']) {
      expect(text, secret).to.not.include(secret);
    }
  });

  it('puts the request id on lines logged while serving the request, such as its error', async () => {
    const before = logs.lines().length;
    const res = await fetch(`${running.origin}/boom/5`, { headers: { 'X-Request-Id': 'boom-req-1' } });
    expect(res.status).to.equal(500);
    const lines = logs.lines().slice(before);
    expect(lines.map((l) => l.reqId)).to.deep.equal(['boom-req-1', 'boom-req-1']);
    expect(lines[0]).to.include({ msg: 'GET /boom/5 failed', level: 50 });
    expect(lines[0]!.err).to.include({ type: 'Error', message: 'kaput' });
    expect(lines[1]).to.include({ msg: 'request', route: '/boom/:id', status: 500, level: 50 });
  });

  it('logs errors without the SQL values knex puts in their messages', async () => {
    const { logger, text } = captureLogs();
    await db.schema.createTable('ops_log_probe', (t) => { t.string('email').unique(); });
    try {
      await db('ops_log_probe').insert({ email: 'leak@example.com' });
      const err = await db('ops_log_probe').insert({ email: 'leak@example.com' }).then(() => undefined, (e: unknown) => e);
      // SQLite: knex puts the bound values in the message; PostgreSQL: pg puts the row in `detail`.
      const { message, detail } = err as Error & { detail?: string };
      expect(`${message} ${detail ?? ''}`).to.include('leak@example.com');
      logFunction(logger)('insert failed', err);
      const line = JSON.parse(text()) as { msg: string; err: { message: string; stack: string } };
      expect(line.msg).to.equal('insert failed');
      expect(line.err.message).to.match(/^\[query redacted\] - /);
      expect(text()).to.not.include('leak@example.com');
    } finally {
      await db.schema.dropTable('ops_log_probe');
    }
  });

  it('redacts secrets other code hands to the logger', () => {
    const { logger, text } = captureLogs();
    logger.info({ password: 'p1', body: { code: '123456' }, user: { token: 't0k' }, req: { headers: { authorization: 'Bearer a1', cookie: 'c=1' } } }, 'careless');
    for (const secret of ['p1', '123456', 't0k', 'Bearer a1', 'c=1']) expect(text(), secret).to.not.include(secret);
    expect(text()).to.include('[redacted]');
  });
});

describe('ops metrics on the real provider', () => {
  it('labels oidc-provider and interaction routes by template', async () => {
    // Composed by hand: middleware must be in place before provider.callback() is taken.
    const config = loadConfig({ env: { TWOFOLD_ENV: 'test' }, overrides: { issuer: 'http://127.0.0.1:1' } });
    const providerDb = createDb(DB_URL);
    await migrateLatest(providerDb);
    const errors: unknown[] = [];
    const twofold = await createApp({ config, db: providerDb, clock: manualClock(), sealKey: TEST_SEAL_KEY, log: (msg, err) => errors.push({ msg, err }) });
    const metrics = createMetrics({ defaultMetrics: false });
    // Stands in for the wiring in createApp: the first middleware, outside
    // the error handler and Twofold's own routers (which end the response).
    twofold.provider.middleware.unshift(metricsMiddleware(metrics));
    const running = await serve(twofold.provider);
    try {
      const uid = 'UidThatMustNotBecomeALabel';
      await fetch(`${running.origin}/.well-known/openid-configuration`);
      await fetch(`${running.origin}/auth/${uid}`, { redirect: 'manual' });
      await fetch(`${running.origin}/interaction/${uid}`, { redirect: 'manual' });
      await fetch(`${running.origin}/interaction/${uid}/login`, { method: 'POST', redirect: 'manual' });
      await fetch(`${running.origin}/api/v1/users/${uid}`);
      await fetch(`${running.origin}/static/app.css`);
      const text = await metrics.render();
      expect(sample(text, 'http_requests_total', { route: '/.well-known/openid-configuration', status: '200' })).to.equal(1);
      expect(sample(text, 'http_requests_total', { route: '/auth/:uid' })).to.equal(1);
      expect(sample(text, 'http_requests_total', { route: '/interaction/:uid' })).to.equal(1);
      // Refused by the CSRF middleware before its handler ran: still its route.
      expect(sample(text, 'http_requests_total', { method: 'POST', route: '/interaction/:uid/login', status: '403' })).to.equal(1);
      expect(sample(text, 'http_requests_total', { method: 'GET', route: '/api/v1/users/:id', status: '401' })).to.equal(1);
      expect(sample(text, 'http_requests_total', { route: '/static/app.css', status: '200' })).to.equal(1);
      expect(text).to.not.include(uid);
      expect(errors).to.deep.equal([]);
    } finally {
      await running.close();
      twofold.stop();
      await providerDb.destroy();
    }
  });
});
