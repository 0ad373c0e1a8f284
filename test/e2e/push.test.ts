/**
 * Push approval with number matching, end to end: a TestDevice (the
 * reference authenticator's client, signing every request with its own key)
 * is the authenticator, against a real Twofold over HTTP. Hosted sign-in
 * (OIDC) and the verification API; denied, expired and wrong-number
 * requests; single use; other users' devices, forged and replayed answers;
 * push fatigue; and the client callbacks the answers produce.
 *
 * The signature checks themselves (every forgery gets the same 401) are
 * covered in devices.test.ts ("signed requests"); here only the ones that
 * matter for an answer to a real push request.
 */
import { expect } from 'chai';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { Webhook } from 'standardwebhooks';
import { startServer, type TestServer } from '../helpers/server.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent, alertText, findForm, type Page } from '../helpers/agent.ts';
import { TestDevice, linkingCodeOf, send } from '../helpers/device.ts';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.ts';
import { DeviceApiError } from '../../src/authenticator/client.ts';
import { HEADERS } from '../../src/push/device-auth.ts';
import { ACR } from '../../src/mfa/amr.ts';

type Json = Record<string, any>;

const PASSWORD = 'correct horse battery staple';
const UNAUTHORIZED = { error: 'device.unauthorized', message: 'This device is not linked, or its request could not be verified.' };

