/**
 * Two Twofold nodes on one database and one seal key, behind one origin,
 * behave as one provider: a sign-in may move between nodes at any request,
 * TOTP replay protection holds across them, and they agree on signing and
 * cookie keys. Runs on PostgreSQL (TEST_DATABASE_URL) and on a shared SQLite file.
 */
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { SignIn, createUser, giveAuthenticator, registerClient, totpNow, REDIRECT_URI, type TestClient } from '../helpers/oidc-flow.ts';
import { alertText } from '../helpers/agent.ts';
import { createDoors, eventsOf } from '../helpers/attack-doors.ts';
import { ACR } from '../../src/mfa/amr.ts';

const WRONG_CODE = 'That code is not correct. Check your authenticator app and try again.';

describe('two nodes, one provider', () => {
  let cluster: Cluster;
  let a: ClusterNode;
  let b: ClusterNode;
  let client: TestClient;
  let jwksPath: string;
  let tokenPath: string;

  /** The requests served since `from`, as "node METHOD path". */
  const servedSince = (from: number) => cluster.balancer.served.slice(from).map((s) => `${s.node} ${s.method} ${s.path}`);

  before(async () => {
    cluster = await startCluster(['a', 'b']);
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    cluster.balancer.route('a');
    client = await registerClient(a, { mfaPolicy: 'optional' });
    // Validate every ID token's signature against the provider's JWKS (fetched through the balancer).
    oidc.enableNonRepudiationChecks(client.config);
    const meta = client.config.serverMetadata();
    jwksPath = new URL(meta.jwks_uri!).pathname;
    tokenPath = new URL(meta.token_endpoint!).pathname;
  });
  after(() => cluster?.close());
  afterEach(() => {
    expect(a.errors).to.deep.equal([]);
    expect(b.errors).to.deep.equal([]);
  });

  it(`runs on ${process.env.TEST_DATABASE_URL?.startsWith('postgres') ? 'PostgreSQL' : 'a shared SQLite file'} with the balancer's origin as every node's issuer`, async () => {
    expect(cluster.databaseUrl).to.match(process.env.TEST_DATABASE_URL?.startsWith('postgres') ? /^postgres/ : /^sqlite:\/.+\.sqlite$/);
    expect(a.db).to.not.equal(b.db);
    expect(a.config.issuer).to.equal(cluster.origin);
    expect(b.config.issuer).to.equal(cluster.origin);
    expect(a.nodeOrigin).to.not.equal(b.nodeOrigin);
    expect(client.config.serverMetadata().issuer).to.equal(cluster.origin);
  });

  it('finishes on node B a sign-in begun on node A: code, token exchange, ID token checked against the JWKS', async () => {
    const user = await createUser(a, 'across@example.com');
    const { secret } = await giveAuthenticator(a, user.id);

    cluster.balancer.route('a');
    const begin = cluster.balancer.served.length;
    const flow = new SignIn(a, client);
    await flow.start();
    const codePage = await flow.password('across@example.com');
    expect(codePage.html).to.include('autocomplete="one-time-code"');
    expect(servedSince(begin).every((s) => s.startsWith('a '))).to.equal(true);

    // From here on node B serves everything except the JWKS, which node A serves.
    cluster.balancer.route((req) => (req.url!.startsWith(jwksPath) ? 'a' : 'b'));
    const finish = cluster.balancer.served.length;
    await flow.code(await totpNow(b, secret));
    const { claims, tokens } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.iss).to.equal(cluster.origin);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(claims.acr).to.equal(ACR.mfa);

    const served = servedSince(finish);
    expect(served).to.include.members([`b POST ${new URL(codePage.url).pathname}/two-factor`, `b POST ${tokenPath}`, `a GET ${jwksPath}`]);
    expect(served.filter((s) => s.startsWith('a '))).to.deep.equal([`a GET ${jwksPath}`]);

    // An access token issued by B is good on A.
    cluster.balancer.route('a');
    const info = await oidc.fetchUserInfo(client.config, tokens.access_token, user.id);
    expect(info.email).to.equal('across@example.com');
  });

  it('completes a sign-in whose requests alternate between the nodes', async () => {
    const user = await createUser(a, 'round-robin@example.com');
    const { secret } = await giveAuthenticator(b, user.id);
    cluster.balancer.route('round-robin');
    const begin = cluster.balancer.served.length;
    const flow = new SignIn(a, client);
    await flow.start();
    await flow.password('round-robin@example.com');
    await flow.code(await totpNow(a, secret));
    const { claims } = await flow.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    const nodes = servedSince(begin).map((s) => s.split(' ')[0]);
    expect(nodes.length).to.be.greaterThan(4);
    for (let i = 1; i < nodes.length; i += 1) expect(nodes[i]).to.not.equal(nodes[i - 1]);
  });

  it('refuses on node B a code already accepted on node A, and accepts the next time step', async () => {
    const user = await createUser(a, 'replay@example.com');
    const { secret } = await giveAuthenticator(a, user.id);
    const code = await totpNow(a, secret);

    cluster.balancer.route('a');
    const first = new SignIn(a, client);
    await first.start();
    await first.password('replay@example.com');
    await first.code(code);
    expect(first.returned).to.equal(true);

    cluster.balancer.route('b');
    const begin = cluster.balancer.served.length;
    const second = new SignIn(b, client);
    await second.start();
    await second.password('replay@example.com');
    const replay = await second.code(code);
    expect(replay.status).to.equal(400);
    expect(alertText(replay.html)).to.equal(WRONG_CODE);
    expect(servedSince(begin).every((s) => s.startsWith('b '))).to.equal(true);

    b.clock.advance(30_000);
    await second.code(await totpNow(b, secret));
    expect(second.returned).to.equal(true);
    expect((await second.finish()).claims.sub).to.equal(user.id);
  });

  it('lets node B accept the session cookie node A set (prompt=none)', async () => {
    const user = await createUser(a, 'session@example.com');
    const { secret } = await giveAuthenticator(a, user.id);

    cluster.balancer.route('a');
    const flow = new SignIn(a, client);
    await flow.start();
    await flow.password('session@example.com');
    await flow.code(await totpNow(a, secret));
    await flow.finish();
    expect(flow.agent.cookieNames()).to.include.members(['_session', '_session.sig']);

    cluster.balancer.route('b');
    const silent = new SignIn(b, client, flow.agent);
    await silent.start({ prompt: 'none' });
    const { claims } = await silent.finish();
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);

    // Control: without A's cookie, B has no session to use.
    const stranger = new SignIn(b, client);
    const page = await stranger.start({ prompt: 'none' });
    expect(page.location).to.be.a('string');
    expect(new URL(page.location!).searchParams.get('error')).to.equal('login_required');
    expect(page.location!.startsWith(REDIRECT_URI)).to.equal(true);
  });

  it('counts wrong codes on both nodes toward one lock-out: 3 on node A and 2 on node B lock the account on both', async () => {
    const admin = (await a.app.services.apiKeys.create({ name: 'lock-out', scopes: ['factors:read', 'factors:write'] })).key;
    const doors = createDoors(a, client, admin);
    const v = await doors.victim('two-node-lockout');

    cluster.balancer.route('a');
    const begin = cluster.balancer.served.length;
    const onA = await doors.hosted(v);
    for (let i = 0; i < 3; i += 1) expect((await onA.answer(await doors.wrong(v))).outcome).to.equal('invalid');
    // Another sign-in, so only the account's count (not the challenge's attempts) can reach 5.
    cluster.balancer.route('b');
    const onB = await doors.hosted(v);
    expect((await onB.answer(await doors.wrong(v))).outcome).to.equal('invalid');
    expect(await onB.answer(await doors.wrong(v))).to.include({ outcome: 'locked', status: 429 });
    const guesses = servedSince(begin).filter((s) => s.endsWith('/two-factor'));
    expect(guesses.map((s) => s.split(' ')[0])).to.deep.equal(['a', 'a', 'a', 'b', 'b']);

    // The right code, on either node and any door: refused.
    const right = await doors.right(v);
    for (const node of ['a', 'b']) {
      cluster.balancer.route(node);
      for (const door of [onA, ...await doors.everyDoor(v)]) {
        const verdict = await door.answer(right);
        expect(verdict.outcome, `node ${node}, ${verdict.door}: ${verdict.body.slice(0, 200)}`).to.equal('locked');
      }
    }
    for (const node of [a, b]) expect(await node.app.services.lock.status(v.id)).to.deep.include({ locked: true, failures: 5 });
    expect(await eventsOf(b, v.id, 'user.locked')).to.have.length(1);
  });

  it('serves the same JWKS from both nodes and signs with the one key kept in the database', async () => {
    const jwks = await Promise.all([a, b].map(async (node) => {
      const res = await fetch(`${node.nodeOrigin}${jwksPath}`);
      expect(res.status).to.equal(200);
      return (await res.json()) as JSONWebKeySet;
    }));
    expect(jwks[0]!.keys).to.have.length.greaterThan(0);
    expect(jwks[1]).to.deep.equal(jwks[0]);
    for (const key of jwks[0]!.keys) expect(key).to.not.have.property('d');

    const kinds = (await a.db('provider_keys').select('kind').count({ n: '*' }).groupBy('kind').orderBy('kind')) as Array<{ kind: string; n: number | string }>;
    expect(kinds.map((r) => [r.kind, Number(r.n)])).to.deep.equal([['cookie', 1], ['signing', 1]]);

    // A token signed by B verifies against A's JWKS, and the other way round.
    for (const [signer, verifier] of [[b, 0], [a, 1]] as const) {
      const user = await createUser(a, `jwks-${signer.name}@example.com`);
      cluster.balancer.route(signer.name);
      const flow = new SignIn(signer, client);
      await flow.start();
      await flow.password(`jwks-${signer.name}@example.com`);
      const { tokens } = await flow.finish();
      const idToken = tokens.id_token!;
      expect(jwks[verifier]!.keys.map((k) => k.kid)).to.include(decodeProtectedHeader(idToken).kid);
      const { payload } = await jwtVerify(idToken, createLocalJWKSet(jwks[verifier]!), { issuer: cluster.origin, audience: client.clientId });
      expect(payload.sub).to.equal(user.id);
    }
  });
});
