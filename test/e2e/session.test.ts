/**
 * Sessions, step-up and the rest of the OIDC surface: prompt=none, refresh
 * tokens, revocation, introspection, consent and RP-initiated logout.
 */
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, REDIRECT_URI, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent } from '../helpers/agent.ts';
import { ACR } from '../../src/mfa/amr.ts';

describe('sessions and step-up', () => {
  let server: TestServer;
  let off: TestClient;
  let optional: TestClient;
  let required: TestClient;

  before(async () => {
    server = await startServer();
    off = await registerClient(server, { mfaPolicy: 'off' });
    optional = await registerClient(server, { mfaPolicy: 'optional' });
    required = await registerClient(server, { mfaPolicy: 'required' });
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('steps a password-only session up by asking only for the code, keeping the account', async () => {
    const user = await createUser(server, 'stepup@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);

    const first = new SignIn(server, off, agent);
    await first.start();
    await first.password('stepup@example.com');
    const low = await first.finish();
    expect(low.claims.amr).to.deep.equal(['pwd']);

    const before = agent.cookie('_session');
    expect(before).to.be.a('string');
    const second = new SignIn(server, required, agent);
    const page = await second.start();
    expect(page.html).to.include('Two-step verification').and.not.include('current-password');
    await second.code(await totpNow(server, secret));
    const high = await second.finish();
    // A new session id once the sign-in completed (no session fixation).
    expect(agent.cookie('_session')).to.be.a('string').and.not.equal(before);
    expect(high.claims.sub).to.equal(user.id);
    expect(high.claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(high.claims.acr).to.equal(ACR.mfa);
  });

  it('steps up when the RP asks for the mfa level with acr_values', async () => {
    const user = await createUser(server, 'acr@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);
    const first = new SignIn(server, off, agent);
    await first.start();
    await first.password('acr@example.com');
    await first.finish();

    const second = new SignIn(server, off, agent);
    const page = await second.start({ acr_values: ACR.mfa });
    expect(page.html).to.include('Two-step verification');
    await second.code(await totpNow(server, secret));
    expect((await second.finish()).claims.acr).to.equal(ACR.mfa);
  });

  it('never lowers the level: a code session asked for a passkey level, with none set up, ends in unmet_authentication_requirements', async () => {
    const user = await createUser(server, 'phr@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);
    const first = new SignIn(server, off, agent);
    await first.start({ acr_values: ACR.mfa });
    await first.password('phr@example.com');
    await first.code(await totpNow(server, secret));
    expect((await first.finish()).claims.acr).to.equal(ACR.mfa);

    // The essential claim and acr_values both ask for a passkey: no ID token at a lower level.
    for (const params of <Array<Record<string, string>>>[
      { acr_values: ACR.phr },
      { claims: JSON.stringify({ id_token: { acr: { essential: true, value: ACR.phr } } }) },
    ]) {
      const second = new SignIn(server, off, agent);
      const res = await second.start(params);
      const back = new URL(res.location!);
      expect(`${back.origin}${back.pathname}`, JSON.stringify(params)).to.equal(REDIRECT_URI);
      expect(back.searchParams.get('error')).to.equal('unmet_authentication_requirements');
      expect(back.searchParams.has('code')).to.equal(false);
    }

    // A fresh sign-in asking for it: the password is checked, then the same answer.
    const fresh = new SignIn(server, off);
    await fresh.start({ acr_values: ACR.phr });
    await fresh.password('phr@example.com');
    expect(new URL(fresh.page.location!).searchParams.get('error')).to.equal('unmet_authentication_requirements');
  });

  it('answers prompt=none with login_required while the second factor is pending', async () => {
    const user = await createUser(server, 'pending-none@example.com');
    await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, required);
    await flow.start();
    await flow.password('pending-none@example.com');
    expect(flow.page.html).to.include('Two-step verification');

    const silent = new SignIn(server, required, flow.agent);
    const res = await silent.start({ prompt: 'none' });
    const back = new URL(res.location!);
    expect(`${back.origin}${back.pathname}`).to.equal(REDIRECT_URI);
    expect(back.searchParams.get('error')).to.equal('login_required');
  });

  it('answers prompt=none silently once both factors are done', async () => {
    const user = await createUser(server, 'silent@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, required);
    await flow.start();
    await flow.password('silent@example.com');
    await flow.code(await totpNow(server, secret));
    await flow.finish();

    const silent = new SignIn(server, required, flow.agent);
    await silent.start({ prompt: 'none' });
    const { claims } = await silent.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('ends every session of a user and revokes their refresh tokens (management API), audited', async () => {
    const user = await createUser(server, 'everywhere@example.com');
    const signedIn = async () => {
      const flow = new SignIn(server, optional);
      await flow.start({ scope: 'openid offline_access', prompt: 'consent' });
      await flow.password('everywhere@example.com');
      if (flow.page.status === 200 && flow.page.html.includes('Allow access')) flow.page = await flow.agent.submit(flow.page, '/consent', {});
      return { agent: flow.agent, tokens: (await flow.finish()).tokens };
    };
    const laptop = await signedIn();
    const phone = await signedIn();
    const key = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:write'] })).key;
    const res = await fetch(`${server.origin}/api/v1/users/${user.id}/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
    expect(res.status).to.equal(204);

    for (const device of [laptop, phone]) {
      let refused: unknown;
      await oidc.refreshTokenGrant(optional.config, device.tokens.refresh_token!).catch((err: unknown) => { refused = err; });
      expect((refused as { error?: string } | undefined)?.error).to.equal('invalid_grant');
      const silent = new SignIn(server, optional, device.agent);
      const back = new URL((await silent.start({ prompt: 'none' })).location!);
      expect(back.searchParams.get('error')).to.equal('login_required');
    }
    const { events } = await server.app.stores.events.page({ userId: user.id, type: 'user.sessions_ended', limit: 10 });
    expect(events).to.have.length(1);
    expect(events[0]!.details).to.include({ sessions: 2 });
    expect(String(events[0]!.details.actor)).to.match(/^api_key:/);
  });

  it('issues client_credentials tokens only to clients allowed that grant, with no user in them', async () => {
    const machine = await registerClient(server, { clientCredentials: true });
    const tokens = await oidc.clientCredentialsGrant(machine.config, {});
    expect(tokens.access_token).to.be.a('string');
    expect(tokens.id_token).to.equal(undefined);
    const info = await oidc.tokenIntrospection(machine.config, tokens.access_token);
    expect(info).to.include({ active: true, client_id: machine.clientId });
    expect(info.sub).to.equal(undefined);
    let refused: unknown;
    await oidc.clientCredentialsGrant(optional.config, {}).catch((err: unknown) => { refused = err; });
    // oidc-provider's answer for a grant type the client was not registered with.
    expect((refused as { error?: string }).error).to.equal('invalid_request');
    expect(String((refused as { error_description?: string }).error_description)).to.match(/grant/);
  });

  it('issues refresh tokens that rotate, and revokes and introspects tokens', async () => {
    await createUser(server, 'refresh@example.com');
    const flow = new SignIn(server, optional);
    await flow.start({ scope: 'openid offline_access', prompt: 'consent' });
    await flow.password('refresh@example.com');
    if (flow.page.status === 200 && flow.page.html.includes('Allow access')) {
      flow.page = await flow.agent.submit(flow.page, '/consent', {});
    }
    const { tokens } = await flow.finish();
    expect(tokens.refresh_token).to.be.a('string');

    const refreshed = await oidc.refreshTokenGrant(optional.config, tokens.refresh_token!);
    expect(refreshed.access_token).to.be.a('string').and.not.equal(tokens.access_token);
    expect(refreshed.claims()?.amr).to.deep.equal(['pwd']);

    const active = await oidc.tokenIntrospection(optional.config, refreshed.access_token);
    expect(active.active).to.equal(true);
    await oidc.tokenRevocation(optional.config, refreshed.access_token);
    expect((await oidc.tokenIntrospection(optional.config, refreshed.access_token)).active).to.equal(false);
  });

  it('asks a third-party client for consent and remembers it', async () => {
    const thirdParty = await registerClient(server, { mfaPolicy: 'optional', firstParty: false });
    await createUser(server, 'consent@example.com');
    const flow = new SignIn(server, thirdParty);
    await flow.start();
    const consent = await flow.password('consent@example.com');
    expect(consent.html).to.include('Allow access?').and.include('See your email address');
    await flow.agent.submit(consent, '/consent', {}).then((p) => { flow.page = p; });
    expect((await flow.finish()).claims.amr).to.deep.equal(['pwd']);

    const again = new SignIn(server, thirdParty, flow.agent);
    await again.start();
    expect(again.returned).to.equal(true);
  });

  it('ends a session at its absolute lifetime, however active it has been', async () => {
    await createUser(server, 'absolute@example.com');
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('absolute@example.com');
    await flow.finish();
    const lifetime = server.config.ttl.session * 1000;
    // Used every 90 minutes, so it never sits idle.
    const step = 90 * 60_000;
    let elapsed = 0;
    while (elapsed + step < lifetime) {
      server.clock.advance(step);
      elapsed += step;
      const busy = new SignIn(server, optional, flow.agent);
      await busy.start({ prompt: 'none' });
      expect(new URL(busy.page.location!).searchParams.get('code'), `after ${elapsed / 60_000} min`).to.be.a('string');
    }

    server.clock.advance(lifetime - elapsed + 1_000);
    const late = new SignIn(server, optional, flow.agent);
    const res = await late.start({ prompt: 'none' });
    expect(new URL(res.location!).searchParams.get('error')).to.equal('login_required');
  });

  it('ends a session left unused for its idle lifetime', async () => {
    await createUser(server, 'idle@example.com');
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('idle@example.com');
    await flow.finish();
    const idle = server.config.ttl.sessionIdle * 1000;
    server.clock.advance(idle - 60_000);
    const used = new SignIn(server, optional, flow.agent);
    await used.start({ prompt: 'none' });
    expect(new URL(used.page.location!).searchParams.get('code'), used.page.location!).to.be.a('string');
    server.clock.advance(idle + 1_000);
    const late = new SignIn(server, optional, flow.agent);
    expect(new URL((await late.start({ prompt: 'none' })).location!).searchParams.get('error')).to.equal('login_required');
  });

  it('signs out through RP-initiated logout and ends the session', async () => {
    await createUser(server, 'logout@example.com');
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('logout@example.com');
    const { tokens } = await flow.finish();

    const endUrl = oidc.buildEndSessionUrl(optional.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/' });
    const confirm = await flow.agent.get(endUrl.href);
    expect(confirm.status).to.equal(200);
    expect(confirm.html).to.include('Sign out?');
    const done = await flow.agent.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    expect(done.location).to.equal('http://127.0.0.1:9/');

    const silent = new SignIn(server, optional, flow.agent);
    const res = await silent.start({ prompt: 'none' });
    expect(new URL(res.location!).searchParams.get('error')).to.equal('login_required');
  });
});

describe('max_age', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());

  // oidc-provider checks max_age against the real clock (not the app's), so
  // this one test waits 2 seconds instead of moving the test clock.
  it('asks for the password again when the sign-in is older than max_age, and prompt=none then fails', async function () {
    this.timeout(20_000);
    const client = await registerClient(server, { mfaPolicy: 'optional' });
    await createUser(server, 'max-age@example.com');
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('max-age@example.com');
    const first = await flow.finish();
    await new Promise((r) => setTimeout(r, 2_100));
    server.clock.set(Date.now());
    const silent = new SignIn(server, client, flow.agent);
    const res = await silent.start({ prompt: 'none', max_age: '1' });
    expect(new URL(res.location!).searchParams.get('error')).to.equal('login_required');
    const fresh = new SignIn(server, client, flow.agent);
    const page = await fresh.start({ max_age: '1' });
    expect(page.html).to.include('current-password');
    await fresh.password('max-age@example.com');
    const second = await fresh.finish();
    expect(second.claims.auth_time).to.be.a('number').and.greaterThan(first.claims.iat);
  });
});
