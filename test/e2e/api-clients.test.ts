/**
 * The clients management API over HTTP, and what its changes do to real
 * sign-ins: oidc-provider must see every update, rotation and deletion on
 * the next request, even after it has loaded the client before.
 */
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { REDIRECT_URI, SignIn, createUser, type TestClient } from '../helpers/oidc-flow.ts';
import { Agent } from '../helpers/agent.ts';

type Json = Record<string, any>;

describe('clients API', () => {
  let server: TestServer;
  let writeKey: string;
  let readKey: string;
  let seq = 0;

  const call = async (method: string, path: string, body?: unknown, apiKey: string | null = writeKey) => {
    const res = await fetch(`${server.origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: (text ? JSON.parse(text) : undefined) as Json, headers: res.headers };
  };

  const nextId = () => `api-client-${(seq += 1)}`;

  /** Creates a client through the API; the defaults sign in at the test redirect URI. */
  async function create(fields: Json = {}) {
    const res = await call('POST', '/api/v1/clients', { clientId: nextId(), name: 'Shop', redirectUris: [REDIRECT_URI], ...fields });
    expect(res.status, res.text).to.equal(201);
    return res.body as { client: Json; clientSecret: string | null };
  }

  /** The relying party as openid-client sees it, with the secret it was given. */
  async function rp(clientId: string, secret: string | null): Promise<TestClient> {
    const auth = secret ? oidc.ClientSecretBasic(secret) : oidc.None();
    const config = await oidc.discovery(new URL(server.origin), clientId, secret ?? undefined, auth, { execute: [oidc.allowInsecureRequests] });
    return { clientId, secret, config };
  }

  /** A password-only sign-in that reaches the RP; @returns its tokens. */
  async function signInWithPassword(client: TestClient, email: string) {
    const flow = new SignIn(server, client);
    await flow.start();
    await flow.password(email);
    expect(flow.returned, flow.page.html.slice(0, 500)).to.equal(true);
    return (await flow.finish()).tokens;
  }

  const eventsOf = (type: string, clientId: string) => server.db('events').where({ type, client_id: clientId }).orderBy('id');

  before(async () => {
    server = await startServer();
    writeKey = (await server.app.services.apiKeys.create({ name: 'admin', scopes: ['clients:read', 'clients:write'] })).key;
    readKey = (await server.app.services.apiKeys.create({ name: 'reader', scopes: ['clients:read'] })).key;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  describe('create, read and list', () => {
    it('creates a confidential client: 201 with the client and its secret, shown only there', async () => {
      const res = await call('POST', '/api/v1/clients', {
        clientId: 'shop-web', name: '  Shop  ', redirectUris: ['https://shop.example/cb', 'http://localhost:3000/cb'],
        postLogoutRedirectUris: ['https://shop.example/'], firstParty: true, mfaPolicy: 'required',
      });
      expect(res.status).to.equal(201);
      expect(res.headers.get('location')).to.equal('/api/v1/clients/shop-web');
      const at = new Date(server.clock.now()).toISOString();
      expect(res.body.client).to.deep.equal({
        clientId: 'shop-web', name: 'Shop', redirectUris: ['https://shop.example/cb', 'http://localhost:3000/cb'],
        postLogoutRedirectUris: ['https://shop.example/'], public: false, firstParty: true, mfaPolicy: 'required', clientCredentials: false,
        createdAt: at, updatedAt: at,
      });
      const secret = res.body.clientSecret as string;
      expect(secret).to.match(/^[A-Za-z0-9_-]{43}$/);

      const one = await call('GET', '/api/v1/clients/shop-web', undefined, readKey);
      expect(one.status).to.equal(200);
      expect(one.body).to.deep.equal(res.body.client);
      const list = await call('GET', '/api/v1/clients', undefined, readKey);
      expect(list.status).to.equal(200);
      expect(list.body.clients.find((c: Json) => c.clientId === 'shop-web')).to.deep.equal(res.body.client);

      const sealed = (await server.db('clients').where({ client_id: 'shop-web' }).first()).client_secret_sealed as string;
      expect(sealed).to.be.a('string').and.not.include(secret);
      for (const text of [one.text, list.text]) {
        expect(text).to.not.include(secret).and.not.include(sealed).and.not.match(/secret/i);
      }
      const [event] = await eventsOf('client.created', 'shop-web');
      expect(JSON.parse(event.details)).to.have.property('actor').that.matches(/^api_key:/);
      expect(event.details).to.not.include(secret);
    });

    it('creates a public client without a secret, with a generated id and the defaults', async () => {
      const res = await call('POST', '/api/v1/clients', { name: 'SPA', redirectUris: ['https://spa.example/cb'], public: true });
      expect(res.status).to.equal(201);
      expect(res.body.clientSecret).to.equal(null);
      expect(res.body.client.clientId).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(res.body.client).to.include({ public: true, firstParty: false, mfaPolicy: null });
      expect(res.body.client.postLogoutRedirectUris).to.deep.equal([]);
    });

    it('answers 409 client.id_taken for an id in use, keeping the first client', async () => {
      const { client } = await create({ name: 'First' });
      const res = await call('POST', '/api/v1/clients', { clientId: client.clientId, name: 'Second', redirectUris: [REDIRECT_URI] });
      expect(res.status).to.equal(409);
      expect(res.body.error).to.equal('client.id_taken');
      expect((await call('GET', `/api/v1/clients/${client.clientId}`)).body.name).to.equal('First');
    });

    it('rejects invalid redirect URIs and other bad input with 400 naming the field, creating nothing', async () => {
      const cases: Array<[Json, string]> = [
        [{ redirectUris: ['http://shop.example/cb'] }, 'redirectUris'],
        [{ redirectUris: ['https://shop.example/cb#frag'] }, 'redirectUris'],
        [{ redirectUris: ['/relative/cb'] }, 'redirectUris'],
        [{ redirectUris: ['javascript:alert(1)'] }, 'redirectUris'],
        [{ redirectUris: [] }, 'redirectUris'],
        [{ postLogoutRedirectUris: ['http://shop.example/'] }, 'postLogoutRedirectUris'],
        // oidc-provider refuses https on loopback for a native (private-use scheme) client.
        [{ redirectUris: ['com.example.app:/cb', 'https://localhost/cb'] }, 'redirectUris'],
        [{ clientId: 'has space' }, 'clientId'],
        [{ name: '   ' }, 'name'],
      ];
      for (const [fields, field] of cases) {
        const id = nextId();
        const res = await call('POST', '/api/v1/clients', { clientId: id, name: 'Bad', redirectUris: [REDIRECT_URI], ...fields });
        expect(res.status, JSON.stringify(fields)).to.equal(400);
        expect(res.body.error).to.equal('request.invalid');
        expect(res.body.details, JSON.stringify(fields)).to.deep.equal({ field });
        expect((await call('GET', `/api/v1/clients/${id}`)).status).to.equal(404);
      }
      for (const body of [
        { name: 'Bad', redirectUris: [REDIRECT_URI], mfaPolicy: 'always' },
        { name: 'Bad', redirectUris: [REDIRECT_URI], mfa_policy: 'required' },
        { name: 'Bad', redirectUris: 'https://shop.example/cb' },
        { redirectUris: [REDIRECT_URI] },
      ]) {
        const res = await call('POST', '/api/v1/clients', body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.body.details.in).to.equal('body');
      }
    });

    it('answers 404 client.not_found for an unknown id on every per-client route', async () => {
      for (const [method, path, body] of [
        ['GET', '/api/v1/clients/nope'], ['PATCH', '/api/v1/clients/nope', { name: 'X' }],
        ['POST', '/api/v1/clients/nope/secret'], ['DELETE', '/api/v1/clients/nope'],
      ] as const) {
        const res = await call(method, path, body);
        expect(res.status, `${method} ${path}`).to.equal(404);
        expect(res.body.error).to.equal('client.not_found');
      }
    });
  });

  describe('API keys', () => {
    it('needs a key: 401 auth.api_key_required without one on every route', async () => {
      const { client } = await create();
      for (const [method, path, body] of [
        ['POST', '/api/v1/clients', { name: 'X', redirectUris: [REDIRECT_URI] }], ['GET', '/api/v1/clients'],
        ['GET', `/api/v1/clients/${client.clientId}`], ['PATCH', `/api/v1/clients/${client.clientId}`, { name: 'X' }],
        ['POST', `/api/v1/clients/${client.clientId}/secret`], ['DELETE', `/api/v1/clients/${client.clientId}`],
      ] as const) {
        const res = await call(method, path, body, null);
        expect(res.status, `${method} ${path}`).to.equal(401);
        expect(res.body.error).to.equal('auth.api_key_required');
      }
      expect((await call('GET', `/api/v1/clients/${client.clientId}`)).body.name).to.equal('Shop');
    });

    it('lets a clients:read key read but not create, change, rotate or delete', async () => {
      const { client, clientSecret } = await create({ firstParty: true });
      const path = `/api/v1/clients/${client.clientId}`;
      expect((await call('GET', path, undefined, readKey)).status).to.equal(200);
      expect((await call('GET', '/api/v1/clients', undefined, readKey)).status).to.equal(200);
      for (const [method, p, body] of [
        ['POST', '/api/v1/clients', { clientId: 'by-reader', name: 'X', redirectUris: [REDIRECT_URI] }],
        ['PATCH', path, { name: 'Renamed' }], ['POST', `${path}/secret`], ['DELETE', path],
      ] as const) {
        const res = await call(method, p, body, readKey);
        expect(res.status, `${method} ${p}`).to.equal(403);
        expect(res.body).to.include({ error: 'auth.scope_missing' });
        expect(res.body.details.missing).to.deep.equal(['clients:write']);
      }
      expect((await call('GET', '/api/v1/clients/by-reader')).status).to.equal(404);
      expect((await call('GET', path)).body.name).to.equal('Shop');
      // The secret was not rotated: it still signs in.
      const user = await createUser(server, 'reader-check@example.com');
      const tokens = await signInWithPassword(await rp(client.clientId, clientSecret), 'reader-check@example.com');
      expect(tokens.claims()!.sub).to.equal(user.id);
    });

    it('refuses a key without clients:read for reading', async () => {
      const usersKey = (await server.app.services.apiKeys.create({ name: 'users', scopes: ['users:read'] })).key;
      const res = await call('GET', '/api/v1/clients', undefined, usersKey);
      expect(res.status).to.equal(403);
      expect(res.body.details.missing).to.deep.equal(['clients:read']);
    });
  });

  describe('update', () => {
    it('changes the given fields only, bumps updatedAt and records which fields changed', async () => {
      const { client } = await create({ postLogoutRedirectUris: ['https://shop.example/'], mfaPolicy: 'optional' });
      server.clock.advance(60_000);
      const res = await call('PATCH', `/api/v1/clients/${client.clientId}`, { name: 'Shop 2', redirectUris: ['https://shop.example/cb2'], firstParty: true });
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({
        ...client, name: 'Shop 2', redirectUris: ['https://shop.example/cb2'], firstParty: true,
        updatedAt: new Date(server.clock.now()).toISOString(),
      });
      expect(res.body.updatedAt).to.not.equal(client.updatedAt);
      expect((await call('GET', `/api/v1/clients/${client.clientId}`)).body).to.deep.equal(res.body);

      const cleared = await call('PATCH', `/api/v1/clients/${client.clientId}`, { mfaPolicy: null, postLogoutRedirectUris: [] });
      expect(cleared.body).to.include({ mfaPolicy: null, name: 'Shop 2' });
      expect(cleared.body.postLogoutRedirectUris).to.deep.equal([]);

      const events = await eventsOf('client.updated', client.clientId);
      expect(events.map((e) => JSON.parse(e.details).changed)).to.deep.equal([
        ['firstParty', 'name', 'redirectUris'], ['mfaPolicy', 'postLogoutRedirectUris'],
      ]);
    });

    it('validates like create and leaves the client unchanged on 400', async () => {
      const { client } = await create();
      const path = `/api/v1/clients/${client.clientId}`;
      const cases: Array<[Json, string | undefined]> = [
        [{ redirectUris: ['http://shop.example/cb'] }, 'redirectUris'],
        [{ redirectUris: [] }, 'redirectUris'],
        [{ postLogoutRedirectUris: ['https://shop.example/#x'] }, 'postLogoutRedirectUris'],
        [{ name: '' }, 'name'],
        [{}, undefined],
        [{ public: true }, undefined],
        [{ clientSecret: 'chosen-by-caller' }, undefined],
        [{ mfaPolicy: 'sometimes' }, undefined],
      ];
      for (const [body, field] of cases) {
        const res = await call('PATCH', path, body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        if (field) expect(res.body.details).to.deep.equal({ field });
        else expect(res.body.details.in).to.equal('body');
      }
      expect((await call('GET', path)).body).to.deep.equal(client);
      expect(await eventsOf('client.updated', client.clientId)).to.have.length(0);
    });

    it('makes a stricter MFA policy apply to the next sign-in, though the provider has loaded the client before', async () => {
      await createUser(server, 'no-factor@example.com');
      const { client, clientSecret } = await create({ mfaPolicy: 'optional', firstParty: true });
      const rpClient = await rp(client.clientId, clientSecret);
      // Under `optional` a user without a factor signs in with the password alone.
      expect((await signInWithPassword(rpClient, 'no-factor@example.com')).claims()!.amr).to.deep.equal(['pwd']);

      const res = await call('PATCH', `/api/v1/clients/${client.clientId}`, { mfaPolicy: 'required' });
      expect(res.body.mfaPolicy).to.equal('required');

      const flow = new SignIn(server, rpClient);
      await flow.start();
      const page = await flow.password('no-factor@example.com');
      expect(page.status).to.equal(200);
      expect(page.html).to.include('Set up two-step verification');
      expect(flow.returned).to.equal(false);
    });

    it('stops accepting a removed redirect URI at once', async () => {
      const { client, clientSecret } = await create({ redirectUris: [REDIRECT_URI, 'https://shop.example/cb'] });
      const rpClient = await rp(client.clientId, clientSecret);
      expect((await new SignIn(server, rpClient).start()).status).to.equal(200);

      await call('PATCH', `/api/v1/clients/${client.clientId}`, { redirectUris: ['https://shop.example/cb'] });
      const page = await new SignIn(server, rpClient).start();
      expect(page.status).to.equal(400);
      expect(page.html).to.include('redirect_uri');
    });

    it('skips the consent page once a client is made first-party', async () => {
      await createUser(server, 'consent@example.com');
      const { client, clientSecret } = await create({ firstParty: false });
      const rpClient = await rp(client.clientId, clientSecret);
      const before = new SignIn(server, rpClient);
      await before.start();
      expect((await before.password('consent@example.com')).html).to.include('/consent"');

      await call('PATCH', `/api/v1/clients/${client.clientId}`, { firstParty: true });
      await signInWithPassword(rpClient, 'consent@example.com');
    });
  });

  describe('secret rotation', () => {
    it('gives a new secret once; the new one works with openid-client and the old one does not', async () => {
      const user = await createUser(server, 'rotate@example.com');
      const { client, clientSecret } = await create({ firstParty: true });
      const withOld = await rp(client.clientId, clientSecret);
      expect((await signInWithPassword(withOld, 'rotate@example.com')).claims()!.sub).to.equal(user.id);

      const res = await call('POST', `/api/v1/clients/${client.clientId}/secret`);
      expect(res.status).to.equal(200);
      expect(Object.keys(res.body)).to.deep.equal(['clientSecret']);
      const secret = res.body.clientSecret as string;
      expect(secret).to.match(/^[A-Za-z0-9_-]{43}$/).and.not.equal(clientSecret);
      const shown = await call('GET', `/api/v1/clients/${client.clientId}`);
      expect(shown.text).to.not.include(secret);
      expect(shown.body.public).to.equal(false);

      const stale = new SignIn(server, withOld);
      await stale.start();
      await stale.password('rotate@example.com');
      // openid-client reports the 401 as a WWW-Authenticate challenge carrying the error.
      const refused = await stale.finish().then(() => undefined, (err: unknown) => err as { status?: number; cause?: Array<{ parameters: Json }> });
      expect(refused?.status).to.equal(401);
      expect(refused?.cause?.[0]?.parameters).to.include({ error: 'invalid_client' });

      const tokens = await signInWithPassword(await rp(client.clientId, secret), 'rotate@example.com');
      expect(tokens.claims()!.sub).to.equal(user.id);
      const [event] = await eventsOf('client.updated', client.clientId);
      expect(JSON.parse(event.details).changed).to.deep.equal(['secret']);
      expect(event.details).to.not.include(secret);
    });

    it('answers 400 client.no_secret for a public client, which stays public', async () => {
      const { client } = await create({ public: true });
      const res = await call('POST', `/api/v1/clients/${client.clientId}/secret`);
      expect(res.status).to.equal(400);
      expect(res.body.error).to.equal('client.no_secret');
      const row = await server.db('clients').where({ client_id: client.clientId }).first();
      expect(row.client_secret_sealed).to.equal(null);
      expect(await eventsOf('client.updated', client.clientId)).to.have.length(0);
    });
  });

  describe('delete', () => {
    it('answers 204; the client is gone and an authorization request with its id fails', async () => {
      const { client, clientSecret } = await create();
      const rpClient = await rp(client.clientId, clientSecret);
      expect((await new SignIn(server, rpClient).start()).status).to.equal(200);

      const res = await call('DELETE', `/api/v1/clients/${client.clientId}`);
      expect(res.status).to.equal(204);
      expect(res.text).to.equal('');
      expect((await call('GET', `/api/v1/clients/${client.clientId}`)).status).to.equal(404);
      expect((await call('GET', '/api/v1/clients')).body.clients.map((c: Json) => c.clientId)).to.not.include(client.clientId);
      expect(await eventsOf('client.deleted', client.clientId)).to.have.length(1);

      const page = await new SignIn(server, rpClient).start();
      expect(page.status).to.equal(400);
      expect(page.html).to.include('invalid_client');
      expect((await call('DELETE', `/api/v1/clients/${client.clientId}`)).status).to.equal(404);
    });

    it('revokes what was issued to the client, so a new client with the same id inherits nothing', async () => {
      await createUser(server, 'reuse@example.com');
      const { client } = await create({ public: true, firstParty: true });
      const flow = new SignIn(server, await rp(client.clientId, null));
      await flow.start({ scope: 'openid offline_access', prompt: 'consent' });
      await flow.password('reuse@example.com');
      if (!flow.returned) flow.page = await flow.agent.submit(flow.page, '/consent', {});
      const { tokens } = await flow.finish();
      expect(tokens.refresh_token).to.be.a('string');

      expect((await call('DELETE', `/api/v1/clients/${client.clientId}`)).status).to.equal(204);
      await create({ clientId: client.clientId, public: true, firstParty: true });
      const refused = await oidc.refreshTokenGrant((await rp(client.clientId, null)).config, tokens.refresh_token!)
        .then(() => undefined, (err: unknown) => err as { error?: string });
      expect(refused?.error).to.equal('invalid_grant');
    });
  });

  it('accepts a native app with a private-use scheme, and the provider lets it start a sign-in', async () => {
    const { client } = await create({ public: true, redirectUris: ['com.example.shop:/oauth/cb', 'http://127.0.0.1/cb'] });
    expect(client.redirectUris).to.deep.equal(['com.example.shop:/oauth/cb', 'http://127.0.0.1/cb']);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = new URL('/auth', server.origin);
    url.search = new URLSearchParams({
      client_id: client.clientId, redirect_uri: 'com.example.shop:/oauth/cb', response_type: 'code', scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: oidc.randomState(),
    }).toString();
    const page = await new Agent(server.origin).get(url.href);
    expect(page.status, page.html.slice(0, 500)).to.equal(200);
    expect(page.html).to.include('autocomplete="username"');
  });
});
