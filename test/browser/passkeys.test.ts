/**
 * Passkeys in a real browser: chromium with a DevTools virtual authenticator
 * registers a passkey on the security page, then signs in with password and
 * passkey to a relying party.
 *
 * WebAuthn refuses an IP address as RP ID, so this server's issuer is
 * http://localhost:<port> (a secure context for chromium); a small TCP relay
 * on that port forwards to the test server's own loopback port.
 */
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { REDIRECT_URI, createUser } from '../helpers/oidc-flow.ts';
import { browserAvailable, launch, snap, assertNoErrorPage } from '../helpers/browser.ts';
import { ACR } from '../../src/mfa/amr.ts';

/** Listens on a free loopback port now; relays to `target()` once it is known. */
async function relay(target: () => number): Promise<{ port: number; close(): Promise<void> }> {
  const server: TcpServer = createTcpServer((socket) => {
    const upstream = connect(target(), '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('passkeys in a browser', function () {
  this.timeout(60_000);
  let server: TestServer;
  let tcp: Awaited<ReturnType<typeof relay>>;
  let issuer: string;
  let browser: Browser;
  let rp: oidc.Configuration;

  before(async function () {
    if (!browserAvailable()) this.skip();
    let upstream = 0;
    tcp = await relay(() => upstream);
    issuer = `http://localhost:${tcp.port}`;
    server = await startServer({ overrides: { issuer } });
    upstream = Number(new URL(server.origin).port);
    const { client, clientSecret } = await server.app.services.clients.create({
      clientId: 'passkey-browser-app', name: 'Passkey test app', redirectUris: [REDIRECT_URI], postLogoutRedirectUris: [],
      public: false, firstParty: true, mfaPolicy: 'optional',
    });
    rp = await oidc.discovery(new URL(issuer), client.clientId, clientSecret!, oidc.ClientSecretBasic(clientSecret!), { execute: [oidc.allowInsecureRequests] });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await tcp?.close();
  });
  afterEach(function () {
    if (server) expect(server.errors).to.deep.equal([]);
  });

  /** A page with a platform authenticator that verifies the user and answers at once. */
  async function pageWithAuthenticator(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { context, page };
  }

  it('registers a passkey on the security page, then signs in with password and passkey', async () => {
    const user = await createUser(server, 'passkey-browser@example.com');
    const { context, page } = await pageWithAuthenticator();

    await page.goto(`${issuer}/account/security`);
    await page.fill('#email', 'passkey-browser@example.com');
    await page.fill('#password', 'correct horse battery staple');
    await page.click('button[type=submit]');
    await assertNoErrorPage(page);
    expect(await page.textContent('h1')).to.equal('Security');
    await snap(page, '20-security-no-factor');

    await page.click('a[href="/account/security/passkey"]');
    expect(await page.textContent('h1')).to.equal('Add a passkey');
    await page.fill('#name', 'This laptop');
    await snap(page, '21-add-passkey');
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:has-text("Save your recovery codes")');
    await assertNoErrorPage(page);
    await snap(page, '22-passkey-recovery-codes');
    await page.click('a.button');
    await page.waitForSelector('.notice');
    expect(await page.textContent('.factors')).to.include('This laptop').and.include('Security key');
    await snap(page, '23-security-with-passkey');
    const [factor] = await server.app.stores.factors.listByUser(user.id);
    expect(factor).to.include({ type: 'webauthn', status: 'ACTIVE', name: 'This laptop' });

    // A new sign-in to an app: password, then the passkey.
    await context.clearCookies();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const returned = new Promise<string>((resolve) => {
      void page.route(`${REDIRECT_URI}**`, (r) => {
        resolve(r.request().url());
        void r.fulfill({ status: 200, body: 'back at the app' });
      });
    });
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: REDIRECT_URI, scope: 'openid email', state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    await page.fill('#email', 'passkey-browser@example.com');
    await page.fill('#password', 'correct horse battery staple');
    await page.click('button[type=submit]');
    await assertNoErrorPage(page);
    expect(await page.textContent('.lead')).to.include('passkey');
    await snap(page, '24-sign-in-passkey');
    await page.click('button:has-text("Use passkey")');
    const callback = new URL(await returned);
    // Let the navigation to the app finish before the next one starts.
    await page.waitForURL((u) => u.href.startsWith(REDIRECT_URI));
    const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const claims = tokens.claims()!;
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'hwk', 'user', 'mfa']);
    expect(claims.acr).to.equal(ACR.phr);
    const [used] = await server.app.stores.factors.listByUser(user.id);
    expect(used!.lastUsedAt).to.be.a('number');

    // Adding another passkey asks for the first; this authenticator already holds one, and says so.
    await page.goto(`${issuer}/account/security`);
    await page.click('a[href="/account/security/passkey"]');
    expect(await page.textContent('h1')).to.equal('Confirm it’s you');
    await snap(page, '25-confirm-with-passkey');
    await page.click('button:has-text("Use passkey")');
    await page.waitForSelector('h1:has-text("Add a passkey")');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-webauthn-error]:not([hidden])');
    expect(await page.textContent('[data-webauthn-error]')).to.include('already registered');
    await snap(page, '26-passkey-already-registered');
    expect(await server.app.stores.factors.listByUser(user.id)).to.have.length(1);
  });
});
