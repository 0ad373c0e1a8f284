/**
 * Password sign-in against a real database: no enumeration through work done,
 * rehash of weaker hashes, suspended users refused.
 */
import { expect } from 'chai';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createUsersStore } from '../../src/store/users.ts';
import { createEventsStore } from '../../src/store/events.ts';
import { createPasswordHasher, parseArgon2Params, type PasswordHasher } from '../../src/users/passwords.ts';
import { createUserService } from '../../src/users/users.ts';
import { resetDatabase } from '../helpers/server.ts';

describe('password sign-in', () => {
  let db: Db;
  const params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
  const work: string[] = [];
  let service: ReturnType<typeof createUserService>;

  before(async () => {
    db = createDb(process.env.TEST_DATABASE_URL ?? 'sqlite::memory:');
    await migrateLatest(db);
    await resetDatabase(db);
    const real = createPasswordHasher(params);
    // Counts the argon2 work each call does, so the test can compare paths.
    const counting: PasswordHasher = {
      ...real,
      verify: async (h, p) => { work.push('verify'); return real.verify(h, p); },
      verifyDummy: async (p) => { work.push('verify'); return real.verifyDummy(p); },
    };
    const clock = manualClock();
    service = createUserService({ users: createUsersStore(db, clock), events: createEventsStore(db, clock), hasher: counting });
    await service.create({ email: 'known@example.com', password: 'correct horse battery staple' });
  });
  after(() => db.destroy());
  beforeEach(() => { work.length = 0; });

  it('does one argon2 verification for a known user, an unknown user and a user without a password alike', async () => {
    await service.create({ email: 'nopassword@example.com' });
    for (const email of ['known@example.com', 'unknown@example.com', 'nopassword@example.com']) {
      work.length = 0;
      expect(await service.authenticate(email, 'wrong password')).to.equal(undefined);
      expect(work, email).to.deep.equal(['verify']);
    }
  });

  it('finds the user whatever the case and spacing of the email', async () => {
    expect((await service.authenticate('  KNOWN@example.COM ', 'correct horse battery staple'))?.email).to.equal('known@example.com');
  });

  it('replaces a weaker stored hash at the next successful sign-in', async () => {
    const weak = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }).hash('correct horse battery staple');
    const user = await service.create({ email: 'weak@example.com' });
    await db('users').where({ id: user.id }).update({ password_hash: weak });
    expect(await service.authenticate('weak@example.com', 'wrong password')).to.equal(undefined);
    expect((await db('users').where({ id: user.id }).first()).password_hash).to.equal(weak);
    expect(await service.authenticate('weak@example.com', 'correct horse battery staple')).to.not.equal(undefined);
    const stored = (await db('users').where({ id: user.id }).first()).password_hash as string;
    expect(parseArgon2Params(stored)).to.deep.equal({ algorithm: 'argon2id', ...params });
  });

  it('refuses a suspended user even with the right password', async () => {
    const user = await service.create({ email: 'suspended@example.com', password: 'correct horse battery staple' });
    await db('users').where({ id: user.id }).update({ status: 'SUSPENDED' });
    expect(await service.authenticate('suspended@example.com', 'correct horse battery staple')).to.equal(undefined);
  });

  it('records failures without the password', async () => {
    await service.authenticate('known@example.com', 'a-secret-guess');
    const rows = await db('events').where({ type: 'login.password.failed' });
    expect(rows.length).to.be.greaterThan(0);
    expect(JSON.stringify(rows)).to.not.include('a-secret-guess');
  });
});
