/**
 * The challenge state machine against a real database: single use, attempt
 * caps under parallel guesses, binding, expiry and TOTP replay races.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { createUser, giveAuthenticator, totpNow } from '../helpers/oidc-flow.ts';
import { AppError } from '../../src/errors.ts';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}

describe('challenges', () => {
  let server: TestServer;
  let n = 0;

  before(async () => { server = await startServer(); });
  after(() => server.close());

  async function userWithFactor() {
    n += 1;
    const user = await createUser(server, `challenge-${n}@example.com`);
    const { secret } = await giveAuthenticator(server, user.id);
    return { user, secret };
  }

  function begin(userId: string, binding: string | null = null) {
    return server.app.services.challenges.begin({ userId, clientId: 'c', origin: 'start_api', binding, amr: ['pwd'] });
  }

  it('gives a random twoFactorId of at least 128 bits and stores only its hash', async () => {
    const { user } = await userWithFactor();
    const a = await begin(user.id);
    const b = await begin(user.id);
    expect(Buffer.from(a.twoFactorId, 'base64url').length).to.be.at.least(16);
    expect(a.twoFactorId).to.not.equal(b.twoFactorId);
    const ids = (await server.db('challenges').where({ user_id: user.id }).select('id')).map((r: { id: string }) => r.id);
    expect(ids).to.not.include(a.twoFactorId);
    expect(ids).to.have.length(2);
  });

  it('is single use: after success the same twoFactorId is not found', async () => {
    const { user, secret } = await userWithFactor();
    const { twoFactorId, challenge } = await begin(user.id);
    const out = await server.app.services.challenges.verify(challenge, { code: await totpNow(server, secret) });
    expect(out.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(await codeOf(server.app.services.challenges.find(twoFactorId))).to.equal('mfa.challenge_not_found');
    expect(await codeOf(server.app.services.challenges.verify(challenge, { code: '000000' }))).to.equal('mfa.challenge_not_found');
  });

  it('refuses a twoFactorId presented with another binding exactly like an unknown one', async () => {
    const { user } = await userWithFactor();
    const { twoFactorId } = await begin(user.id, 'interaction-A');
    expect(await codeOf(server.app.services.challenges.find(twoFactorId, 'interaction-B'))).to.equal('mfa.challenge_not_found');
    expect(await codeOf(server.app.services.challenges.find('x'.repeat(43)))).to.equal('mfa.challenge_not_found');
    expect(await codeOf(server.app.services.challenges.find(twoFactorId, 'interaction-A'))).to.equal('ok');
  });

  it('expires after its lifetime', async () => {
    const { user, secret } = await userWithFactor();
    const { twoFactorId, challenge } = await begin(user.id);
    server.clock.advance(server.config.ttl.challenge * 1000 + 1);
    expect(await codeOf(server.app.services.challenges.find(twoFactorId))).to.equal('mfa.challenge_not_found');
    expect(await codeOf(server.app.services.challenges.verify(challenge, { code: await totpNow(server, secret) }))).to.equal('mfa.challenge_not_found');
  });

  it('evaluates at most the attempt limit when 50 wrong codes and the right one arrive at once', async () => {
    const { user, secret } = await userWithFactor();
    const { challenge } = await begin(user.id);
    const right = await totpNow(server, secret);
    const wrong = right === '123456' ? '654321' : '123456';
    const attempts = [...Array.from({ length: 50 }, () => wrong), right];
    const results = await Promise.all(attempts.map((code) => codeOf(server.app.services.challenges.verify(challenge, { code }))));
    const evaluated = results.filter((r) => r === 'ok' || r === 'mfa.invalid_code').length;
    expect(evaluated).to.be.at.most(server.config.mfa.maxAttempts);
    const row = await server.db('challenges').where({ id: challenge.id }).first();
    expect(Number(row.attempts)).to.be.at.most(server.config.mfa.maxAttempts);
  });

  it('lets exactly one of two concurrent sign-ins spend the same code', async () => {
    const { user, secret } = await userWithFactor();
    const code = await totpNow(server, secret);
    const [a, b] = await Promise.all([begin(user.id), begin(user.id)]);
    const results = await Promise.all([a, b].map(({ challenge }) => codeOf(server.app.services.challenges.verify(challenge, { code }))));
    expect(results.sort()).to.deep.equal(['mfa.invalid_code', 'ok']);
  });

  it('refuses a method that is not on the challenge', async () => {
    const { user } = await userWithFactor();
    const other = await userWithFactor();
    const { challenge } = await begin(user.id);
    const foreign = (await server.app.stores.factors.listByUser(other.user.id))[0]!.id;
    expect(await codeOf(server.app.services.challenges.verify(challenge, { methodId: foreign, code: '123456' }))).to.equal('mfa.method_not_available');
  });

  it('needs an active factor to begin', async () => {
    n += 1;
    const user = await createUser(server, `no-factor-${n}@example.com`);
    expect(await codeOf(begin(user.id))).to.equal('mfa.enrollment_required');
  });
});
