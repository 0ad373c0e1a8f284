/**
 * The verification API (FusionAuth's shapes) and the JSON interaction API
 * (242 with a twoFactorId), end to end over HTTP.
 */
import { expect } from 'chai';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, type TestClient } from '../helpers/oidc-flow.ts';
import { ACR } from '../../src/mfa/amr.ts';

describe('verification API', () => {
  let server: TestServer;
  let app: TestClient;
  let key: string;
  let otherKey: string;

  const call = async (path: string, body: unknown, apiKey: string | null = key, scheme = 'Bearer') => {
    const res = await fetch(`${server.origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `${scheme} ${apiKey}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };

  async function verifyToken(token: string) {
    const jwks = createRemoteJWKSet(new URL(app.config.serverMetadata().jwks_uri!));
    return (await jwtVerify(token, jwks, { issuer: server.origin, audience: app.clientId })).payload;
  }

  before(async () => {
    server = await startServer();
    app = await registerClient(server, { mfaPolicy: 'optional' });
    key = (await server.app.services.apiKeys.create({ name: 'backend', scopes: ['login'] })).key;
    otherKey = (await server.app.services.apiKeys.create({ name: 'other', scopes: ['login'] })).key;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('signs in a password-only user: 200 with the user and a JWT verifiable from jwks_uri', async () => {
    const user = await createUser(server, 'api-pwd@example.com');
    const res = await call('/api/login', { loginId: 'api-pwd@example.com', password: 'correct horse battery staple', applicationId: app.clientId });
    expect(res.status).to.equal(200);
    expect(res.body.user).to.include({ id: user.id, email: 'api-pwd@example.com' });
    expect(res.body.user).to.not.have.property('passwordHash');
    const claims = await verifyToken(res.body.token);
    expect(claims).to.include({ sub: user.id, acr: ACR.password });
    expect(claims.amr).to.deep.equal(['pwd']);
    expect(claims.exp! - claims.iat!).to.be.at.most(300);
    expect(claims.auth_time).to.be.a('number');
  });

  it('answers 242 with a twoFactorId, then 200 with a token after the code', async () => {
    const user = await createUser(server, 'api-totp@example.com');
    const { secret, factorId } = await giveAuthenticator(server, user.id);
    const res = await call('/api/login', { loginId: 'api-totp@example.com', password: 'correct horse battery staple', applicationId: app.clientId });
    expect(res.status).to.equal(242);
    expect(res.body.methods).to.deep.equal([{ id: factorId, method: 'authenticator', authenticator: { algorithm: 'HmacSHA1', codeLength: 6, timeStep: 30 } }]);

    const wrong = await call('/api/two-factor/login', { twoFactorId: res.body.twoFactorId, code: '00000' });
    expect(wrong.status).to.equal(400);
    expect(wrong.body.error).to.equal('mfa.invalid_code');

    const ok = await call('/api/two-factor/login', { twoFactorId: res.body.twoFactorId, code: await totpNow(server, secret) });
    expect(ok.status).to.equal(200);
    const claims = await verifyToken(ok.body.token);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(claims.acr).to.equal(ACR.mfa);

    const again = await call('/api/two-factor/login', { twoFactorId: res.body.twoFactorId, code: await totpNow(server, secret) });
    expect(again.status).to.equal(404);
  });

  it('answers an unknown user and a wrong password alike with 404', async () => {
    await createUser(server, 'api-known@example.com');
    const a = await call('/api/login', { loginId: 'api-known@example.com', password: 'wrong password', applicationId: app.clientId });
    const b = await call('/api/login', { loginId: 'api-nobody@example.com', password: 'wrong password', applicationId: app.clientId });
    expect(a).to.deep.equal(b);
    expect(a.status).to.equal(404);
  });

  it('starts a check for a known user and echoes the state; the token says only otp', async () => {
    const user = await createUser(server, 'api-start@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    server.clock.advance(30_000);
    const start = await call('/api/two-factor/start', { loginId: 'api-start@example.com', applicationId: app.clientId, state: { cart: 42 } });
    expect(start.status).to.equal(200);
    expect(start.body.twoFactorId).to.be.a('string');
    const ok = await call('/api/two-factor/login', { twoFactorId: start.body.twoFactorId, code: await totpNow(server, secret) });
    expect(ok.status).to.equal(200);
    expect(ok.body.state).to.deep.equal({ cart: 42 });
    expect((await verifyToken(ok.body.token)).amr).to.deep.equal(['otp']);
  });

  it('refuses a twoFactorId presented with another API key, as if unknown', async () => {
    const user = await createUser(server, 'api-bound@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    server.clock.advance(30_000);
    const start = await call('/api/two-factor/start', { userId: user.id, applicationId: app.clientId });
    const stolen = await call('/api/two-factor/login', { twoFactorId: start.body.twoFactorId, code: await totpNow(server, secret) }, otherKey);
    expect(stolen.status).to.equal(404);
    const mine = await call('/api/two-factor/login', { twoFactorId: start.body.twoFactorId, code: await totpNow(server, secret) });
    expect(mine.status).to.equal(200);
  });

  it('needs an API key with the login scope; accepts SSWS; refuses revoked keys', async () => {
    const body = { loginId: 'x@example.com', password: 'x', applicationId: app.clientId };
    expect((await call('/api/login', body, null)).body.error).to.equal('auth.api_key_required');
    expect((await call('/api/login', body, 'tfk_nope')).status).to.equal(401);
    const readOnly = (await server.app.services.apiKeys.create({ name: 'ro', scopes: ['users:read'] })).key;
    const scoped = await call('/api/login', body, readOnly);
    expect(scoped.status).to.equal(403);
    expect(scoped.body.error).to.equal('auth.scope_missing');
    expect((await call('/api/login', body, key, 'SSWS')).status).to.equal(404);
    const { key: doomed, record } = await server.app.services.apiKeys.create({ name: 'doomed', scopes: ['login'] });
    await server.app.services.apiKeys.revoke(record.id);
    expect((await call('/api/login', body, doomed)).body.error).to.equal('auth.api_key_invalid');
  });

  it('rejects bad input with 400 and names the field', async () => {
    const res = await call('/api/two-factor/start', { applicationId: app.clientId });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.equal('request.invalid');
    expect(res.body.message).to.match(/exactly one of userId and loginId/);
    const unknownApp = await call('/api/login', { loginId: 'a@example.com', password: 'x', applicationId: 'nope' });
    expect(unknownApp.status).to.equal(400);
    expect(unknownApp.body.details).to.deep.include({ field: 'applicationId' });
  });
});

describe('JSON interaction API', () => {
  let server: TestServer;
  let client: TestClient;
  before(async () => {
    server = await startServer();
    client = await registerClient(server, { mfaPolicy: 'optional' });
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  const json = (flow: SignIn, path: string, body: unknown) => flow.agent.request('POST', path, JSON.stringify(body), { 'content-type': 'application/json', accept: 'application/json' });

  it('answers the password step with 242 and the second factor with {redirectTo}', async () => {
    const user = await createUser(server, 'json@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const flow = new SignIn(server, client);
    const page = await flow.start();
    const uidPath = new URL(page.url).pathname;

    const pwd = await json(flow, `${uidPath}/login`, { loginId: 'json@example.com', password: 'correct horse battery staple' });
    expect(pwd.status).to.equal(242);
    const { twoFactorId, methods } = JSON.parse(pwd.html);
    expect(methods[0].method).to.equal('authenticator');

    const wrong = await json(flow, `${uidPath}/two-factor`, { twoFactorId, methodId: methods[0].id, code: '000000' });
    expect(wrong.status).to.equal(400);
    expect(JSON.parse(wrong.html).error).to.equal('mfa.invalid_code');
    const unknown = await json(flow, `${uidPath}/two-factor`, { twoFactorId: 'forged', code: '000000' });
    expect(unknown.status).to.equal(404);

    const ok = await json(flow, `${uidPath}/two-factor`, { twoFactorId, methodId: methods[0].id, code: await totpNow(server, secret) });
    expect(ok.status).to.equal(200);
    const { redirectTo } = JSON.parse(ok.html);
    flow.page = await flow.agent.get(redirectTo);
    expect((await flow.finish()).claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
  });

  it('answers 200 {redirectTo} at once for a user without a factor, and 401 JSON for a wrong password', async () => {
    await createUser(server, 'json-pwd@example.com');
    const flow = new SignIn(server, client);
    const uidPath = new URL((await flow.start()).url).pathname;
    const bad = await json(flow, `${uidPath}/login`, { email: 'json-pwd@example.com', password: 'nope' });
    expect(bad.status).to.equal(401);
    expect(JSON.parse(bad.html)).to.deep.equal({ error: 'auth.invalid_credentials', message: 'The email address or password is not correct.' });
    const ok = await json(flow, `${uidPath}/login`, { email: 'json-pwd@example.com', password: 'correct horse battery staple' });
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.html).redirectTo).to.match(/\/auth\//);
  });

  it('refuses a twoFactorId from another interaction', async () => {
    const user = await createUser(server, 'json-cross@example.com');
    const { secret } = await giveAuthenticator(server, user.id);
    const a = new SignIn(server, client);
    const aPath = new URL((await a.start()).url).pathname;
    const { twoFactorId } = JSON.parse((await json(a, `${aPath}/login`, { email: 'json-cross@example.com', password: 'correct horse battery staple' })).html);
    const b = new SignIn(server, client, a.agent);
    const bPath = new URL((await b.start()).url).pathname;
    const cross = await json(b, `${bPath}/two-factor`, { twoFactorId, code: await totpNow(server, secret) });
    expect(cross.status).to.equal(404);
  });
});
