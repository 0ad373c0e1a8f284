/**
 * Sign-in through standard OIDC: openid-client as the relying party, the
 * hosted pages filled by a scripted user agent.
 */
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { alertText, decodeEntities } from '../helpers/agent.ts';
import { ACR } from '../../src/mfa/amr.ts';

describe('sign-in through OIDC', () => {
  let server: TestServer;
  let optional: TestClient;
  let required: TestClient;

  before(async () => {
    server = await startServer();
    optional = await registerClient(server, { mfaPolicy: 'optional' });
    required = await registerClient(server, { mfaPolicy: 'required' });
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('publishes discovery with PKCE, the acr values and the amr/acr claims', async () => {
    const meta = optional.config.serverMetadata();
    expect(meta.issuer).to.equal(server.origin);
    expect(meta.code_challenge_methods_supported).to.deep.equal(['S256']);
    expect(meta.acr_values_supported).to.deep.equal([ACR.password, ACR.mfa, ACR.phr]);
    expect(meta.claims_supported).to.include.members(['amr', 'acr', 'sub', 'email']);
    expect(meta.response_types_supported).to.deep.equal(['code']);
    expect(meta.end_session_endpoint).to.be.a('string');
    expect(meta.revocation_endpoint).to.be.a('string');
    expect(meta.introspection_endpoint).to.be.a('string');
  });

  it('signs in a user without a factor with the password alone: amr ["pwd"]', async () => {
    const user = await createUser(server, 'pwd-only@example.com');
    const flow = new SignIn(server, optional);
    const first = await flow.start();
    expect(first.status).to.equal(200);
    expect(first.html).to.include('autocomplete="username"').and.include('autocomplete="current-password"');
    await flow.password('PWD-only@Example.com ');
    const { claims } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd']);
    expect(claims.acr).to.equal(ACR.password);
  });

  it('asks a user with an authenticator for a code and reports ["pwd","otp","mfa"]', async () => {
    const user = await createUser(server, 'totp@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, optional);
    await flow.start();
    const codePage = await flow.password('totp@example.com');
    expect(codePage.status).to.equal(200);
    expect(codePage.html).to.include('autocomplete="one-time-code"');
    await flow.code(await totpNow(server, secret));
    const { claims, tokens } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(claims.acr).to.equal(ACR.mfa);

    const info = await oidc.fetchUserInfo(optional.config, tokens.access_token, user.id);
    expect(info.email).to.equal('totp@example.com');
  });

  it('forces enrolment when the client requires a second factor, then asks for a code next time', async () => {
    const user = await createUser(server, 'enrol@example.com');
    const flow = new SignIn(server, required);
    await flow.start();
    const enrol = await flow.password('enrol@example.com');
    expect(enrol.html).to.include('Set up two-step verification');
    expect(enrol.html).to.match(/<img class="qr" src="data:image\/png;base64,/);
    const secret = decodeEntities(/<code class="secret">([^<]+)<\/code>/.exec(enrol.html)![1]!).replace(/ /g, '');
    expect(secret).to.match(/^[A-Z2-7]{32}$/);
    await flow.code(await totpNow(server, secret));
    const { claims } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);

    const factors = await server.app.stores.factors.listByUser(user.id);
    expect(factors.map((f) => f.status)).to.deep.equal(['ACTIVE']);

    server.clock.advance(30_000);
    const again = new SignIn(server, required);
    await again.start();
    const codePage = await again.password('enrol@example.com');
    expect(codePage.html).to.include('Enter the 6-digit code').and.not.include('Set up two-step');
    await again.code(await totpNow(server, secret));
    expect((await again.finish()).claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('refuses a wrong code with the same clear message and lets the right one through', async () => {
    const user = await createUser(server, 'wrong-code@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('wrong-code@example.com');
    const right = await totpNow(server, secret);
    const wrong = right === '000000' ? '111111' : '000000';
    const messages = [];
    for (const bad of [wrong, '12345', 'abcdef', '１２３４５６']) {
      const page = await flow.code(bad);
      expect(page.status).to.equal(400);
      messages.push(alertText(page.html));
    }
    expect(new Set(messages).size).to.equal(1);
    expect(messages[0]).to.equal('That code is not correct. Check your authenticator app and try again.');
    await flow.code(right);
    expect((await flow.finish()).claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('accepts "123 456" typed with a space', async () => {
    const user = await createUser(server, 'spaced@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('spaced@example.com');
    const code = await totpNow(server, secret);
    await flow.code(`${code.slice(0, 3)} ${code.slice(3)}`);
    expect(flow.returned).to.equal(true);
  });

  it('refuses a replayed code, also in a new sign-in, and accepts the next time step', async () => {
    const user = await createUser(server, 'replay@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const code = await totpNow(server, secret);

    const first = new SignIn(server, optional);
    await first.start();
    await first.password('replay@example.com');
    await first.code(code);
    expect(first.returned).to.equal(true);

    const second = new SignIn(server, optional);
    await second.start();
    await second.password('replay@example.com');
    const replay = await second.code(code);
    expect(replay.status).to.equal(400);
    expect(alertText(replay.html)).to.equal('That code is not correct. Check your authenticator app and try again.');

    server.clock.advance(30_000);
    await second.code(await totpNow(server, secret));
    expect(second.returned).to.equal(true);
  });

  it('does not ask for a factor that is still pending activation', async () => {
    const user = await createUser(server, 'pending@example.com');
    await server.app.services.factorService.enrollTotp({ userId: user.id, accountName: 'pending@example.com' });
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('pending@example.com');
    expect((await flow.finish()).claims.amr).to.deep.equal(['pwd']);
  });

  it('answers a wrong password and an unknown user with the same page and status', async () => {
    await createUser(server, 'known@example.com');
    const pages = [];
    for (const [email, password] of [['known@example.com', 'not the password'], ['nobody@example.com', 'not the password']] as const) {
      const flow = new SignIn(server, optional);
      await flow.start();
      const page = await flow.password(email, password);
      pages.push({ status: page.status, alert: alertText(page.html) });
    }
    expect(pages[0]).to.deep.equal({ status: 401, alert: 'The email address or password is not correct.' });
    expect(pages[1]).to.deep.equal(pages[0]);
  });

  it('shows an error page with a way back for an unknown interaction, never a stack trace', async () => {
    const flow = new SignIn(server, optional);
    const page = await flow.agent.get('/interaction/does-not-exist');
    expect(page.status).to.equal(400);
    expect(alertText(page.html)).to.match(/expired/);
    expect(page.html).to.include('Start again').and.not.match(/at .*\.ts:\d+/);
  });

  it('locks the second factor after too many wrong codes, refuses even the right one, and returns access_denied to the app', async () => {
    const user = await createUser(server, 'brute@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const right = await totpNow(server, secret);
    const wrong = right === '999999' ? '888888' : '999999';
    const flow = new SignIn(server, optional);
    await flow.start();
    await flow.password('brute@example.com');
    let page = flow.page;
    for (let i = 0; i < server.config.throttle.secondFactor.maxFailures; i += 1) page = await flow.code(wrong);
    expect(page.status).to.equal(429);
    expect(alertText(page.html)).to.match(/locked for this account\. Try again in 15 minutes/);
    expect(page.html).not.to.include('name="code"');
    // A new sign-in with the right password and the right code: still locked.
    const again = new SignIn(server, optional);
    await again.start();
    await again.password('brute@example.com');
    expect(again.page.status).to.equal(429);
    expect(alertText(again.page.html)).to.match(/locked/);
    const after = await flow.agent.submit(page, '/abort', {});
    expect(after.location).to.match(/^http:\/\/127\.0\.0\.1:9\/callback\?error=access_denied/);
  });

  it('rejects a form post without its CSRF token', async () => {
    const flow = new SignIn(server, optional);
    const page = await flow.start();
    const action = /action="([^"]+\/login)"/.exec(page.html)![1]!;
    const res = await flow.agent.request('POST', action, { email: 'known@example.com', password: 'x' });
    expect(res.status).to.equal(403);
    expect(alertText(res.html)).to.match(/form has expired/);
  });

  it('counts sign-ins, second-factor outcomes and password hashing in /metrics', async () => {
    const text = await (await fetch(`${server.origin}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    expect(value(/twofold_signins_total\{[^}]*outcome="success"[^}]*\} (\d+)/)).to.be.greaterThan(0);
    expect(value(/twofold_signins_total\{[^}]*outcome="invalid_credentials"[^}]*\} (\d+)/)).to.be.greaterThan(0);
    expect(value(/twofold_second_factor_total\{[^}]*outcome="invalid"[^}]*\} (\d+)/)).to.be.greaterThan(0);
    expect(value(/twofold_second_factor_total\{[^}]*outcome="success"[^}]*\} (\d+)/)).to.be.greaterThan(0);
    expect(value(/twofold_password_hash_seconds_count(?:\{[^}]*\})? (\d+)/)).to.be.greaterThan(0);
  });
});
