/**
 * The audit trail over HTTP: every user change leaves an event with who made
 * it, filters and time windows select exactly what they say, paging neither
 * skips nor repeats, and nothing secret is ever in an event.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('events API', () => {
  let server: TestServer;
  let admin: string;
  let adminId: string;
  let reader: string;
  let readerId: string;

  async function api(method: string, path: string, body?: unknown, apiKey: string | null = admin) {
    const res = await fetch(`${server.origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, text, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
  }

  const events = async (query: string) => {
    const res = await api('GET', `/api/v1/events?${query}`, undefined, reader);
    expect(res.status, res.text).to.equal(200);
    return res.body as { events: Array<{ id: number; at: string; type: string; userId: string | null; details: Record<string, unknown> }>; nextCursor: string | null };
  };

  before(async () => {
    server = await startServer();
    const a = await server.app.services.apiKeys.create({ name: 'admin', scopes: ['users:read', 'users:write'] });
    admin = a.key;
    adminId = a.record.id;
    const r = await server.app.services.apiKeys.create({ name: 'auditor', scopes: ['events:read'] });
    reader = r.key;
    readerId = r.record.id;
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  it('records every user change, newest first, with the time, the caller and no secret', async () => {
    const at = new Date(server.clock.now()).toISOString();
    const created = await api('POST', '/api/v1/users', { email: 'trail@example.com', password: 'first secret passphrase' });
    const id = created.body.id as string;
    await api('PATCH', `/api/v1/users/${id}`, { name: 'Trail', password: 'second secret passphrase' });
    await api('POST', `/api/v1/users/${id}/lifecycle/suspend`);
    await api('POST', `/api/v1/users/${id}/lifecycle/unsuspend`);
    expect((await api('DELETE', `/api/v1/users/${id}`)).status).to.equal(204);

    const page = await events(`userId=${id}`);
    expect(page.nextCursor).to.equal(null);
    const actor = `api_key:${adminId}`;
    expect(page.events.map(({ id: _id, ...e }) => e)).to.deep.equal([
      { at, type: 'user.deleted', userId: id, clientId: null, ip: '127.0.0.1', details: { email: 'trail@example.com', actor } },
      { at, type: 'user.unsuspended', userId: id, clientId: null, ip: '127.0.0.1', details: { actor } },
      { at, type: 'user.suspended', userId: id, clientId: null, ip: '127.0.0.1', details: { actor } },
      { at, type: 'user.password_changed', userId: id, clientId: null, ip: '127.0.0.1', details: { actor } },
      { at, type: 'user.updated', userId: id, clientId: null, ip: '127.0.0.1', details: { fields: ['name'], actor } },
      { at, type: 'user.created', userId: id, clientId: null, ip: '127.0.0.1', details: { actor } },
    ]);
    const ids = page.events.map((e) => e.id);
    expect(ids).to.deep.equal([...ids].sort((x, y) => y - x));

    const everything = await api('GET', '/api/v1/events?limit=200', undefined, reader);
    expect(everything.text).to.not.match(/secret passphrase|password_?hash|\$argon2/i);
  });

  it('filters by type and by a time window (since inclusive, until exclusive)', async () => {
    server.clock.advance(3_600_000);
    const t0 = server.clock.now();
    const made: string[] = [];
    for (const name of ['w0', 'w1', 'w2']) {
      made.push((await api('POST', '/api/v1/users', { email: `${name}@window.test` })).body.id);
      server.clock.advance(60_000);
    }
    const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    const windowed = await events(`type=user.created&since=${iso(t0 + 60_000)}&until=${iso(t0 + 120_000)}`);
    expect(windowed.events.map((e) => e.userId)).to.deep.equal([made[1]]);
    const since = await events(`type=user.created&since=${iso(t0 + 60_000)}`);
    expect(since.events.map((e) => e.userId)).to.deep.equal([made[2], made[1]]);
    const offset = await events(`type=user.created&until=${encodeURIComponent(new Date(t0 + 60_000).toISOString().replace('Z', '+00:00'))}&since=${iso(t0)}`);
    expect(offset.events.map((e) => e.userId)).to.deep.equal([made[0]]);

    const used = await events('type=api_key.used&limit=1');
    expect(used.events[0]!.details).to.deep.equal({ keyId: readerId, route: 'GET /api/v1/events' });
  });

  it('walks every page with a small limit and sees each event exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push((await api('POST', '/api/v1/users', { email: `page-${i}@events.test` })).body.id);
    const all = await events('type=user.created&limit=200');
    const expected = all.events.map((e) => e.id);
    expect(expected.length).to.be.greaterThanOrEqual(7);

    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await events(`type=user.created&limit=3${cursor ? `&after=${cursor}` : ''}`);
      expect(page.events.length).to.be.at.most(3);
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(seen).to.deep.equal(expected);
    expect(pages).to.equal(Math.ceil(expected.length / 3));
    for (const id of ids) expect(all.events.filter((e) => e.userId === id)).to.have.length(1);
  });

  it('answers 50 events by default', async () => {
    for (let i = 0; i < 60; i += 1) await api('POST', '/api/v1/users', { email: `bulk-${i}@events.test` });
    const page = await events('');
    expect(page.events).to.have.length(50);
    expect(page.nextCursor).to.be.a('string');
  });

  it('answers 400 for an unknown type, a bad time, limit or cursor', async () => {
    for (const query of ['type=user.exploded', 'since=yesterday', 'until=2026-13-01T00:00:00Z', 'limit=0', 'limit=201', 'after=bm9wZQ', 'after=' + Buffer.from('{"i":-1}').toString('base64url')]) {
      const res = await api('GET', `/api/v1/events?${query}`, undefined, reader);
      expect([res.status, res.body.error], query).to.deep.equal([400, 'request.invalid']);
      expect(res.body.details.in, query).to.equal('query');
    }
  });

  it('needs a live API key with events:read', async () => {
    expect((await api('GET', '/api/v1/events', undefined, null)).body.error).to.equal('auth.api_key_required');
    expect((await api('GET', '/api/v1/events', undefined, 'tfk_nope')).body.error).to.equal('auth.api_key_invalid');
    const scoped = await api('GET', '/api/v1/events', undefined, admin);
    expect([scoped.status, scoped.body.error, scoped.body.details]).to.deep.equal([403, 'auth.scope_missing', { missing: ['events:read'] }]);
    const { key, record } = await server.app.services.apiKeys.create({ name: 'gone', scopes: ['events:read'] });
    expect((await api('GET', '/api/v1/events', undefined, key)).status).to.equal(200);
    await server.app.services.apiKeys.revoke(record.id);
    const revoked = await api('GET', '/api/v1/events', undefined, key);
    expect([revoked.status, revoked.body.error]).to.deep.equal([401, 'auth.api_key_invalid']);
  });
});
