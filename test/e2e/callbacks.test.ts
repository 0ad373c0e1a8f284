/**
 * Client callbacks: challenge outcomes POSTed to the app, signed per
 * Standard Webhooks and checked here with an independent implementation
 * (the standardwebhooks package) against a real HTTP receiver; the outbox
 * retries with backoff, survives a restart, never double-sends, and
 * disables an endpoint that keeps failing until it is re-enabled.
 */
import { expect } from 'chai';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startHttpReceiver, type HttpReceiver, type ReceivedRequest } from '../helpers/http-receiver.ts';
import { createCallbacks, type CallbacksDeps, type CallbackEvent } from '../../src/delivery/callbacks.ts';
import { createClientService } from '../../src/oidc/clients.ts';
import { AppError } from '../../src/errors.ts';
import type { ResolveAll } from '../../src/lib/network.ts';

type Json = Record<string, any>;

describe('client callbacks', () => {
  let server: TestServer;
  let key: string;
  let receiver: HttpReceiver;
  let logged: unknown[];
  let seq = 0;

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: (text ? JSON.parse(text) : undefined) as Json };
  };

  /** A client registered through the API with a callback to `url` (the receiver by default). */
  async function register(url = receiver.url): Promise<{ clientId: string; secret: string; client: Json }> {
    const res = await call('POST', '/api/v1/clients', { clientId: `cb-client-${(seq += 1)}`, name: 'Shop', redirectUris: ['https://shop.example/cb'], callbackUrl: url });
    expect(res.status, res.text).to.equal(201);
    return { clientId: res.body.client.clientId, secret: res.body.callbackSecret, client: res.body.client };
  }

  /** A delivery worker on the test server's database; jitter fixed at 100 % so delays are exact. */
  const worker = (overrides: Partial<CallbacksDeps> = {}) => createCallbacks({
    db: server.db, clock: server.clock, clients: server.app.stores.clients, sealer: server.app.sealer,
    log: (msg, err) => logged.push({ msg, err }), allowLoopbackHttp: true, random: () => 0.999_999, timeoutMs: 5000,
    ...overrides,
  });

  /** Queues an outcome as the challenge code would: inside a committed transaction. */
  const enqueue = (cb: ReturnType<typeof worker>, clientId: string, type: CallbackEvent['type'] = 'challenge.approved', data: Json = {}) =>
    server.db.transaction((trx) => cb.enqueue(trx, { clientId, type, data: { challengeRef: 'chr_1', userId: 'user-1', ...data } as CallbackEvent['data'] }));

  const headersOf = (req: ReceivedRequest) => req.headers as Record<string, string>;
  const outboxOf = (clientId: string) => server.db('callback_outbox').where({ client_id: clientId }).orderBy('id');

  before(async () => {
    server = await startServer();
    key = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['clients:read', 'clients:write'] })).key;
  });
  after(() => server.close());
  beforeEach(async () => {
    logged = [];
    receiver = await startHttpReceiver();
  });
  afterEach(async () => {
    await receiver.stop();
    expect(server.errors).to.deep.equal([]);
    expect(logged).to.deep.equal([]);
  });

  describe('registration', () => {
    it('gives a whsec_ secret once, keeps it sealed, and shows the callback on the client', async () => {
      const { clientId, secret, client } = await register();
      expect(secret).to.match(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(secret.slice(6), 'base64')).to.have.length(32);
      expect(client).to.include({ callbackUrl: receiver.url, callbackStatus: 'active', callbackDisabledAt: null });

      const got = await call('GET', `/api/v1/clients/${clientId}`);
      expect(got.body).to.deep.equal(client);
      const sealed = (await server.db('clients').where({ client_id: clientId }).first()).callback_secret_sealed as string;
      expect(sealed).to.match(/^v1\./);
      for (const text of [got.text, (await call('GET', '/api/v1/clients')).text]) {
        expect(text).to.not.include(secret.slice(6)).and.not.include(sealed).and.not.match(/secret/i);
      }
      expect(server.app.sealer.openString(sealed, `client-callback:${clientId}`)).to.equal(secret);
    });

    it('sets, changes and removes a callback URL with PATCH; the secret comes only with the first URL', async () => {
      const created = await call('POST', '/api/v1/clients', { clientId: `cb-client-${(seq += 1)}`, name: 'Shop', redirectUris: ['https://shop.example/cb'] });
      expect(created.body.callbackSecret).to.equal(null);
      expect(created.body.client).to.not.have.property('callbackUrl');
      const path = `/api/v1/clients/${created.body.client.clientId}`;

      const set = await call('PATCH', path, { callbackUrl: receiver.url });
      expect(set.status, set.text).to.equal(200);
      expect(set.body.callbackSecret).to.match(/^whsec_/);
      expect(set.body).to.include({ callbackUrl: receiver.url, callbackStatus: 'active' });

      const moved = await call('PATCH', path, { callbackUrl: `${receiver.url}/v2` });
      expect(moved.body).to.not.have.property('callbackSecret');
      expect(moved.body.callbackUrl).to.equal(`${receiver.url}/v2`);

      const removed = await call('PATCH', path, { callbackUrl: null });
      expect(removed.status).to.equal(200);
      expect(removed.body).to.not.have.any.keys('callbackUrl', 'callbackStatus', 'callbackDisabledAt', 'callbackSecret');
      expect((await server.db('clients').where({ client_id: created.body.client.clientId }).first()).callback_secret_sealed).to.equal(null);
    });

    it('rotates the callback secret: the next delivery verifies with the new one only', async () => {
      const { clientId, secret } = await register();
      const res = await call('POST', `/api/v1/clients/${clientId}/callback-secret`);
      expect(res.status, res.text).to.equal(200);
      expect(Object.keys(res.body)).to.deep.equal(['callbackSecret']);
      const rotated = res.body.callbackSecret as string;
      expect(rotated).to.match(/^whsec_/).and.not.equal(secret);
      const [event] = await server.db('events').where({ type: 'client.updated', client_id: clientId });
      expect(JSON.parse(event.details).changed).to.deep.equal(['callbackSecret']);
      expect(event.details).to.not.include(rotated.slice(6));

      const cb = worker();
      await enqueue(cb, clientId);
      expect(await cb.runOnce()).to.equal(1);
      const req = await receiver.next();
      expect(new Webhook(rotated).verify(req.body, headersOf(req))).to.be.an('object');
      expect(() => new Webhook(secret).verify(req.body, headersOf(req))).to.throw(WebhookVerificationError);
    });

    it('answers 400 naming callbackUrl when rotating or enabling a client without a callback', async () => {
      const created = await call('POST', '/api/v1/clients', { clientId: `cb-client-${(seq += 1)}`, name: 'Shop', redirectUris: ['https://shop.example/cb'] });
      for (const path of ['callback-secret', 'callback/enable']) {
        const res = await call('POST', `/api/v1/clients/${created.body.client.clientId}/${path}`);
        expect(res.status, path).to.equal(400);
        expect(res.body).to.include({ error: 'request.invalid' });
        expect(res.body.details).to.deep.equal({ field: 'callbackUrl' });
        expect((await call('POST', `/api/v1/clients/nobody/${path}`)).status).to.equal(404);
      }
    });

    it('refuses non-https and private, loopback-in-disguise and link-local targets with 400 request.invalid', async () => {
      const existing = await register();
      for (const url of ['http://example.com/hook', 'https://10.0.0.1/', 'https://169.254.169.254/', 'https://[::ffff:127.0.0.1]/',
        'https://[fe80::1]/', 'https://192.168.0.10/', 'https://100.64.0.1/', 'https://user:pw@127.0.0.1/', 'not a url']) {
        const clientId = `cb-refused-${(seq += 1)}`;
        const res = await call('POST', '/api/v1/clients', { clientId, name: 'Shop', redirectUris: ['https://shop.example/cb'], callbackUrl: url });
        expect(res.status, url).to.equal(400);
        expect(res.body.error).to.equal('request.invalid');
        expect(res.body.details, url).to.deep.equal({ field: 'callbackUrl' });
        expect((await call('GET', `/api/v1/clients/${clientId}`)).status).to.equal(404);
        const patched = await call('PATCH', `/api/v1/clients/${existing.clientId}`, { callbackUrl: url });
        expect(patched.status, url).to.equal(400);
        expect(patched.body.details).to.deep.equal({ field: 'callbackUrl' });
      }
      expect((await call('GET', `/api/v1/clients/${existing.clientId}`)).body.callbackUrl).to.equal(receiver.url);
    });

    it('in production, refuses a host name resolving to loopback, and http to localhost', async () => {
      // The default policy is production's: no loopback, https only.
      const production = createClientService({ clients: server.app.stores.clients, events: server.app.stores.events, sealer: server.app.sealer });
      for (const url of ['https://localhost/hook', 'http://localhost/hook', 'https://127.0.0.1/hook', receiver.url]) {
        const err = await production.create({ name: 'Prod', redirectUris: ['https://shop.example/cb'], public: true, firstParty: false, mfaPolicy: null, callbackUrl: url })
          .then(() => undefined, (e: unknown) => e);
        expect(err, url).to.be.instanceOf(AppError);
        expect((err as AppError).code).to.equal('request.invalid');
        expect((err as AppError).details).to.deep.equal({ field: 'callbackUrl' });
      }
    });
  });

  describe('delivery', () => {
    it('POSTs a signed outcome that standardwebhooks verifies; a tampered body does not', async () => {
      const { clientId, secret } = await register();
      const cb = worker();
      const leaky = { twoFactorId: 'tf_do_not_send', code: '123456', secret: 'nope' };
      const eventId = await enqueue(cb, clientId, 'challenge.succeeded', { state: { cart: 42, step: 'pay' }, method: 'totp', ...leaky });
      expect(eventId).to.match(/^msg_/);
      expect(await cb.runOnce()).to.equal(1);

      const req = await receiver.next();
      expect(req.method).to.equal('POST');
      expect(req.path).to.equal('/hook');
      expect(req.headers['content-type']).to.equal('application/json');
      expect(req.headers['webhook-id']).to.equal(eventId);
      expect(req.headers['webhook-timestamp']).to.equal(String(Math.floor(server.clock.now() / 1000)));
      expect(req.headers['webhook-signature']).to.match(/^v1,[A-Za-z0-9+/]{43}=$/);

      const payload = new Webhook(secret).verify(req.body, headersOf(req));
      expect(payload).to.deep.equal({
        type: 'challenge.succeeded', timestamp: new Date(server.clock.now()).toISOString(),
        data: { challengeRef: 'chr_1', userId: 'user-1', method: 'totp', state: { cart: 42, step: 'pay' } },
      });
      for (const leak of Object.values(leaky)) expect(req.body).to.not.include(leak);
      expect(req.body).to.not.match(/twoFactorId|"code"/);

      const tampered = req.body.replace('"cart":42', '"cart":43');
      expect(tampered).to.not.equal(req.body);
      expect(() => new Webhook(secret).verify(tampered, headersOf(req))).to.throw(WebhookVerificationError);
      expect(() => new Webhook(secret).verify(req.body, { ...headersOf(req), 'webhook-id': 'msg_other' })).to.throw(WebhookVerificationError);

      const [row] = await outboxOf(clientId);
      expect(row).to.include({ event_id: eventId, type: 'challenge.succeeded', attempts: 1, last_error: null });
      expect(Number(row.delivered_at)).to.equal(server.clock.now());
      expect(await cb.runOnce()).to.equal(0);
      expect(receiver.requests).to.have.length(1);
    });

    it('writes the event only with the outcome: nothing for a rolled-back transaction or a client without a callback', async () => {
      const { clientId } = await register();
      const plain = await call('POST', '/api/v1/clients', { clientId: `cb-client-${(seq += 1)}`, name: 'Plain', redirectUris: ['https://shop.example/cb'] });
      const cb = worker();
      await server.db.transaction(async (trx) => {
        await cb.enqueue(trx, { clientId, type: 'challenge.denied', data: { challengeRef: 'chr_2', userId: 'user-1' } });
        throw new Error('the outcome failed to commit');
      }).catch(() => undefined);
      expect(await outboxOf(clientId)).to.have.length(0);
      expect(await enqueue(cb, plain.body.client.clientId)).to.equal(null);
      expect(await enqueue(cb, 'no-such-client')).to.equal(null);
      expect(await cb.runOnce()).to.equal(0);
      expect(receiver.requests).to.have.length(0);
    });

    it('retries a failing receiver with exponential backoff, same webhook-id, and delivers on recovery', async () => {
      const { clientId, secret } = await register();
      const cb = worker({ baseDelayMs: 2000 });
      receiver.answer = 500;
      const eventId = await enqueue(cb, clientId, 'challenge.failed');

      expect(await cb.runOnce()).to.equal(0);
      await receiver.next();
      let [row] = await outboxOf(clientId);
      expect(row).to.include({ attempts: 1, last_error: 'HTTP 500', delivered_at: null });
      expect(Number(row.next_attempt_at) - server.clock.now()).to.be.within(3999, 4000); // 2 s · 2¹, jitter ≈ 100 %

      server.clock.advance(3000);
      expect(await cb.runOnce()).to.equal(0);
      expect(receiver.requests).to.have.length(1); // not due yet
      server.clock.advance(1000);
      expect(await cb.runOnce()).to.equal(0);
      await receiver.next();
      [row] = await outboxOf(clientId);
      expect(row.attempts).to.equal(2);
      expect(Number(row.next_attempt_at) - server.clock.now()).to.be.within(7999, 8000); // 2 s · 2²

      receiver.answer = 200;
      server.clock.advance(8000);
      expect(await cb.runOnce()).to.equal(1);
      const last = await receiver.next();
      expect(new Webhook(secret).verify(last.body, headersOf(last))).to.have.property('type', 'challenge.failed');
      expect(receiver.requests.map((r) => r.headers['webhook-id'])).to.deep.equal([eventId, eventId, eventId]);
      expect(new Set(receiver.requests.map((r) => r.body)).size).to.equal(1);
    });

    it('gives up on a receiver that does not answer within the timeout, and retries it later', async () => {
      const { clientId } = await register();
      receiver.answer = 'hang';
      const cb = worker({ timeoutMs: 300 });
      await enqueue(cb, clientId);
      expect(await cb.runOnce()).to.equal(0);
      const [row] = await outboxOf(clientId);
      expect(row).to.include({ attempts: 1, last_error: 'timeout', delivered_at: null });
      expect(Number(row.next_attempt_at)).to.be.greaterThan(server.clock.now());
    });

    it('jitters the delay between half and all of the backoff', async () => {
      const { clientId } = await register();
      receiver.answer = 503;
      for (const [random, expected] of [[0, 2000], [0.5, 3000]] as const) {
        const cb = worker({ baseDelayMs: 2000, random: () => random });
        await enqueue(cb, clientId);
        await cb.runOnce();
        const rows = await outboxOf(clientId);
        expect(Number(rows.at(-1).next_attempt_at) - server.clock.now()).to.equal(expected);
      }
    });

    it('survives a restart: a new worker on the same database delivers what was pending', async () => {
      const { clientId, secret } = await register();
      const first = worker();
      first.start(60_000);
      receiver.answer = 500;
      const retried = await enqueue(first, clientId, 'challenge.expired');
      await first.runOnce();
      const untouched = await enqueue(first, clientId, 'challenge.denied');
      await first.stop();

      receiver.answer = 204;
      server.clock.advance(5000);
      const second = worker();
      expect(await second.runOnce()).to.equal(2);
      const ids = receiver.requests.slice(1).map((r) => r.headers['webhook-id']);
      expect(ids).to.have.members([retried, untouched]);
      for (const r of receiver.requests.slice(1)) expect(() => new Webhook(secret).verify(r.body, headersOf(r))).to.not.throw();
    });

    it('sends an event once when two nodes run at the same moment', async () => {
      const { clientId } = await register();
      const a = worker();
      const b = worker();
      await enqueue(a, clientId);
      await enqueue(a, clientId);
      const [na, nb] = await Promise.all([a.runOnce(), b.runOnce()]);
      expect(na + nb).to.equal(2);
      expect(receiver.requests).to.have.length(2);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).to.equal(2);
    });

    it('gives up after maxAttempts, disables the endpoint after sustained failure, and re-enables through the API', async () => {
      const { clientId } = await register();
      const disabled: string[] = [];
      const cb = worker({
        maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 1000, disableAfter: 2,
        onDisabled: async (id, trx) => {
          disabled.push(id);
          expect((await trx('clients').where({ client_id: id }).first()).callback_disabled_at).to.not.equal(null);
        },
      });
      receiver.answer = 500;
      await enqueue(cb, clientId);
      await enqueue(cb, clientId);
      for (let i = 0; i < 3; i += 1) {
        await cb.runOnce();
        server.clock.advance(1000);
      }
      expect(receiver.requests).to.have.length(6);
      const rows = await outboxOf(clientId);
      expect(rows.map((r) => [r.attempts, r.next_attempt_at, r.delivered_at, r.last_error])).to.deep.equal([
        [3, null, null, 'gave up: HTTP 500'], [3, null, null, 'gave up: HTTP 500'],
      ]);
      expect(disabled).to.deep.equal([clientId]);

      const shown = await call('GET', `/api/v1/clients/${clientId}`);
      expect(shown.body.callbackStatus).to.equal('disabled');
      expect(shown.body.callbackDisabledAt).to.be.a('string');
      expect(await enqueue(cb, clientId)).to.equal(null);

      const enabled = await call('POST', `/api/v1/clients/${clientId}/callback/enable`);
      expect(enabled.status, enabled.text).to.equal(200);
      expect(enabled.body).to.include({ callbackStatus: 'active', callbackDisabledAt: null });
      const events = await server.db('events').where({ type: 'client.updated', client_id: clientId });
      expect(events.map((e) => JSON.parse(e.details).changed)).to.deep.equal([['callbackStatus']]);

      receiver.answer = 204;
      await enqueue(cb, clientId);
      expect(await cb.runOnce()).to.equal(1);
      expect((await server.db('clients').where({ client_id: clientId }).first()).callback_failures).to.equal(0);
    });

    it('counts only consecutive failures: a delivery in between resets the count', async () => {
      const { clientId } = await register();
      const cb = worker({ maxAttempts: 1, disableAfter: 2 });
      receiver.answer = 500;
      await enqueue(cb, clientId);
      await cb.runOnce();
      receiver.answer = 204;
      await enqueue(cb, clientId);
      await cb.runOnce();
      receiver.answer = 500;
      await enqueue(cb, clientId);
      await cb.runOnce();
      expect((await call('GET', `/api/v1/clients/${clientId}`)).body.callbackStatus).to.equal('active');
    });

    it('checks the address again at delivery: a name rebound to a private address gets nothing', async () => {
      const { clientId } = await register(receiver.url.replace('127.0.0.1', 'localhost'));
      const rebound: ResolveAll = async () => [{ address: '10.0.0.7', family: 4 }];
      const cb = worker({ resolve: rebound, maxAttempts: 1 });
      await enqueue(cb, clientId);
      expect(await cb.runOnce()).to.equal(0);
      const [row] = await outboxOf(clientId);
      expect(row.last_error).to.match(/private/).and.not.include('10.0.0.7');

      // And a production worker refuses the loopback receiver outright.
      const prod = worker({ allowLoopbackHttp: false, maxAttempts: 1 });
      const other = await register();
      await enqueue(prod, other.clientId);
      expect(await prod.runOnce()).to.equal(0);
      expect((await outboxOf(other.clientId))[0].last_error).to.match(/https/);
      expect(receiver.requests).to.have.length(0);
    });

    it('drops pending events of a client that is deleted or loses its callback', async () => {
      const { clientId } = await register();
      const cb = worker();
      await enqueue(cb, clientId);
      expect((await call('PATCH', `/api/v1/clients/${clientId}`, { callbackUrl: null })).status).to.equal(200);
      expect(await cb.runOnce()).to.equal(0);
      expect((await outboxOf(clientId))[0]).to.include({ next_attempt_at: null, last_error: 'callback removed or disabled' });

      expect((await call('DELETE', `/api/v1/clients/${clientId}`)).status).to.equal(204);
      expect(await outboxOf(clientId)).to.have.length(0);
      expect(receiver.requests).to.have.length(0);
    });
  });
});
