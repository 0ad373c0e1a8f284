/**
 * Signing and cookie keys are created once, sealed at rest, and the same for
 * every start and every node on the same database.
 */
import { expect } from 'chai';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { createProviderKeysStore } from '../../src/store/provider-keys.ts';
import { loadProviderKeys } from '../../src/oidc/keys.ts';
import { createSealer } from '../../src/lib/seal.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { resetDatabase, TEST_SEAL_KEY } from '../helpers/server.ts';

describe('provider keys', () => {
  let db: Db;
  before(async () => {
    db = createDb(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:');
    await migrateLatest(db);
    await resetDatabase(db);
  });
  after(() => db.destroy());

  it('creates keys on first load and returns the same ones afterwards', async () => {
    const store = createProviderKeysStore(db, manualClock());
    const sealer = createSealer(TEST_SEAL_KEY);
    const first = await loadProviderKeys(store, sealer);
    const second = await loadProviderKeys(store, sealer);
    expect(first.jwks.keys).to.have.length(1);
    expect(first.jwks.keys[0]).to.include({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(first.jwks.keys[0]!.d).to.be.a('string');
    expect(second).to.deep.equal(first);
    expect(first.cookieKeys[0]).to.have.length(43);
  });

  it('keeps them sealed: no private key material in the table', async () => {
    const rows = await db('provider_keys').select('sealed');
    const { jwks, cookieKeys } = await loadProviderKeys(createProviderKeysStore(db, manualClock()), createSealer(TEST_SEAL_KEY));
    for (const { sealed } of rows) {
      expect(sealed).to.match(/^v1\./);
      expect(sealed).to.not.include(jwks.keys[0]!.d).and.not.include(cookieKeys[0]);
    }
  });

  it('refuses to open them under another seal key', async () => {
    const other = createSealer(Buffer.alloc(32, 7));
    let error: unknown;
    try { await loadProviderKeys(createProviderKeysStore(db, manualClock()), other); } catch (err) { error = err; }
    expect(String(error)).to.match(/failed authentication/);
  });
});
