/**
 * The users management API over HTTP: every route's success and error paths,
 * API-key scopes, paging that neither skips nor repeats, and a suspension that
 * really stops sign-in. No response may ever carry a password or its hash.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, registerClient, type TestClient } from '../helpers/oidc-flow.ts';
import { isSqlite } from '../../src/store/db.ts';
import type { EventType } from '../../src/store/events.ts';

const PASSWORD = 'correct horse battery staple';

describe('users API', () => {
  let server: TestServer;
  let client: TestClient;
  let writer: string;
  let writerId: string;
  let reader: string;
  let loginKey: string;

  /** Calls the API; every answer is checked for anything password-shaped. */
  async function api(method: string, path: string, body?: unknown, apiKey: string | null = writer) {
    const res = await fetch(`${server.origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    expect(text).to.not.match(/password_?hash|\$argon2/i);
    return { status: res.status, text, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
  }

  const login = (loginId: string, password = PASSWORD) => api('POST', '/api/login', { loginId, password, applicationId: client.clientId }, loginKey);
  const iso = () => new Date(server.clock.now()).toISOString();
  /** The user's events, newest first. */
  const eventsOf = async (userId: string, type?: EventType) => (await server.app.stores.events.page({ userId, type, limit: 100 })).events;

  before(async () => {
    server = await startServer();
    client = await registerClient(server, { mfaPolicy: 'optional' });
    const w = await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:read', 'users:write'] });
    writer = w.key;
    writerId = w.record.id;
    reader = (await server.app.services.apiKeys.create({ name: 'ro', scopes: ['users:read'] })).key;
    loginKey = (await server.app.services.apiKeys.create({ name: 'app', scopes: ['login'] })).key;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  describe('POST /api/v1/users', () => {
    it('creates a user with a normalised email and an argon2id password that signs in', async () => {
      const res = await api('POST', '/api/v1/users', { email: '  Ada@Example.COM ', name: ' Ada Lovelace ', password: PASSWORD });
      expect(res.status).to.equal(201);
      expect(res.body).to.deep.equal({
        id: res.body.id, email: 'ada@example.com', name: 'Ada Lovelace', status: 'ACTIVE', createdAt: iso(), updatedAt: iso(),
      });
      expect(res.body.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(res.headers.get('location')).to.equal(`/api/v1/users/${res.body.id}`);
      expect((await server.app.stores.users.findById(res.body.id))!.passwordHash).to.match(/^\$argon2id\$/);
      expect((await login('ADA@example.com')).status).to.equal(200);
      const [created] = await eventsOf(res.body.id, 'user.created');
      expect(created).to.deep.include({ type: 'user.created', userId: res.body.id, ip: '127.0.0.1', details: { actor: `api_key:${writerId}` } });
    });

    it('creates a user without a password, who cannot sign in with one', async () => {
      const res = await api('POST', '/api/v1/users', { email: 'nopass@example.com' });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ email: 'nopass@example.com', name: null, status: 'ACTIVE' });
      expect((await server.app.stores.users.findById(res.body.id))!.passwordHash).to.equal(null);
      expect((await login('nopass@example.com', 'anything at all')).status).to.equal(404);
    });

    it('answers 409 user.email_taken for an email that differs only in case, and nobody is created', async () => {
      await createUser(server, 'taken@example.com');
      const res = await api('POST', '/api/v1/users', { email: 'TAKEN@example.com', password: PASSWORD });
      expect(res.status).to.equal(409);
      expect(res.body).to.deep.equal({ error: 'user.email_taken', message: 'A user with that email address already exists.' });
      expect((await api('GET', '/api/v1/users?q=taken@')).body.users).to.have.length(1);
    });

    it('lets exactly one of two concurrent creations of the same email win', async () => {
      const results = await Promise.all([1, 2].map(() => api('POST', '/api/v1/users', { email: 'race@example.com' })));
      expect(results.map((r) => r.status).sort()).to.deep.equal([201, 409]);
    });

    it('answers 400 with the domain\'s reason for a bad email, password or name, or an unknown field', async () => {
      const badEmail = await api('POST', '/api/v1/users', { email: 'not-an-email' });
      expect(badEmail.status).to.equal(400);
      expect(badEmail.body).to.deep.equal({ error: 'request.invalid', message: 'That is not a valid email address.', details: { field: 'email' } });
      const short = await api('POST', '/api/v1/users', { email: 'short@example.com', password: 'seven77' });
      expect(short.body).to.deep.equal({ error: 'request.invalid', message: 'The password must be at least 8 characters long.', details: { field: 'password' } });
      const long = await api('POST', '/api/v1/users', { email: 'long@example.com', name: 'x'.repeat(201) });
      expect(long.body).to.deep.equal({ error: 'request.invalid', message: 'The name must be at most 200 characters long.', details: { field: 'name' } });
      const typo = await api('POST', '/api/v1/users', { email: 'typo@example.com', passwrod: PASSWORD });
      expect(typo.status).to.equal(400);
      expect(typo.body.details.issues).to.deep.equal([{ path: '', message: 'Unrecognized key: "passwrod"' }]);
      expect(await server.app.services.users.findByEmail('typo@example.com')).to.equal(undefined);
    });
  });

  describe('GET /api/v1/users/:id', () => {
    it('answers the user, or 404 user.not_found', async () => {
      const user = await createUser(server, 'get@example.com');
      const res = await api('GET', `/api/v1/users/${user.id}`, undefined, reader);
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ id: user.id, email: 'get@example.com', name: 'get', status: 'ACTIVE', createdAt: iso(), updatedAt: iso() });
      const missing = await api('GET', '/api/v1/users/00000000-0000-0000-0000-000000000000', undefined, reader);
      expect(missing.status).to.equal(404);
      expect(missing.body).to.deep.equal({ error: 'user.not_found', message: 'No such user.' });
    });
  });

  describe('GET /api/v1/users', () => {
    it('walks every page with a small limit and sees each user exactly once, in email order', async () => {
      const emails = ['walk-e@list.test', 'walk-a@list.test', 'walk-g@list.test', 'walk-c@list.test', 'walk-b@list.test', 'walk-f@list.test', 'walk-d@list.test'];
      for (const email of emails) await server.app.services.users.create({ email });
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await api('GET', `/api/v1/users?q=walk-&limit=3${cursor ? `&after=${cursor}` : ''}`, undefined, reader);
        expect(res.status).to.equal(200);
        seen.push(...res.body.users.map((u: { email: string }) => u.email));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(pages).to.equal(3);
      expect(seen).to.deep.equal([...emails].sort());
    });

    it('searches email and name case-insensitively, treating % and _ literally', async () => {
      await server.app.services.users.create({ email: 'zed@search.test', name: 'Zebra Keeper' });
      await server.app.services.users.create({ email: 'percent@search.test', name: '100% sure' });
      await server.app.services.users.create({ email: 'under_score@search.test' });
      const find = async (q: string) => (await api('GET', `/api/v1/users?q=${encodeURIComponent(q)}`, undefined, reader)).body.users.map((u: { email: string }) => u.email);
      expect(await find('ZEBRA k')).to.deep.equal(['zed@search.test']);
      expect(await find('ZED@SEARCH')).to.deep.equal(['zed@search.test']);
      expect(await find('%')).to.deep.equal(['percent@search.test']);
      expect(await find('_')).to.deep.equal(['under_score@search.test']);
      expect(await find('nobody-has-this')).to.deep.equal([]);
    });

    it('answers 50 users by default, and 400 for a bad limit or cursor', async () => {
      for (let i = 0; i < 51; i += 1) await server.app.services.users.create({ email: `bulk-${String(i).padStart(2, '0')}@list.test` });
      const first = await api('GET', '/api/v1/users?q=bulk-', undefined, reader);
      expect(first.body.users).to.have.length(50);
      const rest = await api('GET', `/api/v1/users?q=bulk-&after=${first.body.nextCursor}`, undefined, reader);
      expect(rest.body).to.deep.include({ nextCursor: null });
      expect(rest.body.users.map((u: { email: string }) => u.email)).to.deep.equal(['bulk-50@list.test']);
      for (const query of ['limit=0', 'limit=201', 'limit=ten', 'after=not-a-cursor']) {
        const res = await api('GET', `/api/v1/users?${query}`, undefined, reader);
        expect(res.status, query).to.equal(400);
        expect(res.body.error).to.equal('request.invalid');
      }
    });
  });

  describe('PATCH /api/v1/users/:id', () => {
    it('changes name and email (normalised), records user.updated with the previous email', async () => {
      const user = await createUser(server, 'before@example.com');
      server.clock.advance(1000);
      const res = await api('PATCH', `/api/v1/users/${user.id}`, { email: ' After@Example.com', name: 'Renamed' });
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.include({ email: 'after@example.com', name: 'Renamed', updatedAt: iso() });
      expect(res.body.createdAt).to.equal(new Date(user.createdAt).toISOString());
      const [updated] = await eventsOf(user.id);
      expect(updated).to.deep.include({ type: 'user.updated', details: { fields: ['email', 'name'], previousEmail: 'before@example.com', actor: `api_key:${writerId}` } });
      expect((await login('after@example.com')).status).to.equal(200);
      const cleared = await api('PATCH', `/api/v1/users/${user.id}`, { name: null });
      expect(cleared.body.name).to.equal(null);
    });

    it('answers 409 when the new email belongs to someone else, and changes nothing', async () => {
      await createUser(server, 'owner@example.com');
      const user = await createUser(server, 'thief@example.com');
      const res = await api('PATCH', `/api/v1/users/${user.id}`, { email: 'OWNER@example.com', name: 'Not applied' });
      expect(res.status).to.equal(409);
      expect(res.body.error).to.equal('user.email_taken');
      expect((await api('GET', `/api/v1/users/${user.id}`)).body).to.include({ email: 'thief@example.com', name: 'thief' });
      expect((await eventsOf(user.id)).map((e) => e.type)).to.deep.equal(['user.created']);
    });

    it('sets a password with argon2id: the old one stops working, the new one works', async () => {
      const user = await createUser(server, 'repass@example.com');
      const res = await api('PATCH', `/api/v1/users/${user.id}`, { password: 'a brand new passphrase' });
      expect(res.status).to.equal(200);
      expect((await login('repass@example.com')).status).to.equal(404);
      expect((await login('repass@example.com', 'a brand new passphrase')).status).to.equal(200);
      expect((await server.app.stores.users.findById(user.id))!.passwordHash).to.match(/^\$argon2id\$/);
      const types = (await eventsOf(user.id)).map((e) => e.type).filter((t) => t.startsWith('user.'));
      expect(types).to.deep.equal(['user.password_changed', 'user.created']);
    });

    it('records nothing for a change to the current values', async () => {
      const user = await createUser(server, 'same@example.com');
      server.clock.advance(1000);
      const res = await api('PATCH', `/api/v1/users/${user.id}`, { email: 'SAME@example.com', name: 'same' });
      expect(res.body.updatedAt).to.equal(new Date(user.updatedAt).toISOString());
      expect((await eventsOf(user.id)).map((e) => e.type)).to.deep.equal(['user.created']);
    });

    it('answers 400 for an empty or bad change and 404 for an unknown user', async () => {
      const user = await createUser(server, 'patchbad@example.com');
      const empty = await api('PATCH', `/api/v1/users/${user.id}`, {});
      expect(empty.status).to.equal(400);
      expect(empty.body.message).to.match(/give at least one of email, name and password/);
      const short = await api('PATCH', `/api/v1/users/${user.id}`, { password: 'short' });
      expect(short.body).to.deep.equal({ error: 'request.invalid', message: 'The password must be at least 8 characters long.', details: { field: 'password' } });
      const email = await api('PATCH', `/api/v1/users/${user.id}`, { email: 'a:b@example.com' });
      expect(email.body.details).to.deep.equal({ field: 'email' });
      expect((await api('PATCH', '/api/v1/users/nobody', { name: 'x' })).status).to.equal(404);
    });
  });

  describe('lifecycle', () => {
    it('suspends a user, who then cannot sign in; unsuspending lets them in again', async () => {
      const user = await createUser(server, 'suspend@example.com');
      expect((await login('suspend@example.com')).status).to.equal(200);
      const res = await api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: user.id, status: 'SUSPENDED' });
      const refused = await login('suspend@example.com');
      expect(refused.status).to.equal(404);
      expect(refused.body.error).to.equal('auth.login_failed');
      expect((await api('POST', `/api/v1/users/${user.id}/lifecycle/unsuspend`)).body.status).to.equal('ACTIVE');
      expect((await login('suspend@example.com')).status).to.equal(200);
      const types = (await eventsOf(user.id)).map((e) => e.type).filter((t) => t.startsWith('user.'));
      expect(types).to.deep.equal(['user.unsuspended', 'user.suspended', 'user.created']);
    });

    it('answers 409 user.already_in_state when nothing changes, and 404 for an unknown user', async () => {
      const user = await createUser(server, 'state@example.com');
      const un = await api('POST', `/api/v1/users/${user.id}/lifecycle/unsuspend`);
      expect(un.status).to.equal(409);
      expect(un.body).to.deep.equal({ error: 'user.already_in_state', message: 'The user is already in that state.', details: { status: 'ACTIVE' } });
      await api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`);
      expect((await api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`)).body.details).to.deep.equal({ status: 'SUSPENDED' });
      expect((await api('POST', '/api/v1/users/nobody/lifecycle/suspend')).status).to.equal(404);
    });

    it('lets exactly one of two concurrent suspensions win', async () => {
      const user = await createUser(server, 'race-suspend@example.com');
      const results = await Promise.all([1, 2].map(() => api('POST', `/api/v1/users/${user.id}/lifecycle/suspend`)));
      expect(results.map((r) => r.status).sort()).to.deep.equal([200, 409]);
      expect((await eventsOf(user.id)).filter((e) => e.type === 'user.suspended')).to.have.length(1);
    });
  });

  describe('DELETE /api/v1/users/:id', () => {
    it('deletes the user with its factors and challenges; a second delete is 404', async () => {
      if (isSqlite(server.db)) expect(await server.db.raw('PRAGMA foreign_keys')).to.deep.equal([{ foreign_keys: 1 }]);
      const user = await createUser(server, 'doomed@example.com');
      await giveAuthenticator(server, user.id);
      expect((await login('doomed@example.com')).status).to.equal(242);
      const count = async (table: string) => Number((await server.db(table).where({ user_id: user.id }).count({ n: '*' }))[0]!.n);
      expect([await count('factors'), await count('challenges')]).to.deep.equal([1, 1]);

      const res = await api('DELETE', `/api/v1/users/${user.id}`);
      expect(res.status).to.equal(204);
      expect(res.text).to.equal('');
      expect([await count('factors'), await count('challenges')]).to.deep.equal([0, 0]);
      expect((await api('GET', `/api/v1/users/${user.id}`)).status).to.equal(404);
      expect((await api('DELETE', `/api/v1/users/${user.id}`)).status).to.equal(404);
      const [deleted] = await eventsOf(user.id);
      expect(deleted).to.deep.include({ type: 'user.deleted', details: { email: 'doomed@example.com', actor: `api_key:${writerId}` } });
    });
  });

  describe('API keys', () => {
    const id = '00000000-0000-0000-0000-000000000000';
    const calls: Array<[string, string, unknown, 'users:read' | 'users:write']> = [
      ['POST', '/api/v1/users', { email: 'k@example.com' }, 'users:write'],
      ['GET', '/api/v1/users', undefined, 'users:read'],
      ['GET', `/api/v1/users/${id}`, undefined, 'users:read'],
      ['PATCH', `/api/v1/users/${id}`, { name: 'x' }, 'users:write'],
      ['POST', `/api/v1/users/${id}/lifecycle/suspend`, undefined, 'users:write'],
      ['POST', `/api/v1/users/${id}/lifecycle/unsuspend`, undefined, 'users:write'],
      ['DELETE', `/api/v1/users/${id}`, undefined, 'users:write'],
    ];

    it('answers 401 without a key, with an unknown key and with a revoked key', async () => {
      const { key: revoked, record } = await server.app.services.apiKeys.create({ name: 'revoked', scopes: ['users:read', 'users:write'] });
      await server.app.services.apiKeys.revoke(record.id);
      for (const [method, path, body] of calls) {
        expect((await api(method, path, body, null)).body.error, `${method} ${path}`).to.equal('auth.api_key_required');
        expect((await api(method, path, body, 'tfk_nope')).body.error, `${method} ${path}`).to.equal('auth.api_key_invalid');
        const res = await api(method, path, body, revoked);
        expect([res.status, res.body.error], `${method} ${path}`).to.deep.equal([401, 'auth.api_key_invalid']);
      }
    });

    it('answers 403 with the missing scope for a key without it', async () => {
      const events = (await server.app.services.apiKeys.create({ name: 'events', scopes: ['events:read'] })).key;
      for (const [method, path, body, scope] of calls) {
        const res = await api(method, path, body, scope === 'users:write' ? reader : events);
        expect([res.status, res.body.error, res.body.details], `${method} ${path}`).to.deep.equal([403, 'auth.scope_missing', { missing: [scope] }]);
      }
      expect(await server.app.services.users.findByEmail('k@example.com')).to.equal(undefined);
    });
  });
});
