/**
 * The hosted pages in a real browser: password, enrolment by QR/key, a code,
 * and back at the relying party with amr and acr in the ID token.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { browserAvailable, launch, snap, assertNoErrorPage, beginSignIn, enterPassword } from '../helpers/browser.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';

describe('hosted sign-in in a browser', function () {
  this.timeout(60_000);
  let server: TestServer;
  let client: TestClient;
  let browser: Browser;

  before(async function () {
    if (!browserAvailable()) this.skip();
    server = await startServer();
    client = await registerClient(server, { mfaPolicy: 'required' });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const begin = () => beginSignIn(browser, client);

  it('enrols an authenticator at first sign-in, then signs in with password and code', async () => {
    await createUser(server, 'browser@example.com');
    const first = await begin();
    await snap(first.page, '01-password');
    await first.page.fill('#email', 'browser@example.com');
    await first.page.fill('#password', 'correct horse battery staple');
    await first.page.click('button[type=submit]');
    await assertNoErrorPage(first.page);
    expect(await first.page.textContent('h1')).to.equal('Set up two-step verification');
    await first.page.click('summary');
    await snap(first.page, '02-enroll');
    const secret = (await first.page.textContent('code.secret'))!.replace(/\s/g, '');

    await first.page.fill('#code', '000000');
    await first.page.click('button[type=submit]');
    expect(await first.page.textContent('.alert')).to.include('That code is not correct');
    await snap(first.page, '03-enroll-wrong-code');

    await first.page.fill('#code', await totpNow(server, secret));
    await first.page.click('button[type=submit]');
    await assertNoErrorPage(first.page);
    expect(await first.page.textContent('h1')).to.equal('Save your recovery codes');
    const recoveryCodes = await first.page.locator('.recovery-codes code').allTextContents();
    expect(recoveryCodes).to.have.length(10);
    for (const c of recoveryCodes) expect(c).to.match(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    await snap(first.page, '03b-recovery-codes');
    await first.page.click('a.button');
    const callback = new URL(await first.returned);
    const tokens = await oidc.authorizationCodeGrant(client.config, callback, { pkceCodeVerifier: first.verifier, expectedState: first.state });
    expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);

    server.clock.advance(30_000);
    const second = await begin();
    await second.page.fill('#email', 'browser@example.com');
    await second.page.fill('#password', 'correct horse battery staple');
    await second.page.click('button[type=submit]');
    await assertNoErrorPage(second.page);
    expect(await second.page.getAttribute('#code', 'autocomplete')).to.equal('one-time-code');
    await snap(second.page, '04-code');
    await second.page.fill('#code', await totpNow(server, secret));
    await second.page.click('button[type=submit]');
    const back = new URL(await second.returned);
    expect(back.searchParams.get('code')).to.be.a('string');

    // The phone is gone: a recovery code, typed in lower case with spaces.
    const third = await begin();
    await third.page.fill('#email', 'browser@example.com');
    await third.page.fill('#password', 'correct horse battery staple');
    await third.page.click('button[type=submit]');
    await third.page.click('text=Use a recovery code');
    await assertNoErrorPage(third.page);
    await snap(third.page, '05-recovery-code');
    await third.page.fill('#code', recoveryCodes[0]!.toLowerCase().replace(/-/g, ' '));
    await third.page.click('button[type=submit]');
    const viaRecovery = new URL(await third.returned);
    const recovered = await oidc.authorizationCodeGrant(client.config, viaRecovery, { pkceCodeVerifier: third.verifier, expectedState: third.state });
    expect(recovered.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('receives an email code through the local SMTP server and types it in', async () => {
    const smtp = await startSmtpSink();
    const mailServer = await startServer({
      overrides: { delivery: { email: { transport: 'smtp', from: 'Twofold <no-reply@twofold.test>', smtp: { host: smtp.host, port: smtp.port, secure: false } } } },
    });
    try {
      const mailClient = await registerClient(mailServer, { mfaPolicy: 'required' });
      const user = await createUser(mailServer, 'inbox@example.com');
      const { factor } = await mailServer.app.services.factorAdmin.enrollDelivered({ userId: user.id, factorType: 'email', email: 'inbox@example.com' })
        .then((f) => ({ factor: f }));
      const enrolCode = /\b(\d{6})\b/.exec((await smtp.next('inbox@example.com')).text)![1]!;
      expect(await mailServer.app.services.factorAdmin.activate(user.id, factor.id, enrolCode)).to.not.equal(null);

      const { page, finish } = await beginSignIn(browser, mailClient);
      await enterPassword(page, 'inbox@example.com');
      await snap(page, '06-email-send');
      await page.click('text=Send code');
      await assertNoErrorPage(page);
      // The "method added" notice came first; the code is in the next mail.
      let mail = await smtp.next('inbox@example.com');
      if (!/code/i.test(mail.headers.subject ?? '')) mail = await smtp.next('inbox@example.com');
      await snap(page, '07-email-code');
      await page.fill('#code', /\b(\d{6})\b/.exec(mail.text)![1]!);
      await page.click('button:has-text("Verify")');
      const tokens = await finish();
      expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    } finally {
      await mailServer.close();
      await smtp.stop();
    }
  });

  it('shows the error page with a way back for an expired sign-in', async () => {
    const page = await (await browser.newContext()).newPage();
    const res = await page.goto(`${server.origin}/interaction/expired-or-unknown`);
    expect(res!.status()).to.equal(400);
    await snap(page, '05-expired');
    expect(await page.textContent('.alert')).to.include('expired');
    expect(await page.getAttribute('a.button', 'href')).to.equal('/');
  });
});