describe('push approval', () => {
  let server: TestServer;
  let rp: TestClient;
  /** login, factors:read, clients:read/write */
  let key: string;
  /** login only: another app's key */
  let otherKey: string;
  let seq = 0;

  before(async () => {
    // Started 200 s in the past, so that the callback tests, which move the clock past a challenge's
    // 300 s lifetime, still sign within the 5 minutes Standard Webhooks accepts.
    server = await startServer({ clock: manualClock(Date.now() - 200_000) });
    rp = await registerClient(server);
    key = (await server.app.services.apiKeys.create({ name: 'backend', scopes: ['login', 'factors:read', 'clients:read', 'clients:write'] })).key;
    otherKey = (await server.app.services.apiKeys.create({ name: 'other', scopes: ['login'] })).key;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  const api = async (method: string, path: string, body?: unknown, apiKey = key) => {
    const res = await fetch(`${server.origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: (text ? JSON.parse(text) : undefined) as Json };
  };

  async function verifyToken(token: string, audience = rp.clientId): Promise<JWTPayload> {
    const jwks = createRemoteJWKSet(new URL(rp.config.serverMetadata().jwks_uri!));
    return (await jwtVerify(token, jwks, { issuer: server.origin, audience })).payload;
  }

  /** A new user with a device linked through the devices service (and an authenticator app when asked). */
  async function userWithDevice(options: { totp?: boolean } = {}) {
    seq += 1;
    const email = `push-${seq}@example.com`;
    const user = await createUser(server, email);
    const totp = options.totp ? await giveAuthenticator(server, user.id) : undefined;
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, `Phone ${seq}`);
    return { user, email, device, totp };
  }

  const lockout = async (userId: string) => {
    const res = await api('GET', `/api/v1/users/${userId}/lockout`);
    expect(res.status, res.text).to.equal(200);
    return res.body as { locked: boolean; failures: number };
  };

  const eventsOf = async (userId: string, type: string) =>
    (await server.db('events').where({ user_id: userId, type }).orderBy('id')).map((e: Json) => ({ ...e, details: JSON.parse(e.details) }));

  /** The device's answer as an error (status and code), or the state it answered. */
  async function answerOrError(device: TestDevice, ref: string, answer: Parameters<TestDevice['answer']>[1]): Promise<string | { status: number; code: string }> {
    try {
      return await device.answer(ref, answer);
    } catch (err) {
      if (!(err instanceof DeviceApiError)) throw err;
      return { status: err.status, code: err.code };
    }
  }

  /** A number that is not `n` (same length). */
  const wrong = (n: string) => String((Number(n) + 1) % 10 ** n.length).padStart(n.length, '0');

  // ---- the verification API ------------------------------------------------

  /** /api/two-factor/start, then /api/two-factor/send for push. */
  async function apiPush(userId: string, content?: Json, options: { state?: unknown; applicationId?: string } = {}) {
    const started = await api('POST', '/api/two-factor/start', {
      userId, applicationId: options.applicationId ?? rp.clientId, ...(options.state === undefined ? {} : { state: options.state }),
    });
    expect(started.status, started.text).to.equal(200);
    const twoFactorId = started.body.twoFactorId as string;
    const sent = await api('POST', '/api/two-factor/send', { twoFactorId, methodId: 'push', ...(content ? { push: content } : {}) });
    expect(sent.status, sent.text).to.equal(200);
    return { twoFactorId, methods: started.body.methods as Json[], ref: sent.body.pushRef as string, number: sent.body.number as string, sent: sent.body };
  }

  const pushStatus = async (ref: string, apiKey = key) => api('GET', `/api/push/${ref}`, undefined, apiKey);
  const twoFactorLogin = (twoFactorId: string, apiKey = key) => api('POST', '/api/two-factor/login', { twoFactorId, methodId: 'push' }, apiKey);

  // ---- the hosted pages -----------------------------------------------------

  const numberOn = (html: string) => /<p class="push-number"[^>]*>([0-9]+)<\/p>/.exec(html)?.[1];
  const uidOf = (page: Page) => /\/interaction\/([^/?#]+)/.exec(page.url)![1]!;

  async function pagePushStatus(flow: SignIn): Promise<string> {
    const res = await flow.agent.request('GET', `/interaction/${uidOf(flow.page)}/push-status`, undefined, { accept: 'application/json' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('cache-control')).to.equal('no-store');
    return (JSON.parse(res.html) as { state: string }).state;
  }

  /** Presses "Send request to my device" on the push page; the page then shows the number. */
  async function sendFromPage(flow: SignIn): Promise<string> {
    flow.page = await flow.agent.submit(flow.page, '/send', { methodId: 'push' });
    expect(flow.page.status, flow.page.html.slice(0, 1500)).to.equal(200);
    const number = numberOn(flow.page.html);
    expect(number, flow.page.html.slice(0, 2000)).to.match(/^[0-9]{2}$/);
    return number!;
  }

  // First: Standard Webhooks refuses a timestamp more than 5 minutes from the
  // real time, and the tests after these move the server's clock further.
  describe('callbacks', () => {
    let receiver: HttpReceiver;
    beforeEach(async () => { receiver = await startHttpReceiver(); });
    afterEach(() => receiver.stop());

    /** A client registered through the management API with a callback to the receiver. */
    async function callbackClient(): Promise<{ clientId: string; secret: string }> {
      seq += 1;
      const res = await api('POST', '/api/v1/clients', {
        clientId: `push-shop-${seq}`, name: 'ACME shop', redirectUris: ['https://shop.example/cb'], callbackUrl: receiver.url,
      });
      expect(res.status, res.text).to.equal(201);
      expect(res.body.callbackSecret).to.match(/^whsec_/);
      return { clientId: res.body.client.clientId, secret: res.body.callbackSecret };
    }

    /** Delivers what is due and returns the verified payloads, by type. */
    async function deliver(secret: string, expected: number): Promise<Map<string, { payload: Json; body: string }>> {
      expect(await server.app.services.callbacks.runOnce()).to.equal(expected);
      expect(receiver.requests).to.have.length(expected);
      const byType = new Map<string, { payload: Json; body: string }>();
      for (const req of receiver.requests.splice(0)) {
        const payload = new Webhook(secret).verify(req.body, req.headers as Record<string, string>) as Json;
        byType.set(payload.type, { payload, body: req.body });
      }
      return byType;
    }

    /** Delivers what is due and returns the verified payloads. */
    async function deliverAll(secret: string, expected: number): Promise<Json[]> {
      expect(await server.app.services.callbacks.runOnce()).to.equal(expected);
      expect(receiver.requests).to.have.length(expected);
      return receiver.requests.splice(0).map((req) => new Webhook(secret).verify(req.body, req.headers as Record<string, string>) as Json);
    }

    it('a push sign-in through the API posts challenge.approved and challenge.succeeded, signed, with the pushRef as challengeRef', async () => {
      const { clientId, secret } = await callbackClient();
      const { user, device } = await userWithDevice();
      const state = { order: 'A-17', step: 'pay' };
      const { twoFactorId, ref, number } = await apiPush(user.id, { header: 'Pay €120 to ACME?', details: { amount: '€120' } }, { state, applicationId: clientId });
      const [request] = await device.requests();
      expect(request).to.deep.include({ ref, clientName: 'ACME shop' });
      expect(await device.answer(ref, { decision: 'approve', number })).to.equal('approved');
      const ok = await twoFactorLogin(twoFactorId);
      expect(ok.status, ok.text).to.equal(200);
      expect(ok.body.state).to.deep.equal(state);

      const got = await deliver(secret, 2);
      expect([...got.keys()].sort()).to.deep.equal(['challenge.approved', 'challenge.succeeded']);
      expect(got.get('challenge.succeeded')!.payload.data).to.deep.equal({ challengeRef: ref, userId: user.id, method: 'push', state });
      const approved = got.get('challenge.approved')!.payload.data;
      expect(approved).to.include({ challengeRef: ref, userId: user.id, method: 'push' });
      for (const { payload, body } of got.values()) {
        expect(payload.timestamp).to.equal(new Date(server.clock.now()).toISOString());
        expect(body).to.not.include(twoFactorId).and.not.match(/twoFactorId|"number"|"code"/);
      }
      // Delivered once.
      expect(await server.app.services.callbacks.runOnce()).to.equal(0);
    });

    // Was a bug (found by this suite): the device's answer queued its event
    // without the app's state, and outside the transaction recording it.
    it('challenge.approved and challenge.denied carry the app\'s state, like every other challenge event', async () => {
      const { clientId, secret } = await callbackClient();
      const { user, device } = await userWithDevice();
      const state = { order: 'B-3' };
      const approvedPush = await apiPush(user.id, undefined, { state, applicationId: clientId });
      expect(await device.answer(approvedPush.ref, { decision: 'approve', number: approvedPush.number })).to.equal('approved');
      const deniedPush = await apiPush(user.id, undefined, { state, applicationId: clientId });
      expect(await device.answer(deniedPush.ref, { decision: 'deny' })).to.equal('denied');
      const got = await deliver(secret, 2);
      expect(got.get('challenge.approved')!.payload.data).to.deep.equal({ challengeRef: approvedPush.ref, userId: user.id, method: 'push', state });
      expect(got.get('challenge.denied')!.payload.data).to.deep.equal({ challengeRef: deniedPush.ref, userId: user.id, method: 'push', state });
    });

    it('a denial posts challenge.denied; an unanswered push that expires posts challenge.expired with the state', async () => {
      const { clientId, secret } = await callbackClient();
      const { user, device } = await userWithDevice();
      const denied = await apiPush(user.id, undefined, { state: 'd', applicationId: clientId });
      expect(await device.answer(denied.ref, { decision: 'deny' })).to.equal('denied');
      const got = await deliver(secret, 1);
      expect(got.get('challenge.denied')!.payload.data).to.include({ challengeRef: denied.ref, userId: user.id, method: 'push' });

      const late = await apiPush(user.id, undefined, { state: 'e', applicationId: clientId });
      server.clock.advance(server.config.ttl.challenge * 1000 + 1_000);
      expect(await server.app.services.challenges.expireUnanswered()).to.be.at.least(1);
      // (Starting `late` voided the denied challenge: one live challenge per user and API key.)
      const expired = await deliverAll(secret, 1);
      expect(expired).to.deep.equal([{
        type: 'challenge.expired', timestamp: new Date(server.clock.now()).toISOString(),
        data: { challengeRef: late.ref, userId: user.id, state: 'e' },
      }]);
      expect((await pushStatus(late.ref)).body).to.deep.equal({ state: 'expired' });
    });
  });

  describe('hosted sign-in', () => {
    it('is approved on a device linked through the security page: number on the page, typed on the device, amr pwd swk mfa', async () => {
      seq += 1;
      const email = `push-hosted-${seq}@example.com`;
      const user = await createUser(server, email);

      // Linking, as the person does it: the security page (password only, no factor yet) shows the code.
      const account = new Agent(server.origin);
      let page = await account.get('/account/security');
      page = await account.submit(page, '/login', { email, password: PASSWORD });
      page = await account.get('/account/security/devices/link');
      const device = new TestDevice(server.origin, server.clock);
      expect(await device.link(linkingCodeOf(page.html), 'My phone')).to.deep.include({ account: email });

      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      // The linked device is this user's only factor: push is the current method.
      expect(flow.page.status).to.equal(200);
      expect(flow.page.html).to.include('We can send an approval request to your linked device.');
      expect(numberOn(flow.page.html)).to.equal(undefined);
      expect(await pagePushStatus(flow)).to.equal('none');
      expect(await device.requests()).to.deep.equal([]);

      const number = await sendFromPage(flow);
      expect(flow.page.html).to.include('Approve it there and type this number').and.include('Send a new request');
      expect(await pagePushStatus(flow)).to.equal('pending');

      const requests = await device.requests();
      expect(requests).to.have.length(1);
      const [request] = requests;
      expect(request).to.deep.include({
        header: `Sign in to ${rp.clientId.replace('client-', 'Test app ')}?`, kind: 'simple', details: {},
        clientName: rp.clientId.replace('client-', 'Test app '), numberLength: 2,
      });
      expect(request!.text).to.include('type the number');
      expect(request!.ref).to.match(/^ch_[0-9a-f]{32}$/);
      expect(request!.expiresAt - request!.createdAt).to.equal(server.config.ttl.challenge * 1000);
      // The device never learns the number.
      expect(JSON.stringify(requests)).to.not.match(/"number"/);

      expect(await device.answer(request!.ref, { decision: 'approve', number, localCheck: null })).to.equal('approved');
      expect(await pagePushStatus(flow)).to.equal('approved');
      expect(await device.requests()).to.deep.equal([]);

      // What the page's script does once the status says approved.
      flow.page = await flow.agent.submit(flow.page, '/two-factor', { methodId: 'push' });
      expect(flow.returned, flow.page.html.slice(0, 1500)).to.equal(true);
      const { claims } = await flow.finish();
      expect(claims.sub).to.equal(user.id);
      expect(claims.amr).to.deep.equal(['pwd', 'swk', 'mfa']);
      expect(claims.acr).to.equal(ACR.mfa);

      expect((await eventsOf(user.id, 'push.sent')).map((e) => e.details)).to.deep.equal([{ ref: request!.ref }]);
      expect((await eventsOf(user.id, 'push.approved')).map((e) => e.details)).to.deep.equal([{ ref: request!.ref, deviceId: device.deviceId }]);
      expect(await lockout(user.id)).to.include({ locked: false, failures: 0 });
    });

    it('offers "Approve on your linked device" next to an authenticator app', async () => {
      const { user, email, device } = await userWithDevice({ totp: true });
      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      expect(flow.page.html).to.include('Enter the 6-digit code').and.include('Approve on your linked device');
      flow.page = await flow.agent.get(`/interaction/${uidOf(flow.page)}?method=push`);
      expect(flow.page.html).to.include('We can send an approval request to your linked device.');
      const number = await sendFromPage(flow);
      const [request] = await device.requests();
      expect(await device.answer(request!.ref, { decision: 'approve', number })).to.equal('approved');
      flow.page = await flow.agent.submit(flow.page, '/two-factor', { methodId: 'push' });
      const { claims } = await flow.finish();
      expect(claims).to.include({ sub: user.id, acr: ACR.mfa });
      expect(claims.amr).to.deep.equal(['pwd', 'swk', 'mfa']);
    });

    it('denied on the device: the page says so, the other methods remain, and continuing costs no lock-out failure', async () => {
      const { user, email, device, totp } = await userWithDevice({ totp: true });
      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      flow.page = await flow.agent.get(`/interaction/${uidOf(flow.page)}?method=push`);
      await sendFromPage(flow);
      const pushPage = flow.page;
      const [request] = await device.requests();

      // Continuing before any answer is refused on the page, and costs nothing either.
      flow.page = await flow.agent.submit(pushPage, '/two-factor', { methodId: 'push' });
      expect(flow.page.status).to.equal(400);
      expect(alertText(flow.page.html)).to.include('Waiting for you to approve');

      expect(await device.answer(request!.ref, { decision: 'deny' })).to.equal('denied');
      expect(await pagePushStatus(flow)).to.equal('denied');
      expect(await device.requests()).to.deep.equal([]);

      flow.page = await flow.agent.submit(pushPage, '/two-factor', { methodId: 'push' });
      expect(flow.page.status).to.equal(400);
      expect(alertText(flow.page.html)).to.equal('The request was denied on your device. Choose another way to verify, or send a new request.');
      expect(numberOn(flow.page.html)).to.equal(undefined);
      expect(flow.page.html).to.include('Send a new request').and.include('Other ways to verify').and.include(`?method=${totp!.factorId}`);
      // Again: still refused, still free.
      flow.page = await flow.agent.submit(pushPage, '/two-factor', { methodId: 'push' });
      expect(flow.page.status).to.equal(400);
      expect(await lockout(user.id)).to.include({ locked: false, failures: 0 });
      const challenge = await server.app.services.challenges.findByBinding(uidOf(flow.page));
      expect(challenge?.attempts).to.equal(0);
      expect((await eventsOf(user.id, 'push.denied')).map((e) => e.details)).to.deep.equal([{ ref: request!.ref, deviceId: device.deviceId }]);
      expect(await eventsOf(user.id, 'mfa.challenge.failed')).to.deep.equal([]);

      // The denial is final: the device cannot approve it after all.
      expect(await answerOrError(device, request!.ref, { decision: 'approve', number: '00' })).to.deep.equal({ status: 404, code: 'push.request_not_found' });

      // Another way still finishes the sign-in.
      flow.page = await flow.agent.get(`/interaction/${uidOf(flow.page)}?method=${totp!.factorId}`);
      await flow.code(await totpNow(server, totp!.secret), totp!.factorId);
      const { claims } = await flow.finish();
      expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    });

    it('expired: the device\'s late answer finds nothing, and the page stops offering the number', async () => {
      const { email, device } = await userWithDevice();
      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      const number = await sendFromPage(flow);
      const [request] = await device.requests();
      expect(request!.expiresAt).to.equal(server.clock.now() + server.config.ttl.challenge * 1000);

      server.clock.advance(server.config.ttl.challenge * 1000 + 1_000);
      expect(await device.requests()).to.deep.equal([]);
      expect(await answerOrError(device, request!.ref, { decision: 'approve', number })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      // The page's script learns the sign-in is over, and submits to show why.
      expect(await pagePushStatus(flow)).to.equal('expired');
      flow.page = await flow.agent.request('POST', findForm(flow.page.html, '/two-factor').action, { ...findForm(flow.page.html, '/two-factor').hidden, methodId: 'push' });
      expect(flow.page.status).to.equal(404);
    });
  });

  describe('verification API', () => {
    it('sends a push with the app\'s text and details; pending → approved → succeeded; a token after approval only', async () => {
      const { user, device } = await userWithDevice();
      const content = { header: 'Pay €120 to ACME?', text: 'Confirm this payment in the ACME shop.', details: { amount: '€120', payee: 'ACME' }, kind: 'simple' };
      const { twoFactorId, methods, ref, number, sent } = await apiPush(user.id, content, { state: { cart: 7 } });
      expect(methods).to.deep.include({ id: 'push', method: 'push' });
      expect(Object.keys(sent).sort()).to.deep.equal(['number', 'pushRef']);
      expect(ref).to.match(/^ch_[0-9a-f]{32}$/);
      expect(number).to.match(/^[0-9]{2}$/);

      const [request] = await device.requests();
      expect(request).to.deep.include({
        ref, header: content.header, text: content.text, details: content.details, kind: 'simple', numberLength: 2,
        clientName: rp.clientId.replace('client-', 'Test app '),
      });

      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });
      // Only the key that started the challenge may see it.
      const foreign = await pushStatus(ref, otherKey);
      expect(foreign.status).to.equal(404);
      expect(foreign.body.error).to.equal('push.request_not_found');
      expect((await pushStatus('ch_nope')).status).to.equal(404);

      const early = await twoFactorLogin(twoFactorId);
      expect(early.status).to.equal(409);
      expect(early.body.error).to.equal('push.pending');
      // Another key cannot use the challenge at all.
      expect((await twoFactorLogin(twoFactorId, otherKey)).status).to.equal(404);

      expect(await device.answer(ref, { decision: 'approve', number })).to.equal('approved');
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'approved' });
      expect((await pushStatus(ref, otherKey)).status).to.equal(404);

      const ok = await twoFactorLogin(twoFactorId);
      expect(ok.status, ok.text).to.equal(200);
      expect(ok.body.user).to.include({ id: user.id });
      expect(ok.body.state).to.deep.equal({ cart: 7 });
      const claims = await verifyToken(ok.body.token);
      expect(claims).to.include({ sub: user.id, acr: ACR.mfa });
      expect(claims.amr).to.deep.equal(['swk']);
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'succeeded' });
      expect(await lockout(user.id)).to.include({ failures: 0 });
    });

    it('a pin request is approved only with the device\'s PIN check, and the token says so (amr pin); biometric says fpt', async () => {
      const { user, email, device } = await userWithDevice();
      const login = await api('POST', '/api/login', { loginId: email, password: PASSWORD, applicationId: rp.clientId });
      expect(login.status, login.text).to.equal(242);
      expect(login.body.methods).to.deep.include({ id: 'push', method: 'push' });
      const sent = await api('POST', '/api/two-factor/send', { twoFactorId: login.body.twoFactorId, methodId: 'push', push: { kind: 'pin' } });
      expect(sent.status, sent.text).to.equal(200);
      const { pushRef: ref, number } = sent.body as { pushRef: string; number: string };
      const [request] = await device.requests();
      expect(request).to.deep.include({ ref, kind: 'pin' });

      for (const localCheck of [undefined, null, 'biometric'] as const) {
        const refused = await device.raw('POST', `/requests/${ref}/answer`, { decision: 'approve', number, ...(localCheck === undefined ? {} : { localCheck }) });
        expect(refused.status, String(localCheck)).to.equal(400);
        expect(refused.json).to.deep.include({ error: 'request.invalid', details: { field: 'localCheck' } });
      }
      // Refused for the missing check, not answered: still pending, and no failure counted.
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });
      expect(await lockout(user.id)).to.include({ failures: 0 });
      const noNumber = await device.raw('POST', `/requests/${ref}/answer`, { decision: 'approve', localCheck: 'pin' });
      expect(noNumber.status).to.equal(400);

      expect(await device.answer(ref, { decision: 'approve', number, localCheck: 'pin' })).to.equal('approved');
      const ok = await twoFactorLogin(login.body.twoFactorId);
      expect(ok.status, ok.text).to.equal(200);
      const claims = await verifyToken(ok.body.token);
      expect(claims.amr).to.deep.equal(['pwd', 'swk', 'pin', 'mfa']);
      expect(claims.acr).to.equal(ACR.mfa);

      const bio = await apiPush(user.id, { kind: 'biometric' });
      expect(await device.answer(bio.ref, { decision: 'approve', number: bio.number, localCheck: 'biometric' })).to.equal('approved');
      const bioOk = await twoFactorLogin(bio.twoFactorId);
      expect(bioOk.status, bioOk.text).to.equal(200);
      expect((await verifyToken(bioOk.body.token)).amr).to.deep.equal(['swk', 'user', 'fpt']);
    });

    it('a denial is final: login answers 403 push.denied without a lock-out failure, and the status says denied', async () => {
      const { user, device } = await userWithDevice();
      const { twoFactorId, ref } = await apiPush(user.id);
      expect(await device.answer(ref, { decision: 'deny' })).to.equal('denied');
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'denied' });
      const denied = await twoFactorLogin(twoFactorId);
      expect(denied.status).to.equal(403);
      expect(denied.body.error).to.equal('push.denied');
      expect(await lockout(user.id)).to.include({ failures: 0 });
    });

    it('expired: the device\'s answer is 404 push.request_not_found and the status answers expired', async () => {
      const { user, device } = await userWithDevice();
      const { twoFactorId, ref, number } = await apiPush(user.id);
      server.clock.advance(server.config.ttl.challenge * 1000 + 1_000);
      expect(await device.requests()).to.deep.equal([]);
      expect(await answerOrError(device, ref, { decision: 'approve', number })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      expect(await answerOrError(device, ref, { decision: 'deny' })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      const status = await pushStatus(ref);
      expect(status.status, status.text).to.equal(200);
      expect(status.body).to.deep.equal({ state: 'expired' });
      expect((await pushStatus(ref, otherKey)).status).to.equal(404);
      expect((await twoFactorLogin(twoFactorId)).status).to.equal(404);
      expect(await lockout(user.id)).to.include({ failures: 0 });
    });
  });

  describe('number matching', () => {
    it('a wrong number denies the request and counts toward the account\'s lock-out (push.wrong_number)', async () => {
      const { user, device } = await userWithDevice();
      const { twoFactorId, ref, number } = await apiPush(user.id);
      expect(await device.answer(ref, { decision: 'approve', number: wrong(number) })).to.equal('denied');
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'denied' });
      expect(await lockout(user.id)).to.deep.include({ locked: false, failures: 1 });
      expect((await eventsOf(user.id, 'push.wrong_number')).map((e) => e.details)).to.deep.equal([{ ref, deviceId: device.deviceId }]);
      expect((await eventsOf(user.id, 'push.denied')).map((e) => e.details)).to.deep.equal([{ ref, deviceId: device.deviceId }]);
      expect(await eventsOf(user.id, 'push.approved')).to.deep.equal([]);

      // The right number afterwards is too late: the request was answered.
      expect(await answerOrError(device, ref, { decision: 'approve', number })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      const login = await twoFactorLogin(twoFactorId);
      expect(login.status).to.equal(403);
      expect(login.body.error).to.equal('push.denied');
      expect(await lockout(user.id)).to.include({ failures: 1 });

      // A new request (new number) can be approved.
      const again = await api('POST', '/api/two-factor/send', { twoFactorId, methodId: 'push' });
      expect(again.body.pushRef).to.equal(ref);
      expect(await device.answer(ref, { decision: 'approve', number: again.body.number })).to.equal('approved');
      expect((await twoFactorLogin(twoFactorId)).status).to.equal(200);
      expect(await lockout(user.id)).to.include({ failures: 0 });
    });

    it('wrong numbers lock the account\'s second factor like wrong codes', async () => {
      const { user, device } = await userWithDevice();
      const { maxFailures } = server.config.throttle.secondFactor;
      let last: Awaited<ReturnType<typeof apiPush>> | undefined;
      for (let i = 0; i < maxFailures; i += 1) {
        // A fresh challenge each time, so that neither the push limit nor the pause interferes.
        server.clock.advance(server.config.push.windowSeconds * 1000 + 1_000);
        last = await apiPush(user.id);
        expect(await device.answer(last.ref, { decision: 'approve', number: wrong(last.number) })).to.equal('denied');
      }
      expect(await lockout(user.id)).to.include({ locked: true, failures: maxFailures });
      const started = await api('POST', '/api/two-factor/start', { userId: user.id, applicationId: rp.clientId });
      const sent = await api('POST', '/api/two-factor/send', { twoFactorId: started.body.twoFactorId, methodId: 'push' });
      expect(sent.status, sent.text).to.equal(200);
      // Even the right number is refused while locked.
      expect(await answerOrError(device, sent.body.pushRef, { decision: 'approve', number: sent.body.number })).to.deep.equal({ status: 429, code: 'mfa.locked' });
      expect((await pushStatus(sent.body.pushRef)).body).to.deep.equal({ state: 'pending' });
    });
  });

  describe('single use', () => {
    it('an approval signs in once, even when two logins race; an answered request takes no second answer', async () => {
      const { user, device } = await userWithDevice();
      const { twoFactorId, ref, number } = await apiPush(user.id);
      expect(await device.answer(ref, { decision: 'approve', number })).to.equal('approved');
      expect(await answerOrError(device, ref, { decision: 'approve', number })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      expect(await answerOrError(device, ref, { decision: 'deny' })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'approved' });

      const both = await Promise.all([twoFactorLogin(twoFactorId), twoFactorLogin(twoFactorId)]);
      // One token. The loser of the race finds the challenge spent: 404, or (when it got past
      // the lookup first) the generic wrong-answer 400 every method gives a used answer.
      const [won, lost] = both[0]!.status === 200 ? both : [both[1]!, both[0]!];
      expect(won.status, won.text).to.equal(200);
      expect([404, 400], lost.text).to.include(lost.status);
      expect(lost.body.error).to.be.oneOf(['mfa.challenge_not_found', 'mfa.invalid_code']);
      expect(lost.body).to.not.have.property('token');
      const again = await twoFactorLogin(twoFactorId);
      expect(again.status).to.equal(404);
      expect(again.body.error).to.equal('mfa.challenge_not_found');
      expect((await eventsOf(user.id, 'mfa.challenge.succeeded'))).to.have.length(1);
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'succeeded' });
      // Sending again on a used challenge finds nothing.
      expect((await api('POST', '/api/two-factor/send', { twoFactorId, methodId: 'push' })).status).to.equal(404);
    });

    it('hosted: the approval is spent by the sign-in; the same form posted again does not sign in twice', async () => {
      const { email, device } = await userWithDevice();
      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      const number = await sendFromPage(flow);
      const pushPage = flow.page;
      const [request] = await device.requests();
      expect(await device.answer(request!.ref, { decision: 'approve', number })).to.equal('approved');
      flow.page = await flow.agent.submit(pushPage, '/two-factor', { methodId: 'push' });
      expect(flow.returned).to.equal(true);
      const replay = await flow.agent.request('POST', findForm(pushPage.html, '/two-factor').action, { ...findForm(pushPage.html, '/two-factor').hidden, methodId: 'push' });
      expect(replay.status).to.equal(400);
      expect(replay.location).to.equal(null);
      expect(replay.html).to.include('<code>interaction.expired</code>');
      const [row] = await server.db('challenges').where({ push_ref: request!.ref });
      expect(row).to.include({ state: 'succeeded', push_state: 'consumed' });
    });
  });

  describe('who may answer', () => {
    it('another user\'s device gets 404, and the request stays pending', async () => {
      const a = await userWithDevice();
      const b = await userWithDevice();
      const { ref, number } = await apiPush(a.user.id);
      expect(await b.device.requests()).to.deep.equal([]);
      expect(await answerOrError(b.device, ref, { decision: 'approve', number })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      expect(await answerOrError(b.device, ref, { decision: 'deny' })).to.deep.equal({ status: 404, code: 'push.request_not_found' });
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });
      expect(await lockout(a.user.id)).to.include({ failures: 0 });
      expect(await lockout(b.user.id)).to.include({ failures: 0 });
    });

    it('a forged answer is 401 (another key, a body swapped under the signature, an unlinked device); a replayed approval is 401, even after a resend', async () => {
      const { user, device } = await userWithDevice();
      const { twoFactorId, ref, number } = await apiPush(user.id);
      const path = `/requests/${ref}/answer`;

      // Signed by another key under this device's id.
      const impostor = new TestDevice(server.origin, server.clock, device.deviceId);
      const forged = await impostor.raw('POST', path, { decision: 'approve', number });
      expect(forged).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      // A signed denial whose body is swapped for an approval.
      const deny = device.prepare('POST', path, { decision: 'deny' });
      expect(await send(deny.url, { ...deny.init, body: JSON.stringify({ decision: 'approve', number }) })).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      // A signed approval moved to another request's path.
      const moved = device.prepare('POST', path, { decision: 'approve', number });
      expect(await send(moved.url.replace(ref, `${ref}x`), moved.init)).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });

      // The approval, captured and sent again byte for byte (same nonce).
      const approval = device.prepare('POST', path, { decision: 'approve', number });
      expect(await send(approval.url, approval.init)).to.deep.equal({ status: 200, json: { ref, state: 'approved' } });
      expect(await send(approval.url, approval.init)).to.deep.equal({ status: 401, json: UNAUTHORIZED });

      // The app sends a new request for the same challenge (same ref, new number):
      // the captured approval still cannot be replayed onto it.
      const resent = await api('POST', '/api/two-factor/send', { twoFactorId, methodId: 'push' });
      expect(resent.body.pushRef).to.equal(ref);
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });
      expect(await send(approval.url, approval.init)).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      // Nor with a new timestamp and the same nonce.
      const sameNonce = device.prepare('POST', path, { decision: 'approve', number: resent.body.number }, { nonce: approval.init.headers[HEADERS.nonce]! });
      expect(await send(sameNonce.url, sameNonce.init)).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });

      // An unlinked device's answers are refused.
      await server.app.services.devices.unlink(user.id, device.deviceId!);
      expect(await device.raw('POST', path, { decision: 'approve', number: resent.body.number })).to.deep.equal({ status: 401, json: UNAUTHORIZED });
      expect((await pushStatus(ref)).body).to.deep.equal({ state: 'pending' });
      expect(await lockout(user.id)).to.include({ failures: 0 });
    });
  });

  describe('push fatigue', () => {
    it(`more than push.perUser sends in the window: 429 push.limited; the window passing lifts it`, async () => {
      const { user } = await userWithDevice();
      const { perUser, windowSeconds } = server.config.push;
      const first = await apiPush(user.id);
      for (let i = 1; i < perUser; i += 1) {
        const res = await api('POST', '/api/two-factor/send', { twoFactorId: first.twoFactorId, methodId: 'push' });
        expect(res.status, `send ${i + 1}`).to.equal(200);
      }
      const limited = await api('POST', '/api/two-factor/send', { twoFactorId: first.twoFactorId, methodId: 'push' });
      expect(limited.status).to.equal(429);
      expect(limited.body.error).to.equal('push.limited');
      // Per user, not per challenge.
      const started = await api('POST', '/api/two-factor/start', { userId: user.id, applicationId: rp.clientId });
      const other = await api('POST', '/api/two-factor/send', { twoFactorId: started.body.twoFactorId, methodId: 'push' });
      expect(other.status).to.equal(429);
      expect(other.body.error).to.equal('push.limited');

      server.clock.advance(windowSeconds * 1000 + 1_000);
      expect((await apiPush(user.id)).ref).to.match(/^ch_/);
    });

    it('denials pause pushes (429 push.paused, event push.paused); the hosted page then offers the other methods', async () => {
      const { user, email, device, totp } = await userWithDevice({ totp: true });
      const { pauseAfterDenials, pauseSeconds } = server.config.push;
      for (let i = 0; i < pauseAfterDenials; i += 1) {
        const { ref } = await apiPush(user.id);
        expect(await device.answer(ref, { decision: 'deny' })).to.equal('denied');
      }
      const paused = await eventsOf(user.id, 'push.paused');
      expect(paused.map((e) => e.details)).to.deep.equal([{ denials: pauseAfterDenials, seconds: pauseSeconds }]);
      expect(await lockout(user.id)).to.include({ failures: 0 });

      const started = await api('POST', '/api/two-factor/start', { userId: user.id, applicationId: rp.clientId });
      const refused = await api('POST', '/api/two-factor/send', { twoFactorId: started.body.twoFactorId, methodId: 'push' });
      expect(refused.status).to.equal(429);
      expect(refused.body.error).to.equal('push.paused');
      expect(refused.body.details.retryAfter).to.be.within(1, pauseSeconds);
      expect(await device.requests()).to.deep.equal([]);

      // On the page: the pause is said, and the authenticator app still works.
      const flow = new SignIn(server, rp);
      await flow.start();
      await flow.password(email);
      flow.page = await flow.agent.get(`/interaction/${uidOf(flow.page)}?method=push`);
      flow.page = await flow.agent.submit(flow.page, '/send', { methodId: 'push' });
      expect(flow.page.status).to.equal(429);
      expect(alertText(flow.page.html)).to.include('paused');
      expect(numberOn(flow.page.html)).to.equal(undefined);
      expect(flow.page.html).to.include(`?method=${totp!.factorId}`);
      flow.page = await flow.agent.get(`/interaction/${uidOf(flow.page)}?method=${totp!.factorId}`);
      await flow.code(await totpNow(server, totp!.secret), totp!.factorId);
      expect(flow.returned).to.equal(true);

      // Only one pause event, and pushes resume once the pause is over.
      server.clock.advance(pauseSeconds * 1000 + 1_000);
      const resumed = await apiPush(user.id);
      expect(await device.answer(resumed.ref, { decision: 'approve', number: resumed.number })).to.equal('approved');
      expect(await eventsOf(user.id, 'push.paused')).to.have.length(1);
    });
  });

});

describe('push gateway notifier', () => {
  let server: TestServer;
  let gateway: HttpReceiver;
  const secret = `whsec_${Buffer.from('push-gateway-test-secret-32-bytes!!').toString('base64')}`;
  before(async () => {
    gateway = await startHttpReceiver();
    server = await startServer({ overrides: { push: { notifier: { url: gateway.url, secret } } } });
  });
  after(async () => {
    await server.close();
    await gateway.stop();
  });
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('wakes the user\'s devices with a signed POST that names the request, never its number or text', async () => {
    const user = await createUser(server, 'wake@example.com');
    const device = new TestDevice(server.origin, server.clock);
    const linked = await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, 'Phone');
    const client = await registerClient(server);
    const key = (await server.app.services.apiKeys.create({ name: 'backend', scopes: ['login'] })).key;
    const post = async (path: string, body: unknown) => (await fetch(`${server.origin}${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    })).json() as Promise<any>;
    const started = await post('/api/two-factor/start', { loginId: 'wake@example.com', applicationId: client.clientId });
    const sent = await post('/api/two-factor/send', { twoFactorId: started.twoFactorId, methodId: 'push' });

    const notice = await gateway.next();
    // Signed per Standard Webhooks, verified by an independent implementation.
    const payload = new Webhook(secret).verify(notice.body, notice.headers as Record<string, string>) as { type: string; ref: string; devices: string[] };
    expect(payload).to.include({ type: 'push.request', ref: sent.pushRef });
    expect(payload.devices).to.deep.equal([linked.deviceId]);
    expect(notice.body).to.not.include(`"${sent.number}"`).and.not.include('Sign in to');
  });
});

