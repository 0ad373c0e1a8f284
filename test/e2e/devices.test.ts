/**
 * Linked devices: linking codes (single use, 10 minutes, proof of possession
 * of the key), signed device requests (every way to forge or replay one gets
 * the same 401), the pending-request list and stream, the reference
 * authenticator end to end, and the devices section of the security page.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Koa from 'koa';
import { expect } from 'chai';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { uuid } from '../../src/lib/random.ts';
import { createUsersStore } from '../../src/store/users.ts';
import { createDevices, LINK_CODE_TTL_MS, type Devices } from '../../src/push/devices.ts';
import { deviceRouter } from '../../src/http/device/routes.ts';
import { generateDeviceKey, DeviceApiError } from '../../src/authenticator/client.ts';
import { bodyDigest, HEADERS, jwkThumbprint, signingString, verifyParts } from '../../src/push/device-auth.ts';
import { listen, memoryPushRequests, send, TestDevice, linkingCodeOf } from '../helpers/device.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, registerClient, SignIn, totpNow } from '../helpers/oidc-flow.ts';
import { Agent, findForm } from '../helpers/agent.ts';

const UNAUTHORIZED = { error: 'device.unauthorized', message: 'This device is not linked, or its request could not be verified.' };

describe('device API', () => {
  let db: Db;
  let clock: ReturnType<typeof manualClock>;
  let devices: Devices;
  let push: ReturnType<typeof memoryPushRequests>;
  let web: Awaited<ReturnType<typeof listen>>;
  const events: Array<{ type: string; userId: string }> = [];
  const errors: unknown[] = [];
  let userCount = 0;

  before(async () => {
    db = createDb('sqlite::memory:');
    await migrateLatest(db);
    clock = manualClock(Date.now());
    push = memoryPushRequests(clock);
    web = await listen((origin) => {
      devices = createDevices({
        db, clock, issuer: origin, users: createUsersStore(db, clock),
        events: { async record(e) { events.push(e); } },
      });
      const app = new Koa();
      const router = deviceRouter({ devices, requests: push.requests, heartbeatMs: 50, log: (msg, err) => errors.push({ msg, err }) });
      app.use(router.routes());
      return app;
    });
  });
  after(async () => {
    await web.close();
    await db.destroy();
  });
  afterEach(() => expect(errors).to.deep.equal([]));

  async function newUser() {
    userCount += 1;
    return createUsersStore(db, clock).insert({ email: `device-${userCount}@example.com` });
  }

  async function linked() {
    const user = await newUser();
    const { code } = await devices.createLinkingCode(user.id);
    const device = new TestDevice(web.origin, clock);
    await device.link(code, 'Test phone');
    return { user, device };
  }

  describe('linking', () => {
    it('links with a valid code once, and keeps only the public key', async () => {
      const user = await newUser();
      const { code, uri, expiresAt } = await devices.createLinkingCode(user.id);
      expect(code).to.match(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
      expect(uri).to.equal(`twofold://link?issuer=${encodeURIComponent(web.origin)}&code=${code}`);
      expect(expiresAt).to.equal(clock.now() + LINK_CODE_TTL_MS);

      const device = new TestDevice(web.origin, clock);
      const answer = await device.link(code.toLowerCase().replace(/-/g, ' '), 'Pixel');
      expect(answer).to.deep.include({ name: 'Pixel', account: user.email, issuer: web.origin });
      expect(await devices.list(user.id)).to.have.length(1);
      const [row] = await db('devices').where({ id: answer.deviceId });
      expect(Object.keys(JSON.parse(row.public_key_jwk)).sort()).to.deep.equal(['crv', 'kty', 'x', 'y']);
      expect(row.public_key_jwk).to.not.include('"d"');
      expect(events.map((e) => e.type)).to.include.members(['device.link_code_created', 'device.linked']);

      const thief = new TestDevice(web.origin, clock);
      const again = await thief.raw('POST', '/link', { code, name: 'Thief', publicKeyJwk: thief.key.publicJwk });
      expect(again.status).to.equal(400);
      expect(again.json).to.deep.include({ error: 'device.link_code_invalid' });
      expect(await devices.list(user.id)).to.have.length(1);
    });

    it('refuses an expired code, and an earlier code once a new one is made', async () => {
      const user = await newUser();
      const { code } = await devices.createLinkingCode(user.id);
      clock.advance(LINK_CODE_TTL_MS + 1_000);
      await expectLinkRefused(code, 400, 'device.link_code_invalid');
      const first = await devices.createLinkingCode(user.id);
      const second = await devices.createLinkingCode(user.id);
      await expectLinkRefused(first.code, 400, 'device.link_code_invalid');
      await new TestDevice(web.origin, clock).link(second.code, 'Phone');
      expect(await devices.list(user.id)).to.have.length(1);
    });

    it('refuses a key with a private part, or a link not signed by the key it brings, and leaves the code usable', async () => {
      const user = await newUser();
      const { code } = await devices.createLinkingCode(user.id);
      const device = new TestDevice(web.origin, clock);
      const withPrivate = device.key.privateKey.export({ format: 'jwk' });
      const leaked = await device.raw('POST', '/link', { code, name: 'Phone', publicKeyJwk: withPrivate });
      expect(leaked.status).to.equal(400);
      expect(leaked.json).to.deep.include({ error: 'request.invalid' });
      // Signed by one key, asking to link another: no proof of possession.
      const other = await device.raw('POST', '/link', { code, name: 'Phone', publicKeyJwk: generateDeviceKey().publicJwk });
      expect(other.status).to.equal(401);
      expect(other.json).to.deep.equal(UNAUTHORIZED);
      const notOnCurve = await device.raw('POST', '/link', { code, name: 'Phone', publicKeyJwk: { ...device.key.publicJwk, y: device.key.publicJwk.x } });
      expect(notOnCurve.status).to.equal(400);
      await device.link(code, 'Phone');
      expect(await devices.list(user.id)).to.have.length(1);
    });

    it('refuses to link the same key twice', async () => {
      const { user, device } = await linked();
      const { code } = await devices.createLinkingCode(user.id);
      const twice = await device.raw('POST', '/link', { code, name: 'Again', publicKeyJwk: device.key.publicJwk });
      expect(twice.status).to.equal(409);
      expect(twice.json).to.deep.include({ error: 'device.key_in_use' });
    });

    async function expectLinkRefused(code: string, status: number, error: string) {
      const device = new TestDevice(web.origin, clock);
      const signed = await device.raw('POST', '/link', { code, name: 'Phone', publicKeyJwk: device.key.publicJwk });
      expect(signed.status).to.equal(status);
      expect(signed.json).to.deep.include({ error });
    }
  });

  describe('signed requests', () => {
    it('answers a well-signed request and records that the device was seen', async () => {
      const { device } = await linked();
      clock.advance(5_000);
      expect(await device.me()).to.deep.include({ deviceId: device.deviceId, name: 'Test phone' });
      const [row] = await db('devices').where({ id: device.deviceId });
      expect(Number(row.last_seen_at)).to.equal(clock.now());
    });

    it('gives the same 401 to a bad signature, a tampered body, an old or future timestamp, a reused nonce, an unknown and an unlinked device', async () => {
      const { user, device } = await linked();
      const refused = async (res: Promise<{ status: number; json: unknown }>) => {
        const r = await res;
        expect(r.status).to.equal(401);
        expect(r.json).to.deep.equal(UNAUTHORIZED);
      };
      // Bad signature: signed by another key.
      const impostor = new TestDevice(web.origin, clock, device.deviceId);
      await refused(impostor.raw('GET', '/requests'));
      // A signature moved to another request (the path is signed).
      const forMe = device.prepare('GET', '/me');
      await refused(send(`${web.origin}/device/v1/requests`, forMe.init));
      // The body is signed: the same headers with another body.
      push.add(user.id, { number: '17' });
      const ref = (await device.requests())[0]!.ref;
      const deny = device.prepare('POST', `/requests/${ref}/answer`, { decision: 'deny' });
      await refused(send(deny.url, { ...deny.init, body: JSON.stringify({ decision: 'approve', number: '17' }) }));
      // Timestamps more than 60 s away, either way.
      await refused(device.raw('GET', '/requests', undefined, { nowMs: clock.now() - 61_000 }));
      await refused(device.raw('GET', '/requests', undefined, { nowMs: clock.now() + 61_000 }));
      expect((await device.raw('GET', '/requests', undefined, { nowMs: clock.now() - 50_000 })).status).to.equal(200);
      // A replay: the same request, byte for byte.
      const once = device.prepare('GET', '/requests');
      expect((await send(once.url, once.init)).status).to.equal(200);
      await refused(send(once.url, once.init));
      // Headers missing or malformed.
      await refused(device.raw('GET', '/requests', undefined, { headers: { [HEADERS.nonce]: 'short' } }));
      await refused(send(`${web.origin}/device/v1/requests`, {}));
      // An unknown device.
      await refused(new TestDevice(web.origin, clock, uuid()).raw('GET', '/requests'));
      // An unlinked device.
      await devices.unlink(user.id, device.deviceId!);
      await refused(device.raw('GET', '/requests'));
      expect(push.held.get(ref)!.state).to.equal('pending');
    });

    it('lets a device unlink itself', async () => {
      const { user, device } = await linked();
      await device.unlink();
      expect(await devices.list(user.id)).to.deep.equal([]);
      await expectUnauthorized(device.me());
    });
  });

  describe('requests', () => {
    it('lists pending requests and takes a signed answer bound to one', async () => {
      const { user, device } = await linked();
      const other = await linked();
      const view = push.add(user.id, { number: '73', details: { amount: '€ 20.00' } });
      push.add(other.user.id);
      expect(await device.requests()).to.deep.equal([view]);
      const noNumber = await device.raw('POST', `/requests/${view.ref}/answer`, { decision: 'approve' });
      expect(noNumber.status).to.equal(400);
      // Another user's device cannot answer it.
      await expectError(other.device.answer(view.ref, { decision: 'approve', number: '73' }), 404);
      expect(await device.answer(view.ref, { decision: 'approve', number: '73', localCheck: null })).to.equal('approved');
      expect(push.held.get(view.ref)).to.deep.include({ state: 'approved', answeredBy: device.deviceId });
      expect(await device.requests()).to.deep.equal([]);
      const bad = await device.raw('POST', '/requests/x/answer', { decision: 'maybe' });
      expect(bad.status).to.equal(400);
      const guessed = push.add(user.id, { number: '73' });
      expect(await device.answer(guessed.ref, { decision: 'approve', number: '37' })).to.equal('denied');
      await expectError(device.answer(guessed.ref, { decision: 'approve', number: '73' }), 404);
    });

    it('streams the pending list on connect and on every change, and lets go when the device leaves', async () => {
      const { user, device } = await linked();
      const first = push.add(user.id);
      const abort = new AbortController();
      const stream = device.stream(abort.signal);
      expect((await stream.next()).value).to.deep.equal([first]);
      expect(push.subscribers(user.id)).to.equal(1);
      clock.advance(1_000);
      const second = push.add(user.id);
      expect((await stream.next()).value).to.deep.equal([second, first]);
      abort.abort();
      await stream.return(undefined);
      await waitFor(() => push.subscribers(user.id) === 0);
    });

    it('ends the stream once the device is unlinked', async () => {
      const { user, device } = await linked();
      const stream = device.stream();
      expect((await stream.next()).value).to.deep.equal([]);
      await devices.unlink(user.id, device.deviceId!);
      expect((await stream.next()).done).to.equal(true);
      await waitFor(() => push.subscribers(user.id) === 0);
    });
  });

  it('verifies the worked example of docs/device-protocol.md', async () => {
    const doc = await readFile(path.join(process.cwd(), 'docs', 'device-protocol.md'), 'utf8');
    const jwk = { kty: 'EC', crv: 'P-256', x: 'jZJGhadA3YkmoVEeeZr1p7K4LowymL93rLzjcqENeJY', y: 'fFzTnx_pfUqoxA8fIXBLnwah8CL1ICMzjQyExFGARR0' } as const;
    const parts = {
      method: 'POST', pathWithQuery: '/device/v1/requests/Jx3m9QeR2b7KpWcA/answer', timestamp: '1795430000', nonce: 'q3T8v0pXcN1yZ7rL2mKw9A',
      body: '{"decision":"approve","number":"47","localCheck":"biometric"}',
    };
    const signature = 'JHUfGQAbqmAqhrVRbwJOs2eQWFJuwYCHjv4S6_m8XugdQtpFpra2jKmlDYkwZ6m2p6AlLb4pCqWfIXpPX3HHog';
    expect(verifyParts(jwk, parts, signature)).to.equal(true);
    expect(verifyParts(jwk, { ...parts, body: parts.body.replace('approve', 'deny') }, signature)).to.equal(false);
    for (const value of [jwkThumbprint(jwk), bodyDigest(parts.body), bodyDigest(''), signingString(parts).replace(/\n/g, '\\n'), signature]) {
      expect(doc).to.include(value);
    }
  });

  describe('reference authenticator', () => {
    const exec = promisify(execFile);
    const cli = (stateFile: string, ...args: string[]) =>
      exec('npx', ['tsx', 'src/authenticator/cli.ts', '--state', stateFile, ...args], { cwd: process.cwd(), timeout: 30_000 });

    it('links with a code, lists and approves requests, and keeps its key in a private file', async () => {
      clock.set(Date.now()); // the CLI signs with the real time
      const user = await newUser();
      const { code } = await devices.createLinkingCode(user.id);
      const stateFile = path.join(await mkdtemp(path.join(tmpdir(), 'twofold-auth-')), 'state.json');
      const link = await cli(stateFile, 'link', '--issuer', web.origin, '--code', code, '--name', 'CLI');
      expect(link.stdout).to.include(`linked ${user.email}`);
      expect((await stat(stateFile)).mode & 0o777).to.equal(0o600);
      const state = JSON.parse(await readFile(stateFile, 'utf8'));
      expect(state.accounts[0].privateKeyJwk.d).to.be.a('string');
      const [row] = await db('devices').where({ id: state.accounts[0].deviceId });
      expect(JSON.parse(row.public_key_jwk)).to.deep.equal({ kty: 'EC', crv: 'P-256', x: state.accounts[0].privateKeyJwk.x, y: state.accounts[0].privateKeyJwk.y });

      const view = push.add(user.id, { number: '58', kind: 'pin', details: { payee: 'ACME' } });
      clock.set(Date.now());
      const listed = await cli(stateFile, 'requests');
      expect(listed.stdout).to.include(view.ref).and.include('Sign in to Test app').and.include('payee: ACME').and.include('check: pin');
      const noPin = await cli(stateFile, 'approve', view.ref, '--number', '58').catch((e: { code: number; stderr: string }) => e);
      expect(noPin).to.include({ code: 2 });
      expect((noPin as { stderr: string }).stderr).to.include('--pin');
      clock.set(Date.now());
      const approved = await cli(stateFile, 'approve', '--number', '58', '--pin');
      expect(approved.stdout.trim()).to.equal(`${view.ref}: approved`);
      expect(push.held.get(view.ref)!.answer).to.deep.equal({ decision: 'approve', number: '58', localCheck: 'pin' });
    });
  });

  async function expectUnauthorized(p: Promise<unknown>) {
    await expectError(p, 401, 'device.unauthorized');
  }
});

async function expectError(p: Promise<unknown>, status: number, code?: string) {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).to.be.instanceOf(DeviceApiError);
  expect((err as DeviceApiError).status).to.equal(status);
  if (code) expect((err as DeviceApiError).code).to.equal(code);
}

async function waitFor(condition: () => boolean, ms = 2_000) {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('devices on the security page', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  /** The app exposes `services.devices` once src/app.ts wires the device side in. */
  function wired(ctx: Mocha.Context): Devices {
    const devices = (server.app.services as { devices?: Devices }).devices;
    if (!devices) ctx.skip();
    return devices!;
  }

  it('links a device behind a fresh second factor, lists, renames and unlinks it', async function () {
    const devices = wired(this);
    const email = 'devices-page@example.com';
    const user = await createUser(server, email);
    const { secret } = await giveAuthenticator(server, user.id);
    const agent = new Agent(server.origin);
    let page = await agent.get('/account/security');
    page = await agent.submit(page, '/login', { email, password: 'correct horse battery staple' });
    page = await agent.submit(page, '/two-factor', { code: await totpNow(server, secret) });
    expect(page.html).to.include('Linked devices').and.include('No device is linked');

    // The session alone does not show a linking code.
    page = await agent.get('/account/security/devices/link');
    expect(page.html).to.include('Confirm it’s you').and.not.include('link-code');
    server.clock.advance(30_000);
    page = await agent.submit(page, '/account/security/confirm', { code: await totpNow(server, secret) });
    expect(page.html).to.include('Link a device').and.include('data:image/png;base64,');
    const code = linkingCodeOf(page.html);

    const device = new TestDevice(server.origin, server.clock);
    expect(await device.link(code, 'My phone')).to.deep.include({ account: email });
    page = await agent.get('/account/security');
    expect(page.html).to.include('My phone').and.include(`/account/security/devices/${device.deviceId}/unlink`);

    page = await agent.submit(page, `/devices/${device.deviceId}/rename`, { name: 'Work phone' });
    expect(page.url).to.equal(`${server.origin}/account/security?done=device-renamed`);
    expect(await device.me()).to.deep.include({ name: 'Work phone' });

    const csrf = findForm(page.html, '/rename').hidden._csrf!;

    page = await agent.get(`/account/security/devices/${device.deviceId}/unlink`);
    expect(page.html).to.include('Unlink “Work phone”?');
    page = await agent.submit(page, `/devices/${device.deviceId}/unlink`, {});
    expect(page.url).to.equal(`${server.origin}/account/security?done=device-unlinked`);
    expect(await devices.list(user.id)).to.deep.equal([]);
    await expectError(device.me(), 401, 'device.unauthorized');

    // Unlinking again (or someone else's device) finds nothing.
    const again = await agent.request('POST', `/account/security/devices/${device.deviceId}/unlink`, { _csrf: csrf });
    expect(again.status).to.equal(404);
  });

  it('lets a linked device approve a real sign-in by typing the number', async function () {
    const devices = wired(this);
    const email = 'devices-push@example.com';
    const user = await createUser(server, email);
    await giveAuthenticator(server, user.id);
    const device = new TestDevice(server.origin, server.clock);
    await device.link((await devices.createLinkingCode(user.id)).code, 'Phone');
    const stream = device.stream();
    expect((await stream.next()).value).to.deep.equal([]);

    const flow = new SignIn(server, await registerClient(server));
    await flow.start();
    await flow.password(email);
    const form = findForm(flow.page.html, '/two-factor');
    const sendTo = form.action.replace(/\/two-factor$/, '/send');
    const page = await flow.agent.follow(await flow.agent.request('POST', sendTo, { _csrf: form.hidden._csrf!, methodId: 'push' }));
    const number = /<p class="push-number"[^>]*>([0-9]+)<\/p>/.exec(page.html)?.[1];
    expect(number, page.html.slice(0, 2000)).to.be.a('string');

    const [request] = (await stream.next()).value as Awaited<ReturnType<typeof device.requests>>;
    expect(request).to.include({ numberLength: number!.length });
    expect(await device.answer(request!.ref, { decision: 'approve', number: number!, localCheck: request!.kind === 'simple' ? null : request!.kind })).to.equal('approved');
    await stream.return(undefined);

    flow.page = await flow.agent.submit(page, '/two-factor', { methodId: 'push' });
    expect(flow.returned, flow.page.html.slice(0, 1500)).to.equal(true);
    const { claims } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
  });
});
