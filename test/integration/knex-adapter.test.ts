/**
 * Contract tests for the oidc-provider storage adapter, on SQLite (and on
 * PostgreSQL when TEST_DATABASE_URL points at one).
 */
import { expect } from 'chai';
import type { Adapter } from 'oidc-provider';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createAdapterClass, sweepExpired } from '../../src/oidc/knex-adapter.ts';

describe('oidc-provider adapter', () => {
  let db: Db;
  const clock = manualClock(1_800_000_000_000);
  const clients: Record<string, Record<string, unknown>> = { app: { client_id: 'app', redirect_uris: ['https://app.example/cb'] } };
  let Adapter: new (name: string) => Adapter;

  before(async () => {
    db = createDb(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:');
    await migrateLatest(db);
    Adapter = createAdapterClass({ db, clock, findClient: async (id) => clients[id] });
  });
  beforeEach(() => db('oidc_payloads').del());
  after(() => db.destroy());

  for (const model of ['Session', 'AccessToken', 'AuthorizationCode', 'Interaction', 'Grant', 'RefreshToken']) {
    it(`round-trips a ${model}`, async () => {
      const a = new Adapter(model);
      const payload = { jti: 'id1', kind: model, accountId: 'u1', exp: 1, nested: { a: [1, 2] } };
      await a.upsert('id1', payload, 60);
      expect(await a.find('id1')).to.deep.equal(payload);
      expect(await a.find('other')).to.equal(undefined);
    });
  }

  it('keeps models apart', async () => {
    await new Adapter('AccessToken').upsert('same', { kind: 'AccessToken' }, 60);
    await new Adapter('RefreshToken').upsert('same', { kind: 'RefreshToken' }, 60);
    expect(await new Adapter('AccessToken').find('same')).to.deep.equal({ kind: 'AccessToken' });
    expect(await new Adapter('RefreshToken').find('same')).to.deep.equal({ kind: 'RefreshToken' });
  });

  it('overwrites on upsert and resets the expiry', async () => {
    const a = new Adapter('Session');
    await a.upsert('s', { v: 1 }, 10);
    await a.upsert('s', { v: 2 }, 100);
    clock.advance(50_000);
    expect(await a.find('s')).to.deep.equal({ v: 2 });
    clock.advance(-50_000);
  });

  it('finds by uid and by user code', async () => {
    await new Adapter('Session').upsert('s1', { uid: 'uid-1' }, 60);
    await new Adapter('DeviceCode').upsert('d1', { userCode: 'ABCD-EFGH' }, 60);
    expect(await new Adapter('Session').findByUid('uid-1')).to.deep.equal({ uid: 'uid-1' });
    expect(await new Adapter('Session').findByUid('uid-2')).to.equal(undefined);
    expect(await new Adapter('DeviceCode').findByUserCode('ABCD-EFGH')).to.deep.equal({ userCode: 'ABCD-EFGH' });
  });

  it('marks a payload consumed with the time in seconds', async () => {
    const a = new Adapter('AuthorizationCode');
    await a.upsert('c', { grantId: 'g' }, 60);
    await a.consume('c');
    expect(await a.find('c')).to.deep.equal({ grantId: 'g', consumed: Math.floor(clock.now() / 1000) });
  });

  it('destroys one payload', async () => {
    const a = new Adapter('AccessToken');
    await a.upsert('t1', {}, 60);
    await a.upsert('t2', {}, 60);
    await a.destroy('t1');
    expect(await a.find('t1')).to.equal(undefined);
    expect(await a.find('t2')).to.deep.equal({});
  });

  it('revokes by grant id within its own model only', async () => {
    const at = new Adapter('AccessToken');
    const rt = new Adapter('RefreshToken');
    await at.upsert('a1', { grantId: 'g1' }, 60);
    await at.upsert('a2', { grantId: 'g2' }, 60);
    await rt.upsert('r1', { grantId: 'g1' }, 60);
    await at.revokeByGrantId('g1');
    expect(await at.find('a1')).to.equal(undefined);
    expect(await at.find('a2')).to.deep.equal({ grantId: 'g2' });
    expect(await rt.find('r1')).to.deep.equal({ grantId: 'g1' });
  });

  it('hides expired payloads, and the sweeper deletes them', async () => {
    const a = new Adapter('Interaction');
    await a.upsert('short', { uid: 'u-short' }, 10);
    await a.upsert('long', {}, 1000);
    await a.upsert('forever', {}, 0);
    clock.advance(10_000);
    expect(await a.find('short')).to.equal(undefined);
    expect(await a.findByUid('u-short')).to.equal(undefined);
    expect(await a.find('long')).to.deep.equal({});
    expect(await sweepExpired(db, clock)).to.equal(1);
    clock.advance(10_000_000);
    expect(await a.find('forever')).to.deep.equal({});
    expect(await sweepExpired(db, clock)).to.equal(1);
    const left = await db('oidc_payloads').select('id');
    expect(left.map((r: { id: string }) => r.id)).to.deep.equal(['forever']);
  });

  it('serves clients from Twofold and refuses to write them', async () => {
    const a = new Adapter('Client');
    expect(await a.find('app')).to.deep.equal(clients.app);
    expect(await a.find('nope')).to.equal(undefined);
    let error: unknown;
    try { await a.upsert('x', {}, 0); } catch (err) { error = err; }
    expect(String(error)).to.match(/managed through Twofold/);
  });
});