describe('push on the security page', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('a user whose only second factor is a linked device confirms a sensitive change with it (a session alone is not enough)', async () => {
    const user = await createUser(server, 'device-only@example.com');
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, 'Phone');
    const approveNext = async (page: Page, sendSuffix: string, answerSuffix: string, extra: Record<string, string> = {}) => {
      let p = await agent.submit(page, sendSuffix, { methodId: 'push', ...extra });
      const number = /<p class="push-number"[^>]*>([0-9]+)<\/p>/.exec(p.html)?.[1];
      expect(number, p.html.slice(0, 1500)).to.be.a('string');
      const [request] = await device.requests();
      expect(await device.answer(request!.ref, { decision: 'approve', number: number!, localCheck: null })).to.equal('approved');
      p = await agent.submit(p, answerSuffix, { methodId: 'push', ...extra });
      return p;
    };

    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email: 'device-only@example.com', password: 'correct horse battery staple' });
    page = await approveNext(page, '/send', '/two-factor');
    expect(page.url).to.equal(`${server.origin}/account/security`);

    // Adding an authenticator app asks for the device first.
    page = await agent.get('/account/security/authenticator');
    expect(page.html).to.include('Confirm it’s you').and.include('Send request to my device');
    page = await approveNext(page, '/security/confirm/send', '/security/confirm');
    expect(page.url).to.equal(`${server.origin}/account/security/authenticator`);
    expect(page.html).to.include('<h1>Add an authenticator app</h1>').and.include('class="qr"');
  });
});
