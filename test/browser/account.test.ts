/**
 * The security page in a real browser: recovery codes left (and the warning
 * when few are), adding email codes with a field error on the way, making a
 * new set of recovery codes, and confirming with an emailed code. Every step
 * is saved as a screenshot under test-results/screenshots (account-*).
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, totpNow } from '../helpers/oidc-flow.ts';
import { browserAvailable, launch, snap, assertNoErrorPage } from '../helpers/browser.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

describe('security page in a browser', function () {
  this.timeout(60_000);
  let server: TestServer;
  let smtp: SmtpSink;
  let browser: Browser;

  before(async function () {
    if (!browserAvailable()) this.skip();
    smtp = await startSmtpSink();
    server = await startServer({
      overrides: { delivery: { email: { transport: 'smtp', from: 'Twofold <no-reply@twofold.test>', smtp: { host: smtp.host, port: smtp.port, secure: false } } } },
    });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await smtp?.stop();
  });

  async function emailedCode(address: string): Promise<string> {
    for (let i = 0; i < 3; i += 1) {
      const mail = await smtp.next(address);
      const code = /code/i.test(mail.headers.subject ?? '') ? /\b(\d{6})\b/.exec(mail.text)?.[1] : undefined;
      if (code) return code;
    }
    throw new Error(`no code mailed to ${address}`);
  }

  async function submit(page: Page, selector = 'button[type=submit]'): Promise<void> {
    await page.click(selector);
    await page.waitForLoadState();
    await assertNoErrorPage(page);
  }

  it('shows recovery codes, adds email codes, makes new codes and confirms with an emailed code', async () => {
    const email = 'browser-account@example.com';
    const user = await createUser(server, email);
    const { secret } = await giveAuthenticator(server, user.id);
    const codes = await server.app.services.recoveryCodes.generate(user.id);
    const page = await (await browser.newContext()).newPage();

    await page.goto(`${server.origin}/account/security`);
    await page.fill('#email', email);
    await page.fill('#password', 'correct horse battery staple');
    await submit(page);
    await page.fill('#code', await totpNow(server, secret));
    await submit(page);
    expect(await page.textContent('h1')).to.equal('Security');
    expect(await page.textContent('main, body')).to.include('10 of 10 recovery codes left');
    await snap(page, 'account-01-security');

    // Adding email codes: the gate, a bad address, then the code from the mail.
    await page.click('a[href="/account/security/email"]');
    expect(await page.textContent('h1')).to.equal('Confirm it’s you');
    await snap(page, 'account-02-confirm-authenticator');
    server.clock.advance(30_000);
    await page.fill('#code', await totpNow(server, secret));
    await submit(page);
    expect(await page.textContent('h1')).to.equal('Add email codes');
    await page.fill('#email', 'not-an-address');
    await submit(page);
    expect(await page.textContent('.field-error')).to.equal('That is not a valid email address.');
    await snap(page, 'account-03-email-field-error');
    await page.fill('#email', email);
    await submit(page);
    expect(await page.textContent('.lead')).to.include(email);
    await page.fill('#code', '000000');
    await submit(page);
    expect(await page.textContent('.alert')).to.include('That code is not correct');
    await snap(page, 'account-04-email-wrong-code');
    await page.fill('#code', await emailedCode(email));
    await submit(page);
    expect(await page.textContent('.notice')).to.include('Email codes are set up');
    await snap(page, 'account-05-email-added');

    // Few codes left: the page warns; a new set voids the old one.
    const { recoveryCodes } = server.app.services;
    for (const c of codes.slice(0, 8)) await recoveryCodes.spend(user.id, (await recoveryCodes.match(user.id, c))!);
    await page.reload();
    expect(await page.textContent('.warning')).to.include('Only 2 of 10 recovery codes left');
    await snap(page, 'account-06-codes-low');
    await page.click('text=Make new codes');
    expect(await page.textContent('h1')).to.equal('Make new recovery codes?');
    await snap(page, 'account-07-make-new-codes');
    await submit(page);
    expect(await page.locator('.recovery-codes code').count()).to.equal(10);
    await snap(page, 'account-08-new-codes');
    await page.click('a.button');
    expect(await page.textContent('.notice')).to.include('new recovery codes are ready');

    // Later (the gate has closed): confirm with an emailed code instead.
    server.clock.advance(10 * 60_000);
    await page.click('text=Make new codes');
    await page.click('text=Email a code to');
    expect(await page.textContent('.lead')).to.include('Get a code by email');
    await snap(page, 'account-09-confirm-email');
    await submit(page);
    expect(await page.textContent('.notice')).to.include('Code sent');
    await snap(page, 'account-10-confirm-email-sent');
    await page.fill('#code', await emailedCode(email));
    await submit(page, 'form[action="/account/security/confirm"] button');
    expect(await page.textContent('h1')).to.equal('Make new recovery codes?');
  });
});
