/**
 * Email and SMS codes with real deliveries: email through a real SMTP server
 * on loopback, SMS through a signed webhook to a real HTTP receiver. Enrol
 * through the management API, sign in through the hosted pages with an OIDC
 * client, and the verification API.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.ts';
import { SignIn, createUser, registerClient, type TestClient } from '../helpers/oidc-flow.ts';
import { alertText } from '../helpers/agent.ts';
import { TestDevice } from '../helpers/device.ts';

const PHONE = '+447911123456';

describe('email and SMS codes', function () {
  this.timeout(30_000);
  let server: TestServer;
  let smtp: SmtpSink;
  let gateway: HttpReceiver;
  let client: TestClient;
  let adminKey: string;
  let loginKey: string;

  before(async () => {
    smtp = await startSmtpSink();
    gateway = await startHttpReceiver();
    server = await startServer({
      overrides: {
        // A sign-in outlives a sent code, so an expired code can be tried within it.
        ttl: { challenge: 600 },
        delivery: {
          email: { transport: 'smtp', from: 'Twofold <no-reply@twofold.test>', smtp: { host: smtp.host, port: smtp.port, secure: false } },
          sms: { transport: 'webhook', webhook: { url: gateway.url, secret: `whsec_${randomBytes(32).toString('base64')}` } },
        },
      },
    });
    client = await registerClient(server, { mfaPolicy: 'optional' });
    adminKey = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:read', 'users:write', 'factors:read', 'factors:write'] })).key;
    loginKey = (await server.app.services.apiKeys.create({ name: 'backend', scopes: ['login'] })).key;
  });
  after(async () => {
    await server.close();
    await smtp.stop();
    await gateway.stop();
  });
  afterEach(() => expect(server.errors).to.deep.equal([]));

  async function call(method: string, path: string, body?: unknown, key = adminKey) {
    const res = await fetch(new URL(path, server.origin), {
      method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json().catch(() => null) as any };
  }

  const codeIn = (text: string) => /\b(\d{6})\b/.exec(text)?.[1];
  /** The code of the next mail to `address` that carries one (security notices in between are skipped). */
  async function emailedCode(address: string): Promise<string> {
    for (let i = 0; i < 3; i += 1) {
      const mail = await smtp.next(address);
      const code = /code/i.test(mail.headers.subject ?? '') ? codeIn(mail.text) : undefined;
      if (code) return code;
    }
    throw new Error(`no code mailed to ${address}`);
  }
  async function textedCode(): Promise<string> {
    const req = await gateway.next();
    const body = JSON.parse(req.body) as { type: string; to: string; text: string };
    expect(body).to.include({ type: 'sms', to: PHONE });
    return codeIn(body.text)!;
  }

  async function enrolEmail(userId: string, email: string) {
    const enrolled = await call('POST', `/api/v1/users/${userId}/factors`, { factorType: 'email', profile: { email } });
    expect(enrolled.status, JSON.stringify(enrolled.body)).to.equal(200);
    expect(enrolled.body).to.include({ factorType: 'email', status: 'PENDING_ACTIVATION' });
    const activated = await call('POST', `/api/v1/users/${userId}/factors/${enrolled.body.id}/lifecycle/activate`, { passCode: await emailedCode(email) });
    expect(activated.status, JSON.stringify(activated.body)).to.equal(200);
    expect(activated.body.status).to.equal('ACTIVE');
    return enrolled.body.id as string;
  }

  it('enrols an email factor: active only once the emailed code comes back', async () => {
    const user = await createUser(server, 'mail-enrol@example.com');
    const enrolled = await call('POST', `/api/v1/users/${user.id}/factors`, { factorType: 'email', profile: { email: 'mail-enrol@example.com' } });
    expect(enrolled.status).to.equal(200);
    const mail = await smtp.next('mail-enrol@example.com');
    expect(mail.headers.from).to.include('no-reply@twofold.test');
    const code = codeIn(mail.text)!;
    const path = `/api/v1/users/${user.id}/factors/${enrolled.body.id}`;
    expect((await call('GET', path)).body.status).to.equal('PENDING_ACTIVATION');
    const wrong = code === '000000' ? '111111' : '000000';
    expect((await call('POST', `${path}/lifecycle/activate`, { passCode: wrong })).status).to.equal(403);
    expect((await call('POST', `${path}/lifecycle/activate`, { passCode: code })).status).to.equal(200);
    // Single use: the same code does not verify the now active factor.
    expect((await call('POST', `${path}/verify`, { passCode: code })).status).to.equal(403);
  });

  it('tells the person by email when a factor is added and when it is removed', async () => {
    const user = await createUser(server, 'notices@example.com');
    const factorId = await enrolEmail(user.id, 'notices@example.com');
    const added = await smtp.next('notices@example.com');
    expect(added.headers.subject).to.match(/added/i);
    expect(added.text).to.include('Email');
    expect((await call('DELETE', `/api/v1/users/${user.id}/factors/${factorId}`)).status).to.equal(204);
    const removed = await smtp.next('notices@example.com');
    expect(removed.headers.subject).to.match(/removed/i);
  });

  it('refuses an invalid phone number or address at enrolment with a field-level error, and creates nothing', async () => {
    const user = await createUser(server, 'bad-input@example.com');
    for (const [factorType, profile, field] of [
      ['sms', { phoneNumber: '12345' }, 'profile.phoneNumber'],
      ['sms', { phoneNumber: '+1 555 abc' }, 'profile.phoneNumber'],
      ['email', { email: 'not-an-address' }, 'profile.email'],
      ['email', { email: 'a@b@c.example' }, 'profile.email'],
    ] as const) {
      const res = await call('POST', `/api/v1/users/${user.id}/factors`, { factorType, profile });
      expect(res.status, `${factorType} ${JSON.stringify(profile)}`).to.equal(400);
      expect(res.body).to.include({ error: 'request.invalid' });
      expect(res.body.details.field).to.equal(field);
    }
    expect((await call('GET', `/api/v1/users/${user.id}/factors`)).body).to.deep.equal([]);
    expect(gateway.requests.filter((r) => r.body.includes('12345'))).to.deep.equal([]);
  });

  it('signs in with an emailed code on the hosted pages: amr ["pwd","otp","mfa"]', async () => {
    const user = await createUser(server, 'mail-login@example.com');
    await enrolEmail(user.id, 'mail-login@example.com');
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('mail-login@example.com');
    expect(flow.page.html).to.include('We can send a code to');
    expect(flow.page.html).to.include('ma***@example.com');
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    expect(flow.page.html).to.include('Code sent.');
    await flow.code(await emailedCode('mail-login@example.com'));
    const { claims } = await flow.finish();
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('voids the previous code when a new one is sent, and refuses an expired code', async () => {
    const user = await createUser(server, 'resend@example.com');
    await enrolEmail(user.id, 'resend@example.com');
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('resend@example.com');
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    const first = await emailedCode('resend@example.com');
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    const second = await emailedCode('resend@example.com');
    if (first !== second) {
      await flow.code(first);
      expect(alertText(flow.page.html)).to.match(/That code is not correct/);
    }
    server.clock.advance(server.config.sentCodes.ttlSeconds * 1000 + 1000);
    await flow.code(second);
    expect(alertText(flow.page.html)).to.match(/That code is not correct/);
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    await flow.code(await emailedCode('resend@example.com'));
    expect(flow.returned).to.equal(true);
  });

  it('binds a code to its sign-in: a code sent for one challenge does not work in another', async () => {
    const user = await createUser(server, 'bound@example.com');
    await enrolEmail(user.id, 'bound@example.com');
    const one = new SignIn(server, client);
    await one.start();
    await one.password('bound@example.com');
    one.page = await one.agent.submit(one.page, '/send', {});
    const code = await emailedCode('bound@example.com');
    const two = new SignIn(server, client);
    await two.start();
    await two.password('bound@example.com');
    two.page = await two.agent.submit(two.page, '/send', {});
    await emailedCode('bound@example.com');
    await two.code(code);
    expect(alertText(two.page.html)).to.match(/That code is not correct/);
  });

  it('texts a code through the signed SMS webhook and verifies it through the verification API: amr ["sms"]', async () => {
    const user = await createUser(server, 'sms@example.com');
    const enrolled = await call('POST', `/api/v1/users/${user.id}/factors`, { factorType: 'sms', profile: { phoneNumber: '+44 7911 123456' } });
    expect(enrolled.status, JSON.stringify(enrolled.body)).to.equal(200);
    expect(enrolled.body.profile).to.deep.equal({ phoneNumber: PHONE });
    const req = await gateway.next();
    expect(req.headers['webhook-signature']).to.match(/^v1,/);
    const code = codeIn((JSON.parse(req.body) as { text: string }).text)!;
    expect((await call('POST', `/api/v1/users/${user.id}/factors/${enrolled.body.id}/lifecycle/activate`, { passCode: code })).status).to.equal(200);

    const started = await call('POST', '/api/two-factor/start', { loginId: 'sms@example.com', applicationId: client.clientId }, loginKey);
    expect(started.status).to.equal(200);
    const sms = started.body.methods.find((m: { method: string }) => m.method === 'sms');
    expect(sms.mobilePhone).to.equal('+********3456');
    expect((await call('POST', '/api/two-factor/send', { twoFactorId: started.body.twoFactorId, methodId: sms.id }, loginKey)).status).to.equal(200);
    const login = await call('POST', '/api/two-factor/login', { twoFactorId: started.body.twoFactorId, methodId: sms.id, code: await textedCode() }, loginKey);
    expect(login.status, JSON.stringify(login.body)).to.equal(200);
  });

  it('answers 429 without sending once the send limit per user is reached', async () => {
    const user = await createUser(server, 'bomb@example.com');
    await enrolEmail(user.id, 'bomb@example.com');
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('bomb@example.com');
    // The enrolment sent one already.
    for (let i = 1; i < server.config.sentCodes.perUser; i += 1) {
      flow.page = await flow.agent.submit(flow.page, '/send', {});
      expect(flow.page.status, flow.page.html.slice(0, 2000)).to.equal(200);
      await emailedCode('bomb@example.com');
    }
    const before = smtp.received.length;
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    expect(flow.page.status).to.equal(429);
    expect(alertText(flow.page.html)).to.match(/Too many codes were sent/);
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.received.length).to.equal(before);
    // The window passes: sending works again (in a new sign-in; the old one has expired by then).
    server.clock.advance(server.config.sentCodes.windowSeconds * 1000 + 1000);
    const later = new SignIn(server, client);
    await later.start();
    await later.password('bomb@example.com');
    later.page = await later.agent.submit(later.page, '/send', {});
    expect(later.page.status).to.equal(200);
    await emailedCode('bomb@example.com');
  });

  it('answers a failed delivery with a retryable error and leaves no half-enrolled factor', async () => {
    const user = await createUser(server, 'gateway-down@example.com');
    gateway.answer = 500;
    try {
      const res = await call('POST', `/api/v1/users/${user.id}/factors`, { factorType: 'sms', profile: { phoneNumber: PHONE } });
      expect(res.status).to.equal(503);
      expect(res.body.error).to.equal('delivery.failed');
      expect(res.body.message).to.match(/could not be sent/).and.not.match(/\d{6}/);
      expect((await call('GET', `/api/v1/users/${user.id}/factors`)).body).to.deep.equal([]);
    } finally {
      gateway.answer = 204;
    }
    await gateway.next();
    // Logged for the operator (without the code), then retried by the person.
    expect(server.errors.splice(0).map((e) => (e as { msg: string }).msg)).to.deep.equal(['delivery failed']);
    const again = await call('POST', `/api/v1/users/${user.id}/factors`, { factorType: 'sms', profile: { phoneNumber: PHONE } });
    expect(again.status).to.equal(200);
    await textedCode();
  });

  it('counts wrong sent codes toward the account lock-out like any other method', async () => {
    const user = await createUser(server, 'lock-mail@example.com');
    await enrolEmail(user.id, 'lock-mail@example.com');
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('lock-mail@example.com');
    flow.page = await flow.agent.submit(flow.page, '/send', {});
    const code = await emailedCode('lock-mail@example.com');
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < server.config.throttle.secondFactor.maxFailures; i += 1) await flow.code(wrong);
    expect(flow.page.status).to.equal(429);
    // The lock-out notice went to the user's address.
    const notice = await smtp.next('lock-mail@example.com');
    expect(notice.text).to.match(/locked/i);
  });

  it('emails the person when push requests pause after repeated denials', async () => {
    const user = await createUser(server, 'paused@example.com');
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, 'Phone');
    for (let i = 0; i < server.config.push.pauseAfterDenials; i += 1) {
      const started = await call('POST', '/api/two-factor/start', { loginId: 'paused@example.com', applicationId: client.clientId }, loginKey);
      await call('POST', '/api/two-factor/send', { twoFactorId: started.body.twoFactorId, methodId: 'push' }, loginKey);
      const [request] = await device.requests();
      await device.answer(request!.ref, { decision: 'deny' });
    }
    const notice = await smtp.next('paused@example.com');
    expect(notice.headers.subject).to.match(/paused/i);
    expect(notice.text).to.match(/60 minutes/);
  });
});
