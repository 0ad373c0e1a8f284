/**
 * The logs never carry a secret. A server logging everything at debug level
 * into memory serves a complete sign-in (password, TOTP, code exchange,
 * userinfo, refresh), a failed sign-in and API-key calls; then every secret
 * the test used or received is searched for in what was logged.
 */
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { alertText } from '../helpers/agent.ts';
import { captureLogs, leakedSecrets, type CapturedLogs } from '../helpers/log-capture.ts';

/** Values from a Cookie header, by name. */
function cookieValues(header: string): Record<string, string> {
  return Object.fromEntries(header.split('; ').filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }));
}

describe('secrets stay out of the logs', () => {
  let logs: CapturedLogs;
  let server: TestServer;
  let client: TestClient;
  /** Name → value of everything secret this test handled. */
  const secrets: Record<string, string> = {};

  before(async () => {
    logs = captureLogs('debug');
    server = await startServer({ logger: logs.logger });
    client = await registerClient(server, { mfaPolicy: 'optional' });
    secrets['client secret'] = client.secret!;
  });
  after(() => server.close());

  const json = (flow: SignIn, path: string, body: unknown) =>
    flow.agent.request('POST', path, JSON.stringify(body), { 'content-type': 'application/json', accept: 'application/json' });

  /** Records every cookie the agent would send to `path`. */
  function keepCookies(flow: SignIn, path: string, what: string): void {
    for (const [name, value] of Object.entries(cookieValues(flow.agent.cookieHeader(path)))) secrets[`${what} cookie ${name}`] = value;
  }

  it('serves a full sign-in with password, TOTP, code exchange, userinfo and refresh', async () => {
    // A password with characters JSON and URLs escape, so an encoded copy is caught too.
    const password = 'pässword "with" quotes & spaces/1';
    secrets.password = password;
    const user = await createUser(server, 'logged@example.com', password);
    const { secret: seed } = await giveAuthenticator(server, user.id);
    secrets['TOTP seed'] = seed;

    const flow = new SignIn(server, client);
    secrets['PKCE verifier'] = flow.verifier;
    const page = await flow.start({ scope: 'openid email profile offline_access', prompt: 'consent' });
    const uidPath = new URL(page.url).pathname;
    keepCookies(flow, uidPath, 'interaction');

    const pwd = await json(flow, `${uidPath}/login`, { loginId: 'logged@example.com', password });
    expect(pwd.status).to.equal(242);
    const { twoFactorId, methods } = JSON.parse(pwd.html) as { twoFactorId: string; methods: Array<{ id: string }> };
    secrets.twoFactorId = twoFactorId;

    const wrong = await json(flow, `${uidPath}/two-factor`, { twoFactorId, methodId: methods[0]!.id, code: '000000' });
    expect(wrong.status).to.equal(400);
    const code = await totpNow(server, seed);
    secrets['TOTP code'] = code;
    const ok = await json(flow, `${uidPath}/two-factor`, { twoFactorId, methodId: methods[0]!.id, code });
    expect(ok.status).to.equal(200);
    flow.page = await flow.agent.get((JSON.parse(ok.html) as { redirectTo: string }).redirectTo);
    if (flow.page.status === 200 && flow.page.html.includes('Allow access')) flow.page = await flow.agent.submit(flow.page, '/consent', {});
    keepCookies(flow, '/', 'session');
    expect(Object.keys(secrets)).to.include('session cookie _session');

    secrets['authorization code'] = new URL(flow.page.location!).searchParams.get('code')!;
    const { tokens, claims } = await flow.finish();
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    secrets['access token'] = tokens.access_token;
    secrets['refresh token'] = tokens.refresh_token!;
    secrets['ID token'] = tokens.id_token!;

    const info = await oidc.fetchUserInfo(client.config, tokens.access_token, user.id);
    expect(info.email).to.equal('logged@example.com');

    const refreshed = await oidc.refreshTokenGrant(client.config, tokens.refresh_token!);
    secrets['refreshed access token'] = refreshed.access_token;
    secrets['refreshed refresh token'] = refreshed.refresh_token!;
    secrets['refreshed ID token'] = refreshed.id_token!;
  });

  it('serves a failed sign-in: a wrong password on the hosted page', async () => {
    await createUser(server, 'failed@example.com', 'the right password 42');
    const wrongPassword = 'a wrong guess, not the password 7';
    secrets['wrong password'] = wrongPassword;
    const flow = new SignIn(server, client);
    await flow.start();
    keepCookies(flow, new URL(flow.page.url).pathname, 'failed interaction');
    const page = await flow.password('failed@example.com', wrongPassword);
    expect(page.status).to.equal(401);
    expect(alertText(page.html)).to.be.a('string');
  });

  it('serves management API calls with an API key', async () => {
    const { key } = await server.app.services.apiKeys.create({ name: 'logging', scopes: ['users:read', 'users:write'] });
    secrets['API key'] = key;
    // The prefix is the key's public name (shown in lists and audit events); the rest is the secret.
    secrets['API key secret part'] = key.slice(key.lastIndexOf('_') + 1);
    const apiPassword = 'set through the API: hunter2!';
    secrets['password set through the API'] = apiPassword;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.origin}/api/v1/users`, { method: 'POST', headers, body: JSON.stringify({ email: 'api@example.com', password: apiPassword }) });
    expect(created.status).to.equal(201);
    const listed = await fetch(`${server.origin}/api/v1/users?q=api%40example.com`, { headers });
    expect(listed.status).to.equal(200);
    const refused = await fetch(`${server.origin}/api/v1/users`, { headers: { authorization: `Bearer ${key}x` } });
    expect(refused.status).to.equal(401);
  });

  it('logged every request, and none of the secrets', () => {
    expect(server.errors).to.deep.equal([]);
    const requests = logs.lines().filter((l) => l.msg === 'request');
    expect(requests.length).to.be.greaterThan(15);
    const routes = requests.map((l) => `${String(l.status)} ${String(l.route)}`);
    expect(routes).to.include.members(['242 /interaction/:uid/login', '400 /interaction/:uid/two-factor', '401 /interaction/:uid/login', '201 /api/v1/users', '401 /api/v1/users']);

    expect(Object.keys(secrets)).to.have.length.greaterThan(20);
    for (const [name, value] of Object.entries(secrets)) expect(value, name).to.be.a('string').and.not.equal('');
    expect(leakedSecrets(logs.text(), secrets)).to.deep.equal([]);
  });

  it('would notice a secret logged in any of the ways it is searched for', () => {
    const probe = captureLogs('debug');
    const password = 'pässword "with" quotes & spaces/1';
    probe.logger.info({ user: { pass: password } }, 'as a JSON value');
    probe.logger.debug(`GET /login?pw=${encodeURIComponent('another secret value')}`);
    probe.logger.warn({ otp: '123456' }, 'redacted key, code 654321 in the message');
    probe.logger.info({ reqId: 'a1234567b' }, 'a code inside a longer token is not a hit');
    expect(leakedSecrets(probe.text(), { password, query: 'another secret value', code: '654321', redacted: '123456', inside: '234567' }))
      .to.deep.equal(['password', 'query', 'code']);
  });
});
