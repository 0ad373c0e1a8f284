/**
 * The factor-management API (Okta's Factors API shapes), end to end over
 * HTTP: enrol → QR → activate → verify → delete, settings, secrecy of the
 * seed, replay, ownership, reset and API-key scopes.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, totpNow } from '../helpers/oidc-flow.ts';
import { generateTotp, type TotpSettings } from '../../src/mfa/factors/totp.ts';

const TOTP = 'token:software:totp';
const DEFAULTS: TotpSettings = { algorithm: 'SHA1', digits: 6, period: 30 };
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const INVALID_PASSCODE = {
  errorCode: 'E0000068', errorSummary: 'Invalid Passcode/Answer', errorLink: 'E0000068',
  errorCauses: [{ errorSummary: 'Your passcode doesn\'t match our records. Please try again.' }],
};

describe('factor-management API', () => {
  let server: TestServer;
  let writeKey: string;
  let writeKeyId: string;
  let readKey: string;
  let userCounter = 0;

  interface Answer { status: number; type: string | null; body: any; bytes: Buffer }

  async function call(method: string, path: string, body?: unknown, apiKey: string | null = writeKey, scheme = 'Bearer'): Promise<Answer> {
    const res = await fetch(path.startsWith('http') ? path : `${server.origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(apiKey ? { authorization: `${scheme} ${apiKey}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type');
    const json = type?.startsWith('application/json') ? JSON.parse(bytes.toString('utf8')) : undefined;
    return { status: res.status, type, body: json, bytes };
  }

  const factorsOf = (userId: string) => `/api/v1/users/${userId}/factors`;

  /** The user's audit events, oldest first. */
  async function eventsOf(userId: string): Promise<Array<{ type: string; details: Record<string, unknown> }>> {
    const rows = await server.db('events').where({ user_id: userId }).orderBy('id');
    return rows.map((r: { type: string; details: string }) => ({ type: r.type, details: JSON.parse(r.details) }));
  }

  async function newUser() {
    userCounter += 1;
    return createUser(server, `factors-${userCounter}@example.com`);
  }

  async function enrol(userId: string, body: Record<string, unknown> = { factorType: TOTP, provider: 'OKTA' }) {
    const res = await call('POST', factorsOf(userId), body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  }

  /** The code the user's app shows now for an enrolment answer. */
  function codeFor(enrolled: any, settings: TotpSettings = DEFAULTS): Promise<string> {
    return generateTotp({ secret: enrolled._embedded.activation.sharedSecret, settings, nowMs: server.clock.now() });
  }

  async function activated(userId: string) {
    const enrolled = await enrol(userId);
    const res = await call('POST', `${factorsOf(userId)}/${enrolled.id}/lifecycle/activate`, { passCode: await codeFor(enrolled) });
    expect(res.status).to.equal(200);
    server.clock.advance(30_000);
    return enrolled;
  }

  before(async () => {
    server = await startServer();
    const write = await server.app.services.apiKeys.create({ name: 'admin', scopes: ['factors:read', 'factors:write'] });
    writeKey = write.key;
    writeKeyId = write.record.id;
    readKey = (await server.app.services.apiKeys.create({ name: 'reader', scopes: ['factors:read'] })).key;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('enrols, serves the QR code, activates, verifies once per code and deletes', async () => {
    const user = await newUser();
    const enrolled = await enrol(user.id, { factorType: TOTP, provider: 'GOOGLE' });
    const self = `${server.origin}${factorsOf(user.id)}/${enrolled.id}`;
    expect(enrolled).to.include({ factorType: TOTP, provider: 'GOOGLE', vendorName: 'GOOGLE', status: 'PENDING_ACTIVATION' });
    expect(enrolled.profile).to.deep.equal({ credentialId: user.email });
    expect(new Date(enrolled.created).toISOString()).to.equal(enrolled.created);
    expect(enrolled._links.activate.href).to.equal(`${self}/lifecycle/activate`);
    expect(enrolled._links.self.href).to.equal(self);
    expect(enrolled._links.user.href).to.equal(`${server.origin}/api/v1/users/${user.id}`);
    expect((await call('GET', enrolled._links.self.href)).body.id).to.equal(enrolled.id);
    const activation = enrolled._embedded.activation;
    expect(activation).to.include({ timeStep: 30, encoding: 'base32', algorithm: 'SHA1', digits: 6 });
    expect(activation.sharedSecret).to.match(/^[A-Z2-7]{32}$/);
    expect(activation.keyLength).to.equal(activation.sharedSecret.length);
    expect(activation.uri).to.equal(`otpauth://totp/Twofold:${encodeURIComponent(user.email)}?secret=${activation.sharedSecret}&issuer=Twofold&algorithm=SHA1&digits=6&period=30`);
    expect(activation._links.qrcode).to.deep.equal({ href: `${self}/qr`, type: 'image/png' });

    const qr = await call('GET', activation._links.qrcode.href);
    expect(qr.status).to.equal(200);
    expect(qr.type).to.equal('image/png');
    expect(qr.bytes.subarray(0, 8).equals(PNG_SIGNATURE)).to.equal(true);
    expect(qr.bytes.length).to.be.greaterThan(200);

    const code = await codeFor(enrolled);
    const active = await call('POST', `${self}/lifecycle/activate`, { passCode: code });
    expect(active.status).to.equal(200);
    expect(active.body).to.include({ id: enrolled.id, status: 'ACTIVE', provider: 'GOOGLE' });
    expect(active.body._links.verify.href).to.equal(`${self}/verify`);
    // The user's first factor comes with recovery codes, answered this once.
    expect(active.body._embedded.recoveryCodes).to.have.length(10);
    expect(active.body.lastVerified).to.be.a('string');
    expect((await call('GET', `${self}/qr`)).status, 'no QR once active').to.equal(404);

    // The activation code is spent: it must not verify afterwards.
    const reused = await call('POST', `${self}/verify`, { passCode: code });
    expect(reused.status).to.equal(403);
    expect(reused.body).to.deep.equal(INVALID_PASSCODE);

    server.clock.advance(30_000);
    const fresh = await codeFor(enrolled);
    const ok = await call('POST', `${self}/verify`, { passCode: fresh });
    expect(ok.status).to.equal(200);
    expect(ok.body).to.deep.equal({ factorResult: 'SUCCESS' });
    const replayed = await call('POST', `${self}/verify`, { passCode: fresh });
    expect(replayed.status).to.equal(403);
    expect(replayed.body).to.deep.equal(INVALID_PASSCODE);

    expect((await call('DELETE', self)).status).to.equal(204);
    expect((await call('GET', self)).status).to.equal(404);
    expect((await call('GET', factorsOf(user.id))).body).to.deep.equal([]);

    const events = await eventsOf(user.id);
    expect(events.map((e) => e.type)).to.deep.equal([
      'user.created', 'factor.enrolled', 'factor.activated', 'recovery_codes.generated', 'factor.verify_failed', 'factor.verified', 'factor.verify_failed', 'factor.deleted',
    ]);
    for (const e of events.filter((ev) => ev.type.startsWith('factor.'))) {
      expect(e.details).to.include({ factorId: enrolled.id, actor: `api_key:${writeKeyId}` });
      expect(JSON.stringify(e.details)).to.not.include(activation.sharedSecret);
    }
  });

  it('honours SHA256, 8 digits and 60 s (Okta spelling HMacSHA256) in the activation, the URI and the code check', async () => {
    const user = await newUser();
    const settings: TotpSettings = { algorithm: 'SHA256', digits: 8, period: 60 };
    const enrolled = await enrol(user.id, { factorType: TOTP, provider: 'OKTA', settings: { algorithm: 'HMacSHA256', digits: 8, period: 60 } });
    const activation = enrolled._embedded.activation;
    expect(activation).to.include({ timeStep: 60, algorithm: 'SHA256', digits: 8 });
    expect(activation.uri).to.match(/[?&]algorithm=SHA256&digits=8&period=60$/);

    const path = `${factorsOf(user.id)}/${enrolled.id}/lifecycle/activate`;
    // A code made with the default settings is not this factor's code.
    const defaultCode = await codeFor(enrolled, DEFAULTS);
    expect((await call('POST', path, { passCode: defaultCode })).status).to.equal(403);
    const ok = await call('POST', path, { passCode: await codeFor(enrolled, settings) });
    expect(ok.status).to.equal(200);
    expect(ok.body.status).to.equal('ACTIVE');
  });

  it('never answers the secret again: not by list or get, pending or active, and it is stored sealed', async () => {
    const user = await newUser();
    const enrolled = await enrol(user.id);
    const secret = enrolled._embedded.activation.sharedSecret;
    const self = `${factorsOf(user.id)}/${enrolled.id}`;
    const looks = async () => [await call('GET', factorsOf(user.id), undefined, readKey), await call('GET', self, undefined, readKey)];

    for (const res of await looks()) {
      expect(res.status).to.equal(200);
      expect(res.bytes.toString('utf8')).to.not.include(secret);
      expect(res.bytes.toString('utf8')).to.not.include('_embedded');
    }
    const [list] = await looks();
    expect(list!.body).to.have.length(1);
    expect(list!.body[0]).to.include({ id: enrolled.id, status: 'PENDING_ACTIVATION' });

    await call('POST', `${self}/lifecycle/activate`, { passCode: await codeFor(enrolled) });
    for (const res of await looks()) expect(res.bytes.toString('utf8')).to.not.include(secret);

    const row = await server.db('factors').where({ id: enrolled.id }).first();
    expect(row.secret_sealed).to.be.a('string').and.not.include(secret);
  });

  it('answers a wrong or malformed code with 403 and Okta\'s error body, and leaves the factor pending', async () => {
    const user = await newUser();
    const enrolled = await enrol(user.id);
    const self = `${factorsOf(user.id)}/${enrolled.id}`;
    const right = await codeFor(enrolled);
    const wrong = right === '000000' ? '111111' : '000000';
    for (const passCode of [wrong, 'abcdef', '12345', `${right}0`, '']) {
      const res = await call('POST', `${self}/lifecycle/activate`, { passCode });
      expect(res.status, passCode).to.equal(403);
      expect(res.body).to.deep.equal(INVALID_PASSCODE);
    }
    expect((await call('GET', self)).body.status).to.equal('PENDING_ACTIVATION');

    const other = await newUser();
    const active = await activated(other.id);
    const verifyWrong = await call('POST', `${factorsOf(other.id)}/${active.id}/verify`, { passCode: 'abcdef' });
    expect(verifyWrong.status).to.equal(403);
    expect(verifyWrong.body).to.deep.equal(INVALID_PASSCODE);
  });

  it('lets exactly one of two concurrent verifications of the same code succeed', async () => {
    const user = await newUser();
    const enrolled = await activated(user.id);
    const path = `${factorsOf(user.id)}/${enrolled.id}/verify`;
    const passCode = await codeFor(enrolled);
    const answers = await Promise.all([1, 2, 3].map(() => call('POST', path, { passCode })));
    expect(answers.map((a) => a.status).sort()).to.deep.equal([200, 403, 403]);
  });

  it('does not verify a pending factor, even with the right code, and does not spend that code', async () => {
    const user = await newUser();
    const enrolled = await enrol(user.id);
    const self = `${factorsOf(user.id)}/${enrolled.id}`;
    const code = await codeFor(enrolled);
    const res = await call('POST', `${self}/verify`, { passCode: code });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.equal('factor.not_active');
    expect((await call('POST', `${self}/lifecycle/activate`, { passCode: code })).status).to.equal(200);
  });

  it('refuses to activate an active factor (400 factor.not_pending)', async () => {
    const user = await newUser();
    const enrolled = await activated(user.id);
    const res = await call('POST', `${factorsOf(user.id)}/${enrolled.id}/lifecycle/activate`, { passCode: await codeFor(enrolled) });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.equal('factor.not_pending');
  });

  it('refuses a second authenticator while one is active (409), and replaces a pending one', async () => {
    const user = await newUser();
    const first = await enrol(user.id);
    const second = await enrol(user.id, { factorType: TOTP, provider: 'GOOGLE' });
    expect((await call('GET', `${factorsOf(user.id)}/${first.id}`)).status).to.equal(404);
    expect((await call('GET', factorsOf(user.id))).body.map((f: any) => f.id)).to.deep.equal([second.id]);

    const activate = await call('POST', `${factorsOf(user.id)}/${second.id}/lifecycle/activate`, { passCode: await codeFor(second) });
    expect(activate.status).to.equal(200);
    const again = await call('POST', factorsOf(user.id), { factorType: TOTP, provider: 'OKTA' });
    expect(again.status).to.equal(409);
    expect(again.body.error).to.equal('factor.already_enrolled');
  });

  it('answers 400 for an unsupported factor type or provider and for bad settings; 404 for an unknown user', async () => {
    const user = await newUser();
    const push = await call('POST', factorsOf(user.id), { factorType: 'push', provider: 'OKTA' });
    expect(push.status).to.equal(400);
    expect(push.body.error).to.equal('factor.type_unsupported');
    const smsWithoutNumber = await call('POST', factorsOf(user.id), { factorType: 'sms', provider: 'OKTA' });
    expect(smsWithoutNumber.status).to.equal(400);
    expect(smsWithoutNumber.body).to.deep.include({ error: 'request.invalid', details: { field: 'profile.phoneNumber' } });
    const rsa = await call('POST', factorsOf(user.id), { factorType: TOTP, provider: 'RSA' });
    expect(rsa.status).to.equal(400);
    expect(rsa.body.error).to.equal('factor.type_unsupported');
    const digits = await call('POST', factorsOf(user.id), { factorType: TOTP, provider: 'OKTA', settings: { digits: 7 } });
    expect(digits.status).to.equal(400);
    expect(digits.body.error).to.equal('request.invalid');
    const md5 = await call('POST', factorsOf(user.id), { factorType: TOTP, provider: 'OKTA', settings: { algorithm: 'HmacMD5' } });
    expect(md5.status).to.equal(400);
    expect((await call('GET', factorsOf(user.id))).body).to.deep.equal([]);

    const nobody = await call('POST', factorsOf('00000000-0000-0000-0000-000000000000'), { factorType: TOTP, provider: 'OKTA' });
    expect(nobody.status).to.equal(404);
    expect(nobody.body.error).to.equal('user.not_found');
    expect((await call('GET', factorsOf('00000000-0000-0000-0000-000000000000'))).status).to.equal(404);
  });

  it('answers 404 for another user\'s factor on every route and leaves it alone', async () => {
    const owner = await newUser();
    const intruder = await newUser();
    const pending = await enrol(owner.id);
    const code = await codeFor(pending);
    const theirs = `${factorsOf(intruder.id)}/${pending.id}`;
    const answers = [
      await call('GET', theirs),
      await call('GET', `${theirs}/qr`),
      await call('POST', `${theirs}/lifecycle/activate`, { passCode: code }),
      await call('POST', `${theirs}/verify`, { passCode: code }),
      await call('DELETE', theirs),
    ];
    for (const res of answers) {
      expect(res.status).to.equal(404);
      expect(res.body.error).to.equal('factor.not_found');
    }
    const still = await call('GET', `${factorsOf(owner.id)}/${pending.id}`);
    expect(still.body.status).to.equal('PENDING_ACTIVATION');
    expect((await call('POST', `${factorsOf(owner.id)}/${pending.id}/lifecycle/activate`, { passCode: code })).status).to.equal(200);
  });

  it('refuses to verify a suspended user\'s factor', async () => {
    const user = await newUser();
    const enrolled = await activated(user.id);
    await server.app.services.users.suspend(user.id);
    const res = await call('POST', `${factorsOf(user.id)}/${enrolled.id}/verify`, { passCode: await codeFor(enrolled) });
    expect(res.status).to.equal(403);
    expect(res.body.error).to.equal('user.suspended');
  });

  it('resets all of a user\'s factors (200 {}) and no one else\'s', async () => {
    const user = await newUser();
    const other = await newUser();
    await activated(user.id);
    await giveAuthenticator(server, other.id);
    expect(await server.app.stores.factors.hasActive(user.id)).to.equal(true);

    const res = await call('POST', `/api/v1/users/${user.id}/lifecycle/reset_factors`);
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({});
    expect((await call('GET', factorsOf(user.id))).body).to.deep.equal([]);
    expect(await server.app.stores.factors.hasActive(user.id)).to.equal(false);
    expect((await call('GET', factorsOf(other.id))).body).to.have.length(1);
    const [reset] = (await eventsOf(user.id)).filter((e) => e.type === 'factor.reset');
    expect(reset?.details).to.deep.equal({ count: 1, devices: 0, browsers: 0, actor: `api_key:${writeKeyId}` });

    const nobody = await call('POST', '/api/v1/users/00000000-0000-0000-0000-000000000000/lifecycle/reset_factors');
    expect(nobody.status).to.equal(404);
  });

  it('needs an API key with the right scope: factors:read reads, factors:write changes', async () => {
    const user = await newUser();
    const { factorId, secret } = await giveAuthenticator(server, user.id);
    const self = `${factorsOf(user.id)}/${factorId}`;

    const missing = await call('GET', factorsOf(user.id), undefined, null);
    expect(missing.status).to.equal(401);
    expect(missing.body.error).to.equal('auth.api_key_required');
    expect((await call('GET', factorsOf(user.id), undefined, 'tfk_nope')).status).to.equal(401);
    expect((await call('GET', factorsOf(user.id), undefined, readKey, 'SSWS')).status).to.equal(200);
    expect((await call('GET', self, undefined, readKey)).status).to.equal(200);

    server.clock.advance(30_000);
    const writes: Array<[string, string, unknown?]> = [
      ['POST', factorsOf(user.id), { factorType: TOTP, provider: 'OKTA' }],
      ['GET', `${self}/qr`],
      ['POST', `${self}/lifecycle/activate`, { passCode: await totpNow(server, secret) }],
      ['POST', `${self}/verify`, { passCode: await totpNow(server, secret) }],
      ['DELETE', self],
      ['POST', `/api/v1/users/${user.id}/lifecycle/reset_factors`],
    ];
    for (const [method, path, body] of writes) {
      const res = await call(method, path, body, readKey);
      expect(res.status, `${method} ${path}`).to.equal(403);
      expect(res.body.error).to.equal('auth.scope_missing');
      expect((await call(method, path, body, null)).status, `${method} ${path} without a key`).to.equal(401);
    }
    // Nothing above changed anything: the code is still good and the factor still there.
    expect((await call('POST', `${self}/verify`, { passCode: await totpNow(server, secret) })).status).to.equal(200);
  });
});
