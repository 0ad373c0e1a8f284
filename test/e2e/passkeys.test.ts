/**
 * Passkeys as a second factor, through the hosted pages with a software
 * authenticator: registration on the security page, sign-in to an OIDC
 * client, and the attacks the design must stop (replayed assertions, another
 * user's credential, a cloned authenticator, a lying Host header).
 * Over 300 lines: one spec per attack, sharing the same page helpers.
 */
import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, registerClient, REDIRECT_URI, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent, alertText, decodeEntities, findForm, type Page } from '../helpers/agent.ts';
import { SoftAuthenticator, type SoftAuthenticatorOptions } from '../helpers/soft-authenticator.ts';
import { ACR } from '../../src/mfa/amr.ts';
import { createPasskeys, type Passkeys } from '../../src/mfa/passkeys.ts';
import { createWebAuthnStore } from '../../src/store/webauthn-challenges.ts';

/** The options JSON of the page's passkey form. */
function optionsOn<T = PublicKeyCredentialRequestOptionsJSON>(page: Page): T {
  const m = /<form[^>]*data-webauthn="(?:register|authenticate)"[^>]*data-options="([^"]*)"/.exec(page.html);
  expect(m, `a passkey form on the page (${page.status}):\n${page.html.slice(0, 1500)}`).to.not.equal(null);
  return JSON.parse(decodeEntities(m![1]!)) as T;
}

