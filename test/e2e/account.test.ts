/**
 * The self-service security page: sign-in through Twofold's own client, and
 * removing a factor only after a fresh second factor.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, totpNow } from '../helpers/oidc-flow.ts';
import { Agent, alertText, findForm } from '../helpers/agent.ts';

describe('account security page', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  async function signedIn(email: string) {
    const user = await createUser(server, email);
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    expect(page.html).to.include('current-password');
    page = await agent.submit(page, '/login', { email, password: 'correct horse battery staple' });
    page = await agent.submit(page, '/two-factor', { code: await totpNow(server, secret) });
    expect(page.url).to.equal(`${server.origin}/account/security`);
    return { user, secret, agent, page };
  }

  it('lists the factors of the signed-in user', async () => {
    const { page } = await signedIn('account-list@example.com');
    expect(page.status).to.equal(200);
    expect(page.html).to.include('account-list@example.com').and.include('Authenticator app').and.include('/remove');
  });

  it('asks for a fresh code before removing a factor, then removes it', async () => {
    const { user, secret, agent, page: security } = await signedIn('account-remove@example.com');
    const [factor] = await server.app.stores.factors.listByUser(user.id);
    // The session alone, even a valid form post, is not enough.
    const csrf = findForm(security.html, '/rename').hidden._csrf!;
    const direct = await agent.request('POST', `/account/security/factors/${factor!.id}/remove`, { _csrf: csrf });
    expect(direct.status).to.equal(200);
    expect(direct.html).to.include('Confirm it’s you');
    expect(await server.app.stores.factors.listByUser(user.id)).to.have.length(1);
    let page = await agent.get(`/account/security/factors/${factor!.id}/remove`);
    expect(page.html).to.include('Confirm it’s you');
    page = await agent.submit(page, '/account/security/confirm', { code: '000000' });
    expect(alertText(page.html)).to.match(/not correct/);
    expect(await server.app.stores.factors.listByUser(user.id)).to.have.length(1);
    server.clock.advance(30_000);
    page = await agent.submit(page, '/account/security/confirm', { code: await totpNow(server, secret) });
    expect(page.html).to.include('Remove “Authenticator app”?');
    page = await agent.submit(page, `/factors/${factor!.id}/remove`, {});
    expect(page.url).to.equal(`${server.origin}/account/security?done=removed`);
    expect(await server.app.stores.factors.listByUser(user.id)).to.deep.equal([]);
  });

  it('sends a visitor without a session to sign in', async () => {
    const res = await new Agent(server.origin).request('GET', '/account/security');
    expect(res.status).to.equal(303);
    expect(res.location).to.equal(`${server.origin}/account/login`);
  });
});
