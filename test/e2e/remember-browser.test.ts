/**
 * "Remember this browser": after a second factor, the browser may skip it for
 * this account, honestly reported (amr ["pwd"], acr password), never for a
 * requested second-factor level, only for clients allowed to offer it, and
 * revocable.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent } from '../helpers/agent.ts';
import { ACR } from '../../src/mfa/amr.ts';
import { TestDevice } from '../helpers/device.ts';

describe('remember this browser', () => {
  let server: TestServer;
  let firstParty: TestClient;
  let thirdParty: TestClient;

  before(async () => {
    server = await startServer();
    firstParty = await registerClient(server, { mfaPolicy: 'required', firstParty: true });
    thirdParty = await registerClient(server, { mfaPolicy: 'required', firstParty: false });
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  /** Signs in with password and code, ticking "remember" when asked; returns the browser. */
  async function rememberedBrowser(email: string, secret: string): Promise<Agent> {
    const flow = new SignIn(server, firstParty);
    await flow.start();
    await flow.password(email);
    expect(flow.page.html).to.include('Don’t ask again on this browser for 30 days');
    flow.page = await flow.agent.submit(flow.page, '/two-factor', { code: await totpNow(server, secret), remember: 'on' });
    const { claims } = await flow.finish();
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    server.clock.advance(30_000);
    return flow.agent;
  }

  /** A fresh sign-in (prompt=login) in `agent` up to the password step. */
  async function passwordOnly(agent: Agent, client: TestClient, email: string, params: Record<string, string> = {}) {
    const flow = new SignIn(server, client, agent);
    await flow.start({ prompt: 'login', ...params });
    await flow.password(email);
    return flow;
  }

  it('skips the second factor on a remembered browser and says so: amr ["pwd"], acr password', async () => {
    const user = await createUser(server, 'remember@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const browser = await rememberedBrowser('remember@example.com', secret);
    const again = await passwordOnly(browser, firstParty, 'remember@example.com');
    const { claims } = await again.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd']);
    expect(claims.acr).to.equal(ACR.password);

    // Another browser is asked.
    const other = await passwordOnly(new Agent(server.origin), firstParty, 'remember@example.com');
    expect(other.page.html).to.include('Two-step verification');
  });

  it('never satisfies a request for the mfa level, in acr_values or an essential claim', async () => {
    const user = await createUser(server, 'remember-acr@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const browser = await rememberedBrowser('remember-acr@example.com', secret);
    for (const params of <Array<Record<string, string>>>[{ acr_values: ACR.mfa }, { claims: JSON.stringify({ id_token: { acr: { essential: true, value: ACR.mfa } } }) }]) {
      const flow = await passwordOnly(browser, firstParty, 'remember-acr@example.com', params);
      expect(flow.page.html, JSON.stringify(params)).to.include('Two-step verification');
    }
  });

  it('is neither offered nor honoured for a client not allowed to (third party), nor for another user on the same browser', async () => {
    const user = await createUser(server, 'remember-3p@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const browser = await rememberedBrowser('remember-3p@example.com', secret);
    const third = await passwordOnly(browser, thirdParty, 'remember-3p@example.com');
    expect(third.page.html).to.include('Two-step verification').and.not.include('Don’t ask again');

    const other = await createUser(server, 'remember-other@example.com');
    await giveAuthenticator(server, other.id);
    const flow = await passwordOnly(browser, firstParty, 'remember-other@example.com');
    expect(flow.page.html).to.include('Two-step verification');
  });

  it('stops skipping once the trust is revoked or has expired', async () => {
    const user = await createUser(server, 'remember-revoke@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const browser = await rememberedBrowser('remember-revoke@example.com', secret);
    // An admin sees it and revokes it through the management API.
    const key = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:read', 'users:write'] })).key;
    const call = (method: string, path: string) => fetch(`${server.origin}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
    const listed = await (await call('GET', `/api/v1/users/${user.id}/trusted-browsers`)).json() as Array<{ id: string; label: string }>;
    expect(listed).to.have.length(1);
    expect(listed[0]!.label).to.match(/ on /);
    expect((await call('DELETE', `/api/v1/users/${user.id}/trusted-browsers/${listed[0]!.id}`)).status).to.equal(204);
    expect((await call('DELETE', `/api/v1/users/${user.id}/trusted-browsers/${listed[0]!.id}`)).status).to.equal(404);
    expect((await passwordOnly(browser, firstParty, 'remember-revoke@example.com')).page.html).to.include('Two-step verification');

    const later = await rememberedBrowser('remember-revoke@example.com', secret);
    server.clock.advance(31 * 86_400_000);
    expect((await passwordOnly(later, firstParty, 'remember-revoke@example.com')).page.html).to.include('Two-step verification');
  });

  it('lists remembered browsers on the security page, where the person can forget one', async () => {
    const user = await createUser(server, 'remember-page@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email: 'remember-page@example.com', password: 'correct horse battery staple' });
    page = await agent.submit(page, '/two-factor', { code: await totpNow(server, secret), remember: 'on' });
    expect(page.url).to.equal(`${server.origin}/account/security`);
    expect(page.html).to.include('Browsers that skip two-step verification');
    page = await agent.submit(page, '/forget', {});
    expect(page.html).to.include('will be asked for two-step verification again').and.not.include('Browsers that skip');
    expect(await server.app.services.trust.list(user.id)).to.deep.equal([]);
  });

  it('forgets remembered browsers when the user signs out everywhere, and when an admin resets their factors', async () => {
    const user = await createUser(server, 'remember-reset@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const key = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:write', 'factors:write'] })).key;
    const call = (method: string, path: string) => fetch(`${server.origin}${path}`, { method, headers: { authorization: `Bearer ${key}` } });

    await rememberedBrowser('remember-reset@example.com', secret);
    expect(await server.app.services.trust.list(user.id)).to.have.length(1);
    expect((await call('DELETE', `/api/v1/users/${user.id}/sessions`)).status).to.equal(204);
    expect(await server.app.services.trust.list(user.id)).to.deep.equal([]);

    await rememberedBrowser('remember-reset@example.com', secret);
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await server.app.services.devices.createLinkingCode(user.id)).code, 'Phone');
    expect((await call('POST', `/api/v1/users/${user.id}/lifecycle/reset_factors`)).status).to.equal(200);
    expect(await server.app.services.trust.list(user.id)).to.deep.equal([]);
    expect(await server.app.services.devices.hasActive(user.id)).to.equal(false);
  });
});