describe('passkeys', () => {
  let server: TestServer;
  let client: TestClient;
  let rpId: string;
  let n = 0;

  before(async () => {
    server = await startServer();
    client = await registerClient(server, { mfaPolicy: 'optional' });
    rpId = new URL(server.origin).hostname;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  const authenticator = (options: Partial<SoftAuthenticatorOptions> = {}) => new SoftAuthenticator({ origin: server.origin, rpId, ...options });
  const factorsOf = async (userId: string) => (await server.app.stores.factors.listByUser(userId)).filter((f) => f.type === 'webauthn');
  const eventsOf = async (userId: string) => (await server.app.stores.events.page({ userId, limit: 100 })).events;

  /** A new user signed in on the security page; with `passkey`, that passkey answers the second factor. */
  async function accountOf(passkey?: SoftAuthenticator) {
    n += 1;
    const email = `passkey-${n}@example.com`;
    const user = await createUser(server, email);
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email, password: 'correct horse battery staple' });
    return { user, email, agent, page, passkey };
  }

  /** Signs in on the security page of a user whose only factor is `passkey`. */
  async function signInToAccount(email: string, passkey: SoftAuthenticator): Promise<Agent> {
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email, password: 'correct horse battery staple' });
    page = await agent.submit(page, '/two-factor', { credential: JSON.stringify(passkey.authenticate(optionsOn(page))) });
    expect(page.url).to.equal(`${server.origin}/account/security`);
    return agent;
  }

  /** Registers `passkey` from the security page (the caller passed any confirmation). */
  async function register(agent: Agent, passkey: SoftAuthenticator, name = ''): Promise<Page> {
    const page = await agent.get('/account/security/passkey');
    expect(page.html, 'the registration page').to.include('Add a passkey');
    return agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(optionsOn(page))), name });
  }

  /** A user with one registered passkey, and that passkey. */
  async function userWithPasskey(options: Partial<SoftAuthenticatorOptions> = {}) {
    const passkey = authenticator(options);
    const account = await accountOf(passkey);
    const page = await register(account.agent, passkey);
    expect(page.html).to.include('Save your recovery codes');
    return { ...account, passkey };
  }

  /** Password step of an OIDC sign-in; returns the flow on the passkey page. */
  async function passwordStep(email: string): Promise<SignIn> {
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password(email);
    expect(flow.page.status, flow.page.html.slice(0, 500)).to.equal(200);
    expect(flow.page.html).to.include('Use your passkey or security key');
    return flow;
  }

  async function answer(flow: SignIn, response: unknown, headers: Record<string, string> = {}): Promise<Page> {
    const form = findForm(flow.page.html, '/two-factor');
    flow.page = await flow.agent.follow(await flow.agent.request('POST', form.action, { ...form.hidden, credential: JSON.stringify(response) }, headers));
    return flow.page;
  }

  describe('registration on the security page', () => {
    it('registers a first passkey without a code, shows recovery codes, and lists it', async () => {
      const passkey = authenticator();
      const { user, agent } = await accountOf(passkey);
      const form = await agent.get('/account/security/passkey');
      expect(form.status).to.equal(200);
      expect(form.html).to.include('data-webauthn="register"').and.include('src="/static/webauthn.js"').and.include('name="name"');
      const options = optionsOn<PublicKeyCredentialCreationOptionsJSON>(form);
      expect(options.rp.id).to.equal(rpId);
      expect(options.user.name).to.equal(user.email);
      expect(Buffer.from(options.user.id, 'base64url').toString()).to.equal(user.id);
      expect(options.excludeCredentials).to.deep.equal([]);

      let page = await agent.submit(form, '/account/security/passkey', { credential: JSON.stringify(passkey.register(options)), name: '  Desk key ' });
      expect(page.html).to.include('Save your recovery codes');
      expect([...page.html.matchAll(/<li><code>([0-9A-Z-]+)<\/code><\/li>/g)]).to.have.length(10);
      page = await agent.get(/<a class="button" href="([^"]+)"/.exec(page.html)![1]!);
      expect(page.html).to.include('Your passkey is set up').and.include('Desk key').and.include('Security key');

      const [factor] = await factorsOf(user.id);
      expect(factor).to.include({ status: 'ACTIVE', name: 'Desk key' });
      expect(factor!.settings).to.include({ credentialId: passkey.id, counter: 0, deviceType: 'singleDevice', backedUp: false });
      const types = (await eventsOf(user.id)).map((e) => e.type);
      expect(types).to.include.members(['factor.enrolled', 'factor.activated', 'recovery_codes.generated']);
    });

    it('names a synced passkey "Passkey" by default', async () => {
      const { user } = await userWithPasskey({ synced: true });
      const [factor] = await factorsOf(user.id);
      expect(factor).to.include({ name: 'Passkey' });
      expect(factor!.settings).to.include({ deviceType: 'multiDevice', backedUp: true });
    });

    it('asks for the first passkey before adding another, excludes it, and refuses it twice', async () => {
      const { user, email, passkey } = await userWithPasskey();
      const agent = await signInToAccount(email, passkey);

      let page = await agent.get('/account/security/passkey');
      expect(page.html).to.include('Confirm it’s you').and.include('data-webauthn="authenticate"');
      // A signature from a key that was never registered does not confirm.
      page = await agent.submit(page, '/account/security/confirm', { credential: JSON.stringify(passkey.authenticate(optionsOn(page), { forge: true })) });
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('passkey was not accepted');
      page = await agent.submit(page, '/account/security/confirm', { credential: JSON.stringify(passkey.authenticate(optionsOn(page))) });
      expect(page.html).to.include('Add a passkey');

      const options = optionsOn<PublicKeyCredentialCreationOptionsJSON>(page);
      expect(options.excludeCredentials!.map((c) => c.id)).to.deep.equal([passkey.id]);
      // A browser refuses an excluded credential; a client that ignores the list is refused by the server.
      expect(() => passkey.register(options)).to.throw(/InvalidStateError/);
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register({ ...options, excludeCredentials: [] })) });
      expect(page.status).to.equal(409);
      expect(alertText(page.html)).to.include('already registered');

      const phone = authenticator({ synced: true });
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(phone.register(optionsOn(page))), name: 'Phone' });
      expect(page.url).to.equal(`${server.origin}/account/security?done=passkey-added`);
      expect(page.html).to.include('Phone').and.include('Passkey').and.include('Security key');
      expect((await factorsOf(user.id)).map((f) => f.settings.credentialId)).to.deep.equal([passkey.id, phone.id]);
    });

    it('refuses a response for another origin or RP ID, and spends the options either way', async () => {
      const passkey = authenticator();
      const { user, agent } = await accountOf(passkey);
      let page = await agent.get('/account/security/passkey');
      const options = optionsOn<PublicKeyCredentialCreationOptionsJSON>(page);
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(options, { origin: 'https://evil.example' })) });
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('could not be registered');
      // The options it answered are spent: a good response to them is refused (and spends the newer ones too).
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(options)) });
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('could not be registered');
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(optionsOn(page), { rpId: 'evil.example' })) });
      expect(alertText(page.html)).to.include('could not be registered');
      expect(await factorsOf(user.id)).to.deep.equal([]);

      // Options are good for five minutes.
      const later = optionsOn<PublicKeyCredentialCreationOptionsJSON>(page);
      server.clock.advance(301_000);
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(later)) });
      expect(alertText(page.html)).to.include('expired');
      page = await agent.submit(page, '/account/security/passkey', { credential: JSON.stringify(passkey.register(optionsOn(page))) });
      expect(page.html).to.include('Save your recovery codes');
    });

    it('renames a passkey, and removes it after a fresh passkey check', async () => {
      const { user, email, passkey } = await userWithPasskey();
      const agent = await signInToAccount(email, passkey);
      const [factor] = await factorsOf(user.id);
      let page = await agent.get('/account/security');
      page = await agent.submit(page, `/factors/${factor!.id}/rename`, { name: 'Yubikey' });
      expect(page.html).to.include('Yubikey');

      page = await agent.get(`/account/security/factors/${factor!.id}/remove`);
      expect(page.html).to.include('Confirm it’s you');
      page = await agent.submit(page, '/account/security/confirm', { credential: JSON.stringify(passkey.authenticate(optionsOn(page))) });
      expect(page.html).to.include('Remove “Yubikey”?').and.include('this security key');
      page = await agent.submit(page, `/factors/${factor!.id}/remove`, {});
      expect(page.url).to.equal(`${server.origin}/account/security?done=removed`);
      expect(await factorsOf(user.id)).to.deep.equal([]);
      expect(await server.db('recovery_codes').where({ user_id: user.id })).to.deep.equal([]);
    });
  });

  describe('sign-in with a passkey', () => {
    it('signs in with password and passkey: amr hwk+user+mfa, acr phishing-resistant, counter kept', async () => {
      const { user, email, passkey } = await userWithPasskey();
      const flow = await passwordStep(email);
      const options = optionsOn(flow.page);
      expect(options.rpId).to.equal(rpId);
      expect(options.allowCredentials!.map((c) => c.id)).to.deep.equal([passkey.id]);
      expect(options.userVerification).to.equal('preferred');
      await answer(flow, passkey.authenticate(options));
      const { claims } = await flow.finish();
      expect(claims.sub).to.equal(user.id);
      expect(claims.amr).to.deep.equal(['pwd', 'hwk', 'user', 'mfa']);
      expect(claims.acr).to.equal(ACR.phr);

      const [factor] = await factorsOf(user.id);
      expect(factor!.settings.counter).to.equal(1);
      expect(factor!.lastUsedAt).to.equal(server.clock.now());
    });

    it('reports swk for a synced passkey, and no user without user verification', async () => {
      const { email, passkey } = await userWithPasskey({ synced: true, userVerified: false });
      const flow = await passwordStep(email);
      await answer(flow, passkey.authenticate(optionsOn(flow.page)));
      const { claims } = await flow.finish();
      expect(claims.amr).to.deep.equal(['pwd', 'swk', 'mfa']);
      expect(claims.acr).to.equal(ACR.phr);
    });

    it('refuses an assertion replayed for the same challenge, and one replayed in a later sign-in', async () => {
      const { email, passkey } = await userWithPasskey();
      const flow = await passwordStep(email);
      const options = optionsOn(flow.page);
      // A wrong answer spends the options it was made for ...
      let page = await answer(flow, passkey.authenticate(options, { forge: true }));
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('could not be verified');
      // ... so a right answer to those same options is refused too.
      const late = passkey.authenticate(options);
      page = await answer(flow, late);
      expect(page.status).to.equal(400);
      const good = passkey.authenticate(optionsOn(page));
      page = await answer(flow, good);
      expect(page.location).to.match(new RegExp(`^${REDIRECT_URI}`));
      await flow.finish();

      // The accepted assertion again, in a new sign-in: another challenge, refused.
      const again = await passwordStep(email);
      page = await answer(again, good);
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('could not be verified');
    });

    it('accepts only one of two concurrent answers to the same options', async () => {
      const { email, passkey } = await userWithPasskey();
      const flow = await passwordStep(email);
      const options = optionsOn(flow.page);
      const form = findForm(flow.page.html, '/two-factor');
      const [a, b] = [passkey.authenticate(options), passkey.authenticate(options)];
      const results = await Promise.all([a, b].map((r) => flow.agent.request('POST', form.action, { ...form.hidden, credential: JSON.stringify(r) })));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 303), statuses.join()).to.have.length(1);
      expect(statuses.filter((s) => s >= 400), statuses.join()).to.have.length(1);
    });

    it("refuses an assertion made with another user's passkey", async () => {
      const alice = await userWithPasskey();
      const mallory = await userWithPasskey();
      const flow = await passwordStep(alice.email);
      const options = optionsOn(flow.page);
      // Mallory's authenticator signs Alice's challenge (a client that ignores allowCredentials).
      let page = await answer(flow, mallory.passkey.authenticate({ ...options, allowCredentials: [] }));
      expect(page.status).to.equal(400);
      expect(alertText(page.html)).to.include('could not be verified');
      page = await answer(flow, alice.passkey.authenticate(optionsOn(page)));
      expect(page.location).to.match(new RegExp(`^${REDIRECT_URI}`));
      expect((await flow.finish()).claims.sub).to.equal(alice.user.id);
    });

    it('refuses a counter that does not rise (a cloned authenticator) and records it', async () => {
      const { user, email, passkey } = await userWithPasskey();
      for (let i = 0; i < 2; i += 1) {
        const flow = await passwordStep(email);
        await answer(flow, passkey.authenticate(optionsOn(flow.page)));
        await flow.finish();
      }
      expect((await factorsOf(user.id))[0]!.settings.counter).to.equal(2);
      const flow = await passwordStep(email);
      let page = await answer(flow, passkey.authenticate(optionsOn(flow.page), { counter: 2 }));
      expect(page.status).to.equal(400);
      page = await answer(flow, passkey.authenticate(optionsOn(page), { counter: 1 }));
      expect(page.status).to.equal(400);
      expect((await factorsOf(user.id))[0]!.settings.counter).to.equal(2);
      const failed = (await eventsOf(user.id)).filter((e) => e.type === 'factor.verify_failed');
      expect(failed.map((e) => e.details.reason)).to.deep.equal(['counter_regressed', 'counter_regressed']);
      page = await answer(flow, passkey.authenticate(optionsOn(page), { counter: 7 }));
      expect(page.location).to.match(new RegExp(`^${REDIRECT_URI}`));
      expect((await factorsOf(user.id))[0]!.settings.counter).to.equal(7);
    });

    it('takes the RP ID and origin from the configuration, whatever the Host header says', async () => {
      const passkey = authenticator();
      const { agent, email } = await accountOf(passkey);
      const form = await lying(agent, 'GET', '/account/security/passkey');
      expect(form.status).to.equal(200);
      expect(optionsOn<PublicKeyCredentialCreationOptionsJSON>(form).rp.id).to.equal(rpId);
      await register(agent, passkey);

      const flow = await passwordStep(email);
      const page = await lying(flow.agent, 'GET', flow.page.url);
      const options = optionsOn(page);
      expect(options.rpId).to.equal(rpId);
      const post = (response: unknown) => {
        const { action, hidden } = findForm(flow.page.html, '/two-factor');
        return lying(flow.agent, 'POST', action, { ...hidden, credential: JSON.stringify(response) });
      };
      // What a look-alike site at evil.example would relay: the browser's origin or RP ID hash gives it away.
      let answered = await post(passkey.authenticate(options, { origin: 'https://evil.example' }));
      expect(answered.status).to.equal(400);
      answered = await post(passkey.authenticate(optionsOn(answered), { origin: 'https://evil.example', rpId: 'evil.example' }));
      expect(answered.status).to.equal(400);
      answered = await post(passkey.authenticate(optionsOn(answered)));
      expect(answered.status).to.equal(303);
    });
  });

  describe('the passkey method', () => {
    // The same domain module the app uses, on the app's database: what the
    // pages cannot show (a re-rendered page always brings new options).
    let passkeys: Passkeys;
    before(() => {
      passkeys = createPasskeys({
        db: server.db, clock: server.clock, factors: server.app.stores.factors, store: createWebAuthnStore(server.db, server.clock),
        events: server.app.stores.events, recoveryCodes: server.app.services.recoveryCodes, issuer: server.origin,
      });
    });

    async function challengeOf(userId: string) {
      const { challenge } = await server.app.services.challenges.begin({ userId, clientId: client.clientId, origin: 'start_api', binding: null, amr: ['pwd'] });
      const method = challenge.methods.find((m) => m.method === 'webauthn')!;
      return { challenge, ctx: { challenge, method, factor: undefined } };
    }

    it('checks each set of options once: a right answer after a wrong one, or twice, is refused', async () => {
      const { user, passkey } = await userWithPasskey();
      const { challenge, ctx } = await challengeOf(user.id);
      const options = (await passkeys.authenticationOptions(challenge))!;
      expect(await passkeys.methodHandler.check(ctx, { credential: passkey.authenticate(options, { forge: true }) })).to.equal(null);
      expect(await passkeys.methodHandler.check(ctx, { credential: passkey.authenticate(options) })).to.equal(null);

      const fresh = (await passkeys.authenticationOptions(challenge))!;
      const response = passkey.authenticate(fresh);
      const [a, b] = await Promise.all([passkeys.methodHandler.check(ctx, { credential: response }), passkeys.methodHandler.check(ctx, { credential: response })]);
      expect([a, b].filter((r) => r !== null)).to.have.length(1);
      expect((a ?? b)!.amr).to.deep.equal(['hwk', 'user']);
      expect((a ?? b)!.phishingResistant).to.equal(true);
    });

    it('raises the counter with a guarded write: of two accepted answers from one counter value, one spends', async () => {
      const { user, passkey } = await userWithPasskey();
      const first = await challengeOf(user.id);
      const second = await challengeOf(user.id);
      const a = await passkeys.methodHandler.check(first.ctx, { credential: passkey.authenticate((await passkeys.authenticationOptions(first.challenge))!, { counter: 5 }) });
      const b = await passkeys.methodHandler.check(second.ctx, { credential: passkey.authenticate((await passkeys.authenticationOptions(second.challenge))!, { counter: 5 }) });
      expect(a).to.not.equal(null);
      expect(b).to.not.equal(null);
      expect(await server.db.transaction((trx) => a!.spend(trx))).to.equal(true);
      expect(await server.db.transaction((trx) => b!.spend(trx))).to.equal(false);
      expect((await factorsOf(user.id))[0]!.settings.counter).to.equal(5);
    });

    it('answers nothing for a removed passkey, a malformed answer or expired options', async () => {
      const { user, passkey } = await userWithPasskey();
      const { challenge, ctx } = await challengeOf(user.id);
      expect(await passkeys.methodHandler.check(ctx, { credential: { id: passkey.id } })).to.equal(null);
      expect(await passkeys.methodHandler.check(ctx, { code: '123456' })).to.equal(null);
      const options = (await passkeys.authenticationOptions(challenge))!;
      server.clock.set(challenge.expiresAt);
      expect(await passkeys.methodHandler.check(ctx, { credential: passkey.authenticate(options) })).to.equal(null);
      expect(await passkeys.methodDetails(challenge, { id: 'x', method: 'authenticator', factorId: null })).to.deep.equal({});
      await server.app.stores.factors.deleteOfUser(user.id, (await factorsOf(user.id))[0]!.id);
      expect(await passkeys.authenticationOptions(challenge)).to.equal(null);
    });
  });

  /**
   * A request whose Host (and forwarding headers) name another site, as a
   * misconfigured proxy or an attacker's own client would send. fetch()
   * cannot set Host, so this goes through node:http with the agent's cookies.
   */
  function lying(agent: Agent, method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<Page> {
    const target = new URL(url, server.origin);
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers: Record<string, string | number> = {
      host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', cookie: agent.cookieHeader(target.pathname),
      ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = httpRequest(target, { method, headers }, (res) => {
        let html = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { html += chunk; });
        res.on('end', () => resolve({
          status: res.statusCode!, url: target.href, html, headers: new Headers(),
          location: res.headers.location ? new URL(res.headers.location, target).href : null,
        }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
});

describe('passkeys for apps with their own screens', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('answers 242 / start with passkey options, and takes the signed answer as `credential`', async () => {
    const user = await createUser(server, 'own-screens@example.com');
    const rpId = new URL(server.origin).hostname;
    const passkey = new SoftAuthenticator({ origin: server.origin, rpId });
    const options = await server.app.services.passkeys.registrationOptions(user, 'test-registration');
    await server.app.services.passkeys.register(user, 'test-registration', passkey.register(options), 'Test key');
    const client = await registerClient(server);
    const key = (await server.app.services.apiKeys.create({ name: 'backend', scopes: ['login'] })).key;
    const call = async (path: string, body: unknown) => {
      const res = await fetch(`${server.origin}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() as any };
    };
    const started = await call('/api/two-factor/start', { loginId: 'own-screens@example.com', applicationId: client.clientId });
    const method = started.body.methods.find((m: { method: string }) => m.method === 'webauthn');
    expect(method.webauthn.options.rpId).to.equal(rpId);
    expect(method.webauthn.options.allowCredentials).to.have.length(1);
    const credential = passkey.authenticate(method.webauthn.options);
    const done = await call('/api/two-factor/login', { twoFactorId: started.body.twoFactorId, methodId: 'webauthn', credential });
    expect(done.status, JSON.stringify(done.body)).to.equal(200);
    // Replaying the same signed answer in a new challenge fails: its challenge was spent.
    const again = await call('/api/two-factor/start', { loginId: 'own-screens@example.com', applicationId: client.clientId });
    const replay = await call('/api/two-factor/login', { twoFactorId: again.body.twoFactorId, methodId: 'webauthn', credential });
    expect(replay.status).to.equal(400);
    expect(replay.body.error).to.equal('mfa.invalid_code');
  });
});

describe('a passkey as the first second factor, at the sign-in enrolment step', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('registers a passkey instead of an authenticator app and finishes the sign-in with it', async () => {
    const user = await createUser(server, 'enrol-passkey@example.com');
    const client = await registerClient(server, { mfaPolicy: 'required' });
    const passkey = new SoftAuthenticator({ origin: server.origin, rpId: new URL(server.origin).hostname });
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('enrol-passkey@example.com');
    expect(flow.page.html).to.include('Use a passkey or security key instead');
    const options = JSON.parse(decodeEntities(/data-webauthn="register" data-options="([^"]+)"/.exec(flow.page.html)![1]!)) as PublicKeyCredentialCreationOptionsJSON;
    flow.page = await flow.agent.submit(flow.page, '/enroll-passkey', { credential: JSON.stringify(passkey.register(options)), name: 'Laptop' });
    expect(flow.page.html).to.include('Save your recovery codes');
    flow.page = await flow.continue();
    const { claims } = await flow.finish();
    expect(claims.amr).to.include.members(['pwd', 'mfa']).and.to.satisfy((amr: string[]) => amr.includes('hwk') || amr.includes('swk'));
    expect(claims.acr).to.equal(ACR.mfa);
    const factors = await server.app.stores.factors.listByUser(user.id);
    expect(factors.map((f) => [f.type, f.status, f.name])).to.deep.equal([['webauthn', 'ACTIVE', 'Laptop']]);

    // Next time the passkey is asked for, and signs in.
    const next = new SignIn(server, client);
    await next.start();
    await next.password('enrol-passkey@example.com');
    const request = JSON.parse(decodeEntities(/data-webauthn="authenticate" data-options="([^"]+)"/.exec(next.page.html)![1]!)) as PublicKeyCredentialRequestOptionsJSON;
    next.page = await next.agent.submit(next.page, '/two-factor', { credential: JSON.stringify(passkey.authenticate(request)) });
    expect((await next.finish()).claims.acr).to.equal(ACR.phr);
  });

  it('refuses a registration made for other options, and leaves the enrolment as it was', async () => {
    await createUser(server, 'enrol-forged@example.com');
    const client = await registerClient(server, { mfaPolicy: 'required' });
    const passkey = new SoftAuthenticator({ origin: 'https://evil.example', rpId: 'evil.example' });
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password('enrol-forged@example.com');
    const options = JSON.parse(decodeEntities(/data-webauthn="register" data-options="([^"]+)"/.exec(flow.page.html)![1]!)) as PublicKeyCredentialCreationOptionsJSON;
    flow.page = await flow.agent.submit(flow.page, '/enroll-passkey', { credential: JSON.stringify(passkey.register(options)) });
    expect(flow.page.status).to.equal(400);
    expect(alertText(flow.page.html)).to.match(/could not be registered/);
    expect(flow.page.html).to.include('Set up two-step verification');
  });
});
