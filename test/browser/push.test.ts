/**
 * Push approval in a real browser: the sign-in page shows the number, the
 * linked device (a test device speaking the signed device protocol) approves
 * it, and the page continues by itself (static/push.js polls the status).
 */
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, registerClient, type TestClient } from '../helpers/oidc-flow.ts';
import { browserAvailable, launch, snap, assertNoErrorPage, beginSignIn, enterPassword } from '../helpers/browser.ts';
import { TestDevice } from '../helpers/device.ts';

describe('push approval in a browser', function () {
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

  it('shows the number, waits for the device, and continues by itself when it approves', async () => {
    const user = await createUser(server, 'push-browser@example.com');
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, 'Pixel');

    const { page, finish } = await beginSignIn(browser, client);
    await enterPassword(page, 'push-browser@example.com');
    await snap(page, '30-push-offer');
    await page.click('button:has-text("Send request to my device")');
    await assertNoErrorPage(page);
    const number = (await page.textContent('.push-number'))!.trim();
    expect(number).to.match(/^\d{2}$/);
    await snap(page, '31-push-number');

    const [request] = await device.requests();
    expect(request!.header).to.include('Sign in to');
    expect(await device.answer(request!.ref, { decision: 'approve', number, localCheck: null })).to.equal('approved');

    // No click: the page notices the approval and finishes the sign-in.
    const tokens = await finish();
    expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'swk', 'mfa']);
  });
});
