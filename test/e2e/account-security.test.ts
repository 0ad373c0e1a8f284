/**
 * The security page's recovery codes and email/SMS factors, through the
 * hosted pages: codes left and a new set behind a fresh second factor (the
 * old set stops signing in), email codes added with the code from a real
 * SMTP server, field errors for bad input, a failed text message that leaves
 * nothing behind, and an emailed code answering the confirm step.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent, alertText, findForm, type Page } from '../helpers/agent.ts';

const PASSWORD = 'correct horse battery staple';
const codesOn = (html: string) => [...html.matchAll(/<li><code>([0-9A-Z-]+)<\/code><\/li>/g)].map((m) => m[1]!);
const fieldError = (html: string) => /<p class="field-error"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1]?.trim();

describe('security page: recovery codes, email and SMS factors', function () {
  this.timeout(30_000);
  let server: TestServer;
  let smtp: SmtpSink;
  let gateway: HttpReceiver;
  let client: TestClient;

  before(async () => {
    smtp = await startSmtpSink();
    gateway = await startHttpReceiver();
    server = await startServer({
      overrides: {
        delivery: {
          email: { transport: 'smtp', from: 'Twofold <no-reply@twofold.test>', smtp: { host: smtp.host, port: smtp.port, secure: false } },
          sms: { transport: 'webhook', webhook: { url: gateway.url, secret: `whsec_${randomBytes(32).toString('base64')}` } },
        },
      },
    });
    client = await registerClient(server, { mfaPolicy: 'required' });
  });
  after(async () => {
    await server.close();
    await smtp.stop();
    await gateway.stop();
  });
  afterEach(() => expect(server.errors).to.deep.equal([]));

  /** The code of the next mail to `address` that carries one (security notices in between are skipped). */
  async function emailedCode(address: string): Promise<string> {
    for (let i = 0; i < 3; i += 1) {
      const mail = await smtp.next(address);
      const code = /code/i.test(mail.headers.subject ?? '') ? /\b(\d{6})\b/.exec(mail.text)?.[1] : undefined;
      if (code) return code;
    }
    throw new Error(`no code mailed to ${address}`);
  }

  /** A user with an authenticator (and `codes` recovery codes), signed in on the security page. */
  async function signedIn(email: string, opts: { codes?: boolean } = {}) {
    const user = await createUser(server, email);
    const { secret } = await giveAuthenticator(server, user.id);
    const codes = opts.codes ? await server.app.services.recoveryCodes.generate(user.id) : [];
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email, password: PASSWORD });
    page = await agent.submit(page, '/two-factor', { code: await totpNow(server, secret) });
    expect(page.url).to.equal(`${server.origin}/account/security`);
    return { user, secret, codes, agent, page };
  }

  /** Answers the confirm page with a fresh authenticator code (the clock moves past the sign-in's step). */
  async function confirmWithTotp(agent: Agent, page: Page, secret: string): Promise<Page> {
    expect(page.html).to.include('Confirm it’s you');
    server.clock.advance(30_000);
    return agent.submit(page, '/account/security/confirm', { code: await totpNow(server, secret) });
  }

  /** Signs in to the relying party with a recovery code as the second factor. */
  async function signInWithRecoveryCode(email: string, code: string) {
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password(email);
    await flow.code(code, 'recovery-code');
    return flow;
  }

  describe('recovery codes', () => {
    it('shows how many unused codes are left, and warns when 3 or fewer or none are left', async () => {
      const { user, codes, agent, page } = await signedIn('codes-left@example.com', { codes: true });
      expect(page.html).to.include('Recovery codes').and.include('<strong>10 of 10</strong> recovery codes left').and.include('Make new codes');
      expect(page.html).not.to.include('class="warning"');
      const { recoveryCodes } = server.app.services;
      for (const c of codes.slice(0, 7)) expect(await recoveryCodes.spend(user.id, (await recoveryCodes.match(user.id, c))!)).to.equal(true);
      let again = await agent.get('/account/security');
      expect(again.html).to.match(/class="warning"[^>]*>Only 3 of 10 recovery codes left/);
      for (const c of codes.slice(7)) await recoveryCodes.spend(user.id, (await recoveryCodes.match(user.id, c))!);
      again = await agent.get('/account/security');
      expect(again.html).to.match(/class="warning"[^>]*>You have no recovery codes left/);
    });

    it('makes a new set only after a fresh second factor; the old set stops signing in and the new one works', async () => {
      const email = 'codes-new@example.com';
      const { user, secret, codes: old, agent, page: security } = await signedIn(email, { codes: true });
      // The session alone, even with a valid form post, is not enough.
      const csrf = findForm(security.html, '/sign-out-everywhere').hidden._csrf!;
      const direct = await agent.request('POST', '/account/security/recovery-codes', { _csrf: csrf });
      expect(direct.status).to.equal(200);
      expect(direct.html).to.include('Confirm it’s you').and.not.include('Save your recovery codes');
      expect(await server.app.services.recoveryCodes.match(user.id, old[0]!)).to.be.a('string');

      let page = await agent.get('/account/security/recovery-codes');
      page = await confirmWithTotp(agent, page, secret);
      expect(page.url).to.equal(`${server.origin}/account/security/recovery-codes`);
      expect(page.html).to.include('Make new recovery codes?').and.include('Your 10 unused codes stop working');
      page = await agent.submit(page, '/account/security/recovery-codes', {});
      expect(page.html).to.include('Save your recovery codes');
      const fresh = codesOn(page.html);
      expect(fresh).to.have.length(10);
      expect(fresh).not.to.include(old[0]);
      page = await agent.get(/<a class="button" href="([^"]+)"/.exec(page.html)![1]!.replace(/&amp;/g, '&'));
      expect(page.html).to.include('Your new recovery codes are ready').and.include('<strong>10 of 10</strong>');

      const stale = await signInWithRecoveryCode(email, old[1]!);
      expect(stale.returned).to.equal(false);
      expect(alertText(stale.page.html)).to.match(/not correct or was already used/);
      const ok = await signInWithRecoveryCode(email, fresh[0]!);
      expect(ok.returned, ok.page.html.slice(0, 1000)).to.equal(true);
      const { claims } = await ok.finish();
      expect(claims.sub).to.equal(user.id);
    });
  });

  describe('email and SMS factors', () => {
    it('adds an email factor behind a fresh second factor with the code from the mail; a wrong code keeps it pending', async () => {
      const email = 'add-email@example.com';
      const { user, secret, agent } = await signedIn(email, { codes: true });
      let page = await agent.get('/account/security');
      expect(page.html).to.include('href="/account/security/email"').and.include('href="/account/security/sms"');
      page = await agent.get('/account/security/email');
      page = await confirmWithTotp(agent, page, secret);
      expect(page.url).to.equal(`${server.origin}/account/security/email`);
      page = await agent.submit(page, '/account/security/email', { email: 'inbox@example.com' });
      expect(page.url).to.equal(`${server.origin}/account/security/email/verify`);
      expect(page.html).to.include('We sent a code to <strong>inbox@example.com</strong>');
      const first = await emailedCode('inbox@example.com');

      page = await agent.submit(page, '/email/verify', { code: first === '000000' ? '111111' : '000000' });
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.match(/That code is not correct. Check the email we sent/);
      const listed = await agent.get('/account/security');
      expect(listed.html).not.to.include('inbox@example.com');
      expect((await server.app.stores.factors.listByUser(user.id)).find((f) => f.type === 'email')?.status).to.equal('PENDING_ACTIVATION');

      // A new code voids the first one.
      page = await agent.submit(page, '/email/resend', {});
      expect(page.html).to.include('A new code was sent');
      const second = await emailedCode('inbox@example.com');
      if (first !== second) {
        page = await agent.submit(page, '/email/verify', { code: first });
        expect(alertText(page.html)).to.match(/not correct/);
      }
      page = await agent.submit(page, '/email/verify', { code: second.replace(/(\d{3})/, '$1 ') });
      expect(page.url).to.equal(`${server.origin}/account/security?done=email-added`);
      expect(page.html).to.include('Email codes are set up').and.include('Email codes to inbox@example.com');
      // One of each kind: the page no longer offers email.
      expect(page.html).not.to.include('href="/account/security/email"');
    });

    it('gives a first email factor without a confirm step, with recovery codes shown once', async () => {
      const user = await createUser(server, 'first-email@example.com');
      const agent = new Agent(server.origin);
      let page = await agent.get('/account/security');
      page = await agent.submit(page, '/login', { email: 'first-email@example.com', password: PASSWORD });
      // The account client does not require a second factor of a user without one.
      page = await agent.get('/account/security/email');
      expect(page.html).to.include('Add email codes').and.not.include('Confirm it’s you');
      page = await agent.submit(page, '/account/security/email', { email: 'first-email@example.com' });
      page = await agent.submit(page, '/email/verify', { code: await emailedCode('first-email@example.com') });
      expect(page.html).to.include('Save your recovery codes');
      expect(codesOn(page.html)).to.have.length(10);
      expect(await server.app.services.recoveryCodes.remaining(user.id)).to.equal(10);
    });

    it('shows a field error for an invalid address or number, keeps what was typed and creates nothing', async () => {
      const { user, secret, agent } = await signedIn('bad-address@example.com');
      // One confirmation opens the gate for both forms.
      let page = await agent.get('/account/security/email');
      page = await confirmWithTotp(agent, page, secret);
      page = await agent.submit(page, '/account/security/email', { email: 'not-an-address' });
      expect(page.status).to.equal(400);
      expect(fieldError(page.html)).to.equal('That is not a valid email address.');
      expect(page.html).to.include('value="not-an-address"').and.include('aria-invalid="true"');
      page = await agent.get('/account/security/sms');
      page = await agent.submit(page, '/account/security/sms', { phoneNumber: '12345' });
      expect(page.status).to.equal(400);
      expect(fieldError(page.html)).to.match(/not a valid phone number/);
      expect((await server.app.stores.factors.listByUser(user.id)).map((f) => f.type)).to.deep.equal(['token:software:totp']);
      expect(smtp.received.filter((m) => m.recipients.includes('not-an-address'))).to.deep.equal([]);
    });

    it('answers a failed text message with a retryable error on the page, and no half-enrolled factor', async () => {
      const { user, secret, agent } = await signedIn('sms-down@example.com', { codes: true });
      let page = await agent.get('/account/security/sms');
      page = await confirmWithTotp(agent, page, secret);
      gateway.answer = 500;
      try {
        page = await agent.submit(page, '/account/security/sms', { phoneNumber: '+44 7911 123456' });
      } finally {
        gateway.answer = 204;
      }
      await gateway.next();
      expect(server.errors.splice(0).map((e) => (e as { msg: string }).msg)).to.deep.equal(['delivery failed']);
      expect(page.status).to.equal(503);
      expect(alertText(page.html)).to.match(/could not send the text message just now. Nothing was changed: try again/);
      expect(page.html).to.include('value="+44 7911 123456"');
      expect((await server.app.stores.factors.listByUser(user.id)).map((f) => f.type)).to.deep.equal(['token:software:totp']);
      // Retried from the same page, it works.
      page = await agent.submit(page, '/account/security/sms', { phoneNumber: '+44 7911 123456' });
      expect(page.url).to.equal(`${server.origin}/account/security/sms/verify`);
      const text = JSON.parse((await gateway.next()).body) as { text: string };
      page = await agent.submit(page, '/sms/verify', { code: /\b(\d{6})\b/.exec(text.text)![1]! });
      expect(page.url, `${page.status} ${alertText(page.html)}`).to.equal(`${server.origin}/account/security?done=sms-added`);
      expect(page.html).to.include('Text message codes to +447911123456');
    });
  });

  it('confirms a sensitive change with an emailed code sent from the confirm page', async () => {
    const email = 'confirm-email@example.com';
    const user = await createUser(server, email);
    const { factorAdmin } = server.app.services;
    const factor = await factorAdmin.enrollDelivered({ userId: user.id, factorType: 'email', email });
    await factorAdmin.activate(user.id, factor.id, await emailedCode(email));
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email, password: PASSWORD });
    page = await agent.submit(page, '/send', {});
    page = await agent.submit(page, '/two-factor', { code: await emailedCode(email) });
    expect(page.url).to.equal(`${server.origin}/account/security`);

    page = await agent.get('/account/security/recovery-codes');
    expect(page.html).to.include('Confirm it’s you').and.include('Get a code by email at <strong>co***@example.com</strong>');
    expect(page.html).to.include('Use a recovery code');
    expect(() => findForm(page.html, '/account/security/confirm')).to.throw();
    page = await agent.submit(page, '/account/security/confirm/send', {});
    expect(page.html).to.include('Code sent.');
    const code = await emailedCode(email);
    page = await agent.submit(page, '/account/security/confirm', { code: code === '000000' ? '111111' : '000000' });
    expect(page.status).to.equal(400);
    expect(alertText(page.html)).to.match(/not correct/);
    page = await agent.submit(page, '/account/security/confirm', { code });
    expect(page.url).to.equal(`${server.origin}/account/security/recovery-codes`);
    expect(page.html).to.include('Make new recovery codes?');
  });
});
