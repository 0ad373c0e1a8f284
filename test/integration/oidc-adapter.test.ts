/**
 * Contract suite for the oidc-provider storage adapter (src/oidc/adapter.ts).
 * Runs on in-memory SQLite, or on PostgreSQL when TEST_DATABASE_URL names one.
 */
import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type JWK } from 'oidc-provider';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createAdapterClass, sweepExpired } from '../../src/oidc/adapter.ts';

const T0 = 1_800_000_000_000;
const T0_SECONDS = T0 / 1000;
const CLIENT_APP = { client_id: 'app', client_secret: 'app-secret', redirect_uris: ['https://app.example/cb'] };

interface StoredRow {
  model: string; id: string; grant_id: string | null; uid: string | null; user_code: string | null;
  expires_at: number | null; consumed_at: number | null;
}

describe('oidc-provider adapter contract', () => {
  let db: Db;
  const clock = manualClock(T0);
  const clientLookups: string[] = [];
  let AdapterClass: new (name: string) => Adapter;
  const adapter = (model: string) => new AdapterClass(model);

  const rows = async (): Promise<StoredRow[]> =>
    db('oidc_payloads').select('model', 'id', 'grant_id', 'uid', 'user_code', 'expires_at', 'consumed_at').orderBy(['model', 'id']);
  const row = async (model: string, id: string): Promise<StoredRow | undefined> =>
    (await rows()).find((r) => r.model === model && r.id === id);

  /** Resolves to the rejection of `promise`; fails the test if it fulfils. */
  const rejectionOf = (promise: Promise<unknown>): Promise<Error> =>
    promise.then(() => { throw new Error('expected a rejection'); }, (err: Error) => err);

  before(async () => {
    db = createDb(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:');
    await migrateLatest(db);
    AdapterClass = createAdapterClass({
      db,
      clock,
      findClient: async (id) => {
        clientLookups.push(id);
        return id === CLIENT_APP.client_id ? { ...CLIENT_APP } : undefined;
      },
    });
  });
  beforeEach(async () => {
    await db('oidc_payloads').del();
    clock.set(T0);
    clientLookups.length = 0;
  });
  after(() => db.destroy());

  describe('upsert and find', () => {
    for (const model of ['Session', 'AccessToken', 'AuthorizationCode', 'Interaction', 'Grant', 'RefreshToken']) {
      it(`round-trips a ${model} payload and indexes its lookup keys`, async () => {
        const payload: AdapterPayload = {
          kind: model, jti: `${model}-1`, accountId: 'user-1', grantId: 'grant-1', uid: `uid-${model}`,
          iat: T0_SECONDS, exp: T0_SECONDS + 60, scope: 'openid email', amr: ['pwd', 'otp'],
          extra: { nested: { list: [1, 'two', null], note: 'größe ✓' } },
        };
        await adapter(model).upsert(`${model}-1`, payload, 60);

        expect(await adapter(model).find(`${model}-1`)).to.deep.equal(payload);
        expect(await adapter(model).find('unknown')).to.equal(undefined);
        expect(await row(model, `${model}-1`)).to.deep.equal({
          model, id: `${model}-1`, grant_id: 'grant-1', uid: `uid-${model}`, user_code: null,
          expires_at: T0 + 60_000, consumed_at: null,
        });
      });
    }

    it('stores the expiry as now + expiresIn, the same instant as the payload exp', async () => {
      const payload = { jti: 'at', exp: T0_SECONDS + 3600 };
      await adapter('AccessToken').upsert('at', payload, 3600);
      expect((await row('AccessToken', 'at'))?.expires_at).to.equal(payload.exp * 1000);
    });

    it('keeps models apart when ids collide', async () => {
      await adapter('AccessToken').upsert('same', { kind: 'AccessToken' }, 60);
      await adapter('RefreshToken').upsert('same', { kind: 'RefreshToken' }, 60);
      expect(await adapter('AccessToken').find('same')).to.deep.equal({ kind: 'AccessToken' });
      expect(await adapter('RefreshToken').find('same')).to.deep.equal({ kind: 'RefreshToken' });
      expect(await adapter('Grant').find('same')).to.equal(undefined);
    });

    it('overwrites the payload, lookup keys and expiry on a second upsert', async () => {
      const session = adapter('Session');
      await session.upsert('s1', { uid: 'old-uid', accountId: 'a', grantId: 'g-old' }, 10);
      await session.upsert('s1', { uid: 'new-uid', accountId: 'b' }, 100);

      clock.advance(50_000);
      expect(await session.find('s1')).to.deep.equal({ uid: 'new-uid', accountId: 'b' });
      expect(await session.findByUid('old-uid')).to.equal(undefined);
      expect(await row('Session', 's1')).to.include({ uid: 'new-uid', grant_id: null, expires_at: T0 + 100_000 });
      expect(await rows()).to.have.length(1);
    });
  });

  describe('secondary lookups', () => {
    it('finds a Session by uid, within its own model only', async () => {
      await adapter('Session').upsert('sess', { uid: 'shared-uid', accountId: 'u1' }, 60);
      await adapter('Interaction').upsert('intr', { uid: 'shared-uid', returnTo: '/auth/x' }, 60);

      expect(await adapter('Session').findByUid('shared-uid')).to.deep.equal({ uid: 'shared-uid', accountId: 'u1' });
      expect(await adapter('Interaction').findByUid('shared-uid')).to.deep.equal({ uid: 'shared-uid', returnTo: '/auth/x' });
      expect(await adapter('Session').findByUid('other-uid')).to.equal(undefined);
    });

    it('finds a DeviceCode by user code and follows a changed code', async () => {
      const device = adapter('DeviceCode');
      await device.upsert('dc1', { userCode: 'ABCD-EFGH', grantId: 'g' }, 600);
      expect(await device.findByUserCode('ABCD-EFGH')).to.deep.equal({ userCode: 'ABCD-EFGH', grantId: 'g' });
      expect(await device.findByUserCode('ZZZZ-ZZZZ')).to.equal(undefined);
      expect(await adapter('AccessToken').findByUserCode('ABCD-EFGH')).to.equal(undefined);

      await device.upsert('dc1', { userCode: 'WXYZ-1234' }, 600);
      expect(await device.findByUserCode('ABCD-EFGH')).to.equal(undefined);
      expect(await device.findByUserCode('WXYZ-1234')).to.deep.equal({ userCode: 'WXYZ-1234' });
    });
  });

  describe('consume', () => {
    it('makes find report `consumed` as epoch seconds, for that model and id only', async () => {
      const codes = adapter('AuthorizationCode');
      await codes.upsert('c1', { grantId: 'g1' }, 60);
      await codes.upsert('c2', { grantId: 'g1' }, 60);
      await adapter('RefreshToken').upsert('c1', { grantId: 'g1' }, 60);
      expect(await codes.find('c1')).to.not.have.property('consumed');

      clock.advance(1_500);
      await codes.consume('c1');
      const found = await codes.find('c1');
      expect(found?.consumed).to.be.a('number').and.equal(T0_SECONDS + 1);
      expect(found).to.deep.equal({ grantId: 'g1', consumed: T0_SECONDS + 1 });
      expect(await codes.find('c2')).to.deep.equal({ grantId: 'g1' });
      expect(await adapter('RefreshToken').find('c1')).to.deep.equal({ grantId: 'g1' });
    });

    it('keeps the first consumption time', async () => {
      const tokens = adapter('RefreshToken');
      await tokens.upsert('rt', { grantId: 'g' }, 600);
      await tokens.consume('rt');
      clock.advance(30_000);
      await tokens.consume('rt');
      expect((await tokens.find('rt'))?.consumed).to.equal(T0_SECONDS);
    });

    it('survives a later upsert of the same id, so a spent code stays spent', async () => {
      const codes = adapter('AuthorizationCode');
      await codes.upsert('c', { grantId: 'g', scope: 'openid' }, 60);
      await codes.consume('c');
      await codes.upsert('c', { grantId: 'g', scope: 'openid email' }, 60);
      expect(await codes.find('c')).to.deep.equal({ grantId: 'g', scope: 'openid email', consumed: T0_SECONDS });
    });

    it('does nothing for an unknown id', async () => {
      await adapter('AuthorizationCode').consume('missing');
      expect(await rows()).to.deep.equal([]);
    });
  });

  describe('destroy and revokeByGrantId', () => {
    it('destroys one payload of one model', async () => {
      await adapter('AccessToken').upsert('t1', { jti: 't1' }, 60);
      await adapter('AccessToken').upsert('t2', { jti: 't2' }, 60);
      await adapter('RefreshToken').upsert('t1', { jti: 't1' }, 60);

      await adapter('AccessToken').destroy('t1');
      expect(await adapter('AccessToken').find('t1')).to.equal(undefined);
      expect(await adapter('AccessToken').find('t2')).to.deep.equal({ jti: 't2' });
      expect(await adapter('RefreshToken').find('t1')).to.deep.equal({ jti: 't1' });
    });

    it("revokes only this model's rows of that grant", async () => {
      await adapter('AccessToken').upsert('at-g1a', { grantId: 'g1' }, 60);
      await adapter('AccessToken').upsert('at-g1b', { grantId: 'g1' }, 0);
      await adapter('AccessToken').upsert('at-g2', { grantId: 'g2' }, 60);
      await adapter('RefreshToken').upsert('rt-g1', { grantId: 'g1' }, 60);
      await adapter('AuthorizationCode').upsert('ac-g1', { grantId: 'g1' }, 60);
      await adapter('Grant').upsert('g1', { jti: 'g1', accountId: 'u1' }, 60);

      await adapter('AccessToken').revokeByGrantId('g1');
      expect((await rows()).map((r) => `${r.model}/${r.id}`)).to.deep.equal([
        'AccessToken/at-g2', 'AuthorizationCode/ac-g1', 'Grant/g1', 'RefreshToken/rt-g1',
      ]);
    });

    it('revokes by the grant id of the latest upsert', async () => {
      const tokens = adapter('AccessToken');
      await tokens.upsert('t', { grantId: 'first' }, 60);
      await tokens.upsert('t', { grantId: 'second' }, 60);
      await tokens.revokeByGrantId('first');
      expect(await tokens.find('t')).to.deep.equal({ grantId: 'second' });
      await tokens.revokeByGrantId('second');
      expect(await tokens.find('t')).to.equal(undefined);
    });
  });

  describe('expiry', () => {
    it('hides a payload from every finder from the instant it expires', async () => {
      await adapter('Session').upsert('s', { uid: 'su' }, 10);
      await adapter('DeviceCode').upsert('d', { userCode: 'CODE' }, 10);

      clock.advance(9_999);
      expect(await adapter('Session').find('s')).to.deep.equal({ uid: 'su' });
      expect(await adapter('Session').findByUid('su')).to.deep.equal({ uid: 'su' });
      expect(await adapter('DeviceCode').findByUserCode('CODE')).to.deep.equal({ userCode: 'CODE' });

      clock.advance(1);
      expect(await adapter('Session').find('s')).to.equal(undefined);
      expect(await adapter('Session').findByUid('su')).to.equal(undefined);
      expect(await adapter('DeviceCode').find('d')).to.equal(undefined);
      expect(await adapter('DeviceCode').findByUserCode('CODE')).to.equal(undefined);
    });

    it('sweepExpired deletes expired rows of every model and returns the count', async () => {
      await adapter('Interaction').upsert('i-short', { uid: 'x' }, 10);
      await adapter('AccessToken').upsert('at-short', {}, 20);
      await adapter('RefreshToken').upsert('rt-long', {}, 3600);
      await adapter('Grant').upsert('g-forever', {}, undefined);

      expect(await sweepExpired(db, clock)).to.equal(0);
      clock.advance(20_000);
      expect(await sweepExpired(db, clock)).to.equal(2);
      expect((await rows()).map((r) => r.id)).to.deep.equal(['g-forever', 'rt-long']);
      expect(await sweepExpired(db, clock)).to.equal(0);
    });

    it('never expires a payload stored without expiresIn', async () => {
      await adapter('Grant').upsert('no-ttl', { accountId: 'u' }, undefined);
      await adapter('Grant').upsert('zero-ttl', { accountId: 'v' }, 0);
      clock.advance(10 * 365 * 86_400_000);

      expect(await adapter('Grant').find('no-ttl')).to.deep.equal({ accountId: 'u' });
      expect(await adapter('Grant').find('zero-ttl')).to.deep.equal({ accountId: 'v' });
      expect(await sweepExpired(db, clock)).to.equal(0);
      expect((await rows()).map((r) => r.expires_at)).to.deep.equal([null, null]);
    });
  });

  describe('Client model', () => {
    it('reads clients through findClient and never from the payload table', async () => {
      await db('oidc_payloads').insert({ model: 'Client', id: 'ghost', payload: '{"client_id":"ghost"}' });
      const clients = adapter('Client');
      expect(await clients.find('app')).to.deep.equal(CLIENT_APP);
      expect(await clients.find('ghost')).to.equal(undefined);
      expect(clientLookups).to.deep.equal(['app', 'ghost']);
    });

    it('refuses every write and leaves the table untouched', async () => {
      const clients = adapter('Client');
      const attempts: Array<[string, Promise<unknown>]> = [
        ['upsert', clients.upsert('app', { client_id: 'app' }, 0)],
        ['consume', clients.consume('app')],
        ['destroy', clients.destroy('app')],
        ['revokeByGrantId', clients.revokeByGrantId('g')],
      ];
      for (const [method, attempt] of attempts) {
        const err = await rejectionOf(attempt);
        expect(err.message, method).to.equal('clients are managed through Twofold, not the provider');
      }
      expect(await rows()).to.deep.equal([]);
    });
  });

  describe('under a real oidc-provider', () => {
    // Proves the class satisfies the provider's adapter contract, not just ours.
    let provider: Provider;
    before(async () => {
      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      provider = new Provider('https://idp.example', {
        adapter: AdapterClass,
        jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test', alg: 'RS256' } as JWK] },
        features: { devInteractions: { enabled: false } },
        ttl: { AuthorizationCode: 60, AccessToken: 60, Grant: 60, Session: 60, Interaction: 60, IdToken: 60 },
      });
    });

    it('loads a client from findClient and spends an authorization code once', async () => {
      const client = await provider.Client.find('app');
      expect(client?.clientId).to.equal('app');
      expect(client?.redirectUris).to.deep.equal(CLIENT_APP.redirect_uris);
      expect(await provider.Client.find('nope')).to.equal(undefined);

      const code = new provider.AuthorizationCode({
        client: client!, accountId: 'user-1', grantId: 'grant-1', gty: 'authorization_code',
        redirectUri: CLIENT_APP.redirect_uris[0], scope: 'openid',
      });
      const value = await code.save();
      expect((await provider.AuthorizationCode.find(value))?.isValid).to.equal(true);

      await code.consume();
      const spent = await provider.AuthorizationCode.find(value);
      // @types/oidc-provider does not declare `consumed` on AuthorizationCode.
      expect((spent as { consumed?: unknown } | undefined)?.consumed).to.equal(T0_SECONDS);
      expect(spent?.isValid).to.equal(false);

      await provider.AuthorizationCode.revokeByGrantId('grant-1');
      expect(await provider.AuthorizationCode.find(value)).to.equal(undefined);
    });
  });
});
