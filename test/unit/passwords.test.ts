import { expect } from 'chai';
import { createPasswordHasher, parseArgon2Params } from '../../src/users/passwords.ts';

describe('password hashing', () => {
  const params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
  const hasher = createPasswordHasher(params);

  it('hashes with argon2id at the configured parameters and verifies', async () => {
    const h = await hasher.hash('correct horse battery staple');
    expect(parseArgon2Params(h)).to.deep.equal({ algorithm: 'argon2id', ...params });
    expect(await hasher.verify(h, 'correct horse battery staple')).to.equal(true);
    expect(await hasher.verify(h, 'correct horse battery stapl')).to.equal(false);
  });

  it('treats a malformed stored hash as a failed check, not an error', async () => {
    expect(await hasher.verify('not-a-hash', 'x')).to.equal(false);
  });

  it('asks for a rehash when the stored hash is weaker than policy', async () => {
    const weak = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }).hash('pw');
    expect(hasher.needsRehash(weak)).to.equal(true);
    expect(hasher.needsRehash(await hasher.hash('pw'))).to.equal(false);
    expect(hasher.needsRehash('$2b$10$abcdefghijklmnopqrstuv')).to.equal(true);
  });
});
