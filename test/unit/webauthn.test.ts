import { expect } from 'chai';
import {
  amrFor, createWebAuthn, credentialIdOf, WebAuthnError, type StoredCredential, type WebAuthnFailure,
} from '../../src/mfa/factors/webauthn.ts';
import { SoftAuthenticator, type SoftAuthenticatorOptions } from '../helpers/soft-authenticator.ts';

const RP_ID = 'id.twofold.test';
const ORIGIN = `https://${RP_ID}`;
const USER_ID = '6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b';
const webauthn = createWebAuthn({ rpId: RP_ID, rpName: 'Twofold', origin: ORIGIN });

const b64u = (s: string) => Buffer.from(s).toString('base64url');

async function failure(promise: Promise<unknown>): Promise<WebAuthnError> {
  try {
    await promise;
  } catch (e) {
    expect(e).to.be.instanceOf(WebAuthnError);
    return e as WebAuthnError;
  }
  return expect.fail('expected a WebAuthnError');
}

async function rejects(promise: Promise<unknown>, reason: WebAuthnFailure): Promise<void> {
  const error = await failure(promise);
  expect(error.reason).to.equal(reason);
  expect(error.message).to.equal(`webauthn: ${reason}`);
}

async function enrol(options: Partial<SoftAuthenticatorOptions> = {}) {
  const authenticator = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, ...options });
  const { options: creation, challenge } = await webauthn.registrationOptions({
    userId: USER_ID, userName: 'alice@example.com', displayName: 'Alice', existing: [],
  });
  const credential = await webauthn.verifyRegistration({ response: authenticator.register(creation), expectedChallenge: challenge });
  return { authenticator, credential };
}

async function assertion(authenticator: SoftAuthenticator, credential: StoredCredential, overrides = {}) {
  const { options, challenge } = await webauthn.authenticationOptions({ credentials: [credential] });
  return { response: authenticator.authenticate(options, overrides), challenge };
}

describe('WebAuthn second factor', () => {
  describe('createWebAuthn', () => {
    it('refuses an origin outside the RP ID or with a path', () => {
      expect(() => createWebAuthn({ rpId: RP_ID, rpName: 'T', origin: 'https://evil.test' })).to.throw(/RP ID/);
      expect(() => createWebAuthn({ rpId: RP_ID, rpName: 'T', origin: `${ORIGIN}/login` })).to.throw(/bare origin/);
      expect(() => createWebAuthn({ rpId: RP_ID, rpName: 'T', origin: [] })).to.throw(/origin/);
    });

    it('accepts several origins within the RP ID', async () => {
      const multi = createWebAuthn({ rpId: 'twofold.test', rpName: 'T', origin: ['https://twofold.test', 'https://id.twofold.test:8443'] });
      const authenticator = new SoftAuthenticator({ origin: 'https://id.twofold.test:8443', rpId: 'twofold.test' });
      const { options, challenge } = await multi.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [] });
      const credential = await multi.verifyRegistration({ response: authenticator.register(options), expectedChallenge: challenge });
      expect(credential.credentialId).to.equal(authenticator.id);
    });
  });

  describe('registrationOptions', () => {
    it('asks for a preferred resident key, preferred UV, no attestation, ES256 or RS256', async () => {
      const { options, challenge } = await webauthn.registrationOptions({
        userId: USER_ID, userName: 'alice@example.com', displayName: 'Alice', existing: [],
      });
      expect(options.rp).to.deep.equal({ id: RP_ID, name: 'Twofold' });
      expect(options.user).to.deep.equal({ id: b64u(USER_ID), name: 'alice@example.com', displayName: 'Alice' });
      expect(options.pubKeyCredParams.map((p) => p.alg)).to.deep.equal([-7, -257]);
      expect(options.authenticatorSelection).to.include({ residentKey: 'preferred', userVerification: 'preferred' });
      expect(options.attestation).to.equal('none');
      expect(options.timeout).to.equal(60_000);
      expect(challenge).to.equal(options.challenge);
      expect(Buffer.from(challenge, 'base64url').length).to.be.at.least(32);
    });

    it('gives a stable user handle and a fresh challenge each time', async () => {
      const input = { userId: USER_ID, userName: 'a', displayName: 'A', existing: [] };
      const [a, b] = await Promise.all([webauthn.registrationOptions(input), webauthn.registrationOptions(input)]);
      expect(a.options.user.id).to.equal(b.options.user.id);
      expect(a.challenge).to.not.equal(b.challenge);
    });

    it('excludes the credentials already registered, so the browser refuses a duplicate', async () => {
      const { authenticator, credential } = await enrol();
      const { options } = await webauthn.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [credential] });
      expect(options.excludeCredentials).to.deep.equal([{ id: credential.credentialId, transports: ['usb'], type: 'public-key' }]);
      expect(() => authenticator.register(options)).to.throw().with.property('name', 'InvalidStateError');
    });

    it('refuses a user id that cannot be a user handle', async () => {
      for (const userId of ['', 'x'.repeat(65)]) {
        let error: unknown;
        try { await webauthn.registrationOptions({ userId, userName: 'a', displayName: 'A', existing: [] }); } catch (e) { error = e; }
        expect(error, userId).to.be.instanceOf(Error).and.not.instanceOf(WebAuthnError);
      }
    });
  });

  describe('verifyRegistration', () => {
    it('returns the credential to store', async () => {
      const { authenticator, credential } = await enrol();
      expect(credential).to.deep.include({
        credentialId: authenticator.id, counter: 0, transports: ['usb'], deviceType: 'singleDevice', backedUp: false,
        aaguid: '00000000-0000-0000-0000-000000000000', userVerified: true,
      });
      expect(credential.publicKey).to.match(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(credential.publicKey, 'base64url')[0]).to.equal(0xa5); // a CBOR map of five: a COSE EC2 key
    });

    it('reports a synced passkey as multi-device and backed up', async () => {
      const { credential } = await enrol({ synced: true });
      expect(credential).to.deep.include({ deviceType: 'multiDevice', backedUp: true, transports: ['hybrid', 'internal'] });
    });

    it('accepts an authenticator that did not verify the user, and says so', async () => {
      const { credential } = await enrol({ userVerified: false });
      expect(credential.userVerified).to.equal(false);
    });

    describe('refuses', () => {
      const cases: Array<[string, object]> = [
        ['another challenge', { challenge: b64u('a challenge we never issued') }],
        ['another origin', { origin: 'https://evil.test' }],
        ['another RP ID', { rpId: 'evil.test' }],
        ['an assertion type', { type: 'webauthn.get' }],
      ];
      for (const [name, overrides] of cases) {
        it(name, async () => {
          const authenticator = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
          const { options, challenge } = await webauthn.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [] });
          await rejects(webauthn.verifyRegistration({ response: authenticator.register(options, overrides), expectedChallenge: challenge }), 'verification_failed');
        });
      }

      it('a response whose id is not the credential id in authData', async () => {
        const authenticator = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
        const { options, challenge } = await webauthn.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [] });
        const other = b64u('another credential');
        const response = { ...authenticator.register(options), id: other, rawId: other };
        await rejects(webauthn.verifyRegistration({ response, expectedChallenge: challenge }), 'verification_failed');
      });

      it('without leaking the library\'s reason in the message', async () => {
        const authenticator = new SoftAuthenticator({ origin: 'https://evil.test', rpId: RP_ID });
        const { options, challenge } = await webauthn.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [] });
        const error = await failure(webauthn.verifyRegistration({ response: authenticator.register(options), expectedChallenge: challenge }));
        expect(error.message).to.not.match(/evil|origin/);
        expect(error.cause).to.be.instanceOf(Error);
      });
    });
  });

  describe('authenticationOptions', () => {
    it('allows only the user\'s credentials, with their transports, and prefers UV', async () => {
      const { credential } = await enrol();
      const { options, challenge } = await webauthn.authenticationOptions({ credentials: [credential] });
      expect(options.allowCredentials).to.deep.equal([{ id: credential.credentialId, transports: ['usb'], type: 'public-key' }]);
      expect(options).to.include({ rpId: RP_ID, userVerification: 'preferred', challenge });
      expect(Buffer.from(challenge, 'base64url').length).to.be.at.least(32);
    });

    it('refuses to build options for a user without passkeys (any passkey would do)', async () => {
      let error: unknown;
      try { await webauthn.authenticationOptions({ credentials: [] }); } catch (e) { error = e; }
      expect(error).to.be.instanceOf(Error).and.not.instanceOf(WebAuthnError);
    });
  });

  describe('verifyAuthentication', () => {
    it('accepts a good assertion and returns the incremented counter', async () => {
      const { authenticator, credential } = await enrol();
      const first = await assertion(authenticator, credential);
      const r1 = await webauthn.verifyAuthentication({ response: first.response, expectedChallenge: first.challenge, credential });
      expect(r1).to.deep.equal({
        credentialId: credential.credentialId, newCounter: 1, userVerified: true, deviceType: 'singleDevice', backedUp: false,
      });
      const stored = { ...credential, counter: r1.newCounter };
      const second = await assertion(authenticator, stored);
      expect((await webauthn.verifyAuthentication({ response: second.response, expectedChallenge: second.challenge, credential: stored })).newCounter)
        .to.equal(2);
    });

    it('reports a missing user verification without refusing', async () => {
      const { authenticator, credential } = await enrol();
      const { response, challenge } = await assertion(authenticator, credential, { userVerified: false });
      expect((await webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential })).userVerified).to.equal(false);
    });

    it('accepts a synced passkey whose counter stays 0', async () => {
      const { authenticator, credential } = await enrol({ synced: true });
      for (let i = 0; i < 2; i++) {
        const { response, challenge } = await assertion(authenticator, credential);
        const result = await webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential });
        expect(result).to.include({ newCounter: 0, deviceType: 'multiDevice', backedUp: true });
      }
    });

    it('refuses an assertion replayed against a new challenge', async () => {
      const { authenticator, credential } = await enrol();
      const { response, challenge } = await assertion(authenticator, credential);
      await webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential });
      const fresh = await webauthn.authenticationOptions({ credentials: [credential] });
      await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: fresh.challenge, credential }), 'verification_failed');
    });

    const lies: Array<[string, object]> = [
      ['another origin', { origin: 'https://evil.test' }],
      ['a sibling origin the config does not list', { origin: `https://www.${RP_ID}` }],
      ['another RP ID', { rpId: 'evil.test' }],
      ['a forged signature', { forge: true }],
      ['a registration type', { type: 'webauthn.create' }],
    ];
    for (const [name, overrides] of lies) {
      it(`refuses ${name}`, async () => {
        const { authenticator, credential } = await enrol();
        const { response, challenge } = await assertion(authenticator, credential, overrides);
        await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential }), 'verification_failed');
      });
    }

    it('refuses tampered authenticator data (the UV flag set after signing)', async () => {
      const { authenticator, credential } = await enrol({ userVerified: false });
      const { response, challenge } = await assertion(authenticator, credential);
      const data = Buffer.from(response.response.authenticatorData, 'base64url');
      data[32] = data[32]! | 0x04;
      const tampered = { ...response, response: { ...response.response, authenticatorData: data.toString('base64url') } };
      await rejects(webauthn.verifyAuthentication({ response: tampered, expectedChallenge: challenge, credential }), 'verification_failed');
    });

    it('refuses an assertion from another credential than the one looked up', async () => {
      const { credential } = await enrol();
      const { authenticator: other, credential: otherCredential } = await enrol();
      const { response, challenge } = await assertion(other, otherCredential);
      await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential }), 'verification_failed');
      // Even when the response claims the looked-up id: the signature is not that key's.
      const relabelled = { ...response, id: credential.credentialId, rawId: credential.credentialId };
      await rejects(webauthn.verifyAuthentication({ response: relabelled, expectedChallenge: challenge, credential }), 'verification_failed');
    });

    describe('counter (clone detection)', () => {
      it('refuses a counter below the stored one', async () => {
        const { authenticator, credential } = await enrol();
        const stored = { ...credential, counter: 5 };
        authenticator.setCounter(2);
        const { response, challenge } = await assertion(authenticator, stored);
        await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential: stored }), 'counter_regressed');
      });

      it('refuses a counter equal to the stored one', async () => {
        const { authenticator, credential } = await enrol();
        const stored = { ...credential, counter: 5 };
        const { response, challenge } = await assertion(authenticator, stored, { counter: 5 });
        await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential: stored }), 'counter_regressed');
      });

      it('refuses a counter that falls back to 0 after counting', async () => {
        const { authenticator, credential } = await enrol();
        const stored = { ...credential, counter: 3 };
        const { response, challenge } = await assertion(authenticator, stored, { counter: 0 });
        await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential: stored }), 'counter_regressed');
      });

      it('accepts a counter that jumps ahead', async () => {
        const { authenticator, credential } = await enrol();
        const stored = { ...credential, counter: 5 };
        const { response, challenge } = await assertion(authenticator, stored, { counter: 500 });
        expect((await webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential: stored })).newCounter).to.equal(500);
      });

      it('checks the signature first: a forgery never flags the credential as cloned', async () => {
        const { authenticator, credential } = await enrol();
        const stored = { ...credential, counter: 5 };
        const { response, challenge } = await assertion(authenticator, stored, { counter: 1, forge: true });
        await rejects(webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential: stored }), 'verification_failed');
      });
    });
  });

  describe('malformed input is refused as malformed_response, never a crash', () => {
    let good: { registration: Record<string, unknown>; assertion: Record<string, unknown> };
    let credential: StoredCredential;
    before(async () => {
      const authenticator = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const { options, challenge } = await webauthn.registrationOptions({ userId: USER_ID, userName: 'a', displayName: 'A', existing: [] });
      const registration = authenticator.register(options);
      credential = await webauthn.verifyRegistration({ response: registration, expectedChallenge: challenge });
      const { options: request } = await webauthn.authenticationOptions({ credentials: [credential] });
      good = { registration: { ...registration }, assertion: { ...authenticator.authenticate(request) } };
    });

    const garbage = b64u('\x00\x01garbage that is not CBOR or JSON\xff');
    const shared: Array<[string, (r: Record<string, unknown>) => unknown]> = [
      ['null', () => null],
      ['undefined', () => undefined],
      ['an empty object', () => ({})],
      ['an array', () => []],
      ['a string', () => 'credential'],
      ['a JSON string of the response', (r) => JSON.stringify(r)],
      ['a number', () => 42],
      ['no response member', (r) => ({ ...r, response: undefined })],
      ['a string response member', (r) => ({ ...r, response: 'x' })],
      ['an id that is not base64url', (r) => ({ ...r, id: 'not/base64+url=', rawId: 'not/base64+url=' })],
      ['an id unlike rawId', (r) => ({ ...r, rawId: 'AAAA' })],
      ['an enormous id', (r) => ({ ...r, id: 'A'.repeat(5000), rawId: 'A'.repeat(5000) })],
      ['a type other than public-key', (r) => ({ ...r, type: 'password' })],
      ['clientDataJSON not base64url', (r) => ({ ...r, response: { ...(r.response as object), clientDataJSON: '%%%' } })],
      ['clientDataJSON not JSON', (r) => ({ ...r, response: { ...(r.response as object), clientDataJSON: garbage } })],
      ['clientDataJSON a JSON array', (r) => ({ ...r, response: { ...(r.response as object), clientDataJSON: b64u('[1,2]') } })],
      ['clientDataJSON without a challenge', (r) => ({ ...r, response: { ...(r.response as object), clientDataJSON: b64u('{"type":"webauthn.get","origin":"x"}') } })],
      ['clientDataJSON a number', (r) => ({ ...r, response: { ...(r.response as object), clientDataJSON: 7 } })],
    ];
    const registrationOnly: typeof shared = [
      ['attestationObject garbage', (r) => ({ ...r, response: { ...(r.response as object), attestationObject: garbage } })],
      ['attestationObject empty', (r) => ({ ...r, response: { ...(r.response as object), attestationObject: '' } })],
      ['attestationObject missing', (r) => ({ ...r, response: { ...(r.response as object), attestationObject: undefined } })],
      ['attestationObject a CBOR text string', (r) => ({ ...r, response: { ...(r.response as object), attestationObject: Buffer.from([0x61, 0x61]).toString('base64url') } })],
      ['transports not an array', (r) => ({ ...r, response: { ...(r.response as object), transports: 'usb' } })],
      ['transports with a non-string', (r) => ({ ...r, response: { ...(r.response as object), transports: [{}] } })],
    ];
    const assertionOnly: typeof shared = [
      ['authenticatorData too short', (r) => ({ ...r, response: { ...(r.response as object), authenticatorData: b64u('short') } })],
      ['authenticatorData not base64url', (r) => ({ ...r, response: { ...(r.response as object), authenticatorData: '!!' } })],
      ['signature missing', (r) => ({ ...r, response: { ...(r.response as object), signature: undefined } })],
      ['signature an object', (r) => ({ ...r, response: { ...(r.response as object), signature: {} } })],
      ['userHandle a number', (r) => ({ ...r, response: { ...(r.response as object), userHandle: 1 } })],
    ];

    for (const [name, mangle] of [...shared, ...registrationOnly]) {
      it(`registration: ${name}`, async () => {
        await rejects(webauthn.verifyRegistration({ response: mangle(good.registration), expectedChallenge: 'x' }), 'malformed_response');
      });
    }
    for (const [name, mangle] of [...shared, ...assertionOnly]) {
      it(`assertion: ${name}`, async () => {
        await rejects(webauthn.verifyAuthentication({ response: mangle(good.assertion), expectedChallenge: 'x', credential }), 'malformed_response');
      });
    }
  });

  describe('credentialIdOf', () => {
    it('reads the id an assertion claims', async () => {
      const { authenticator, credential } = await enrol();
      const { response } = await assertion(authenticator, credential);
      expect(credentialIdOf(response)).to.equal(credential.credentialId);
      expect(webauthn.credentialIdOf(response)).to.equal(credential.credentialId);
    });

    it('gives null for anything else', () => {
      for (const input of [null, undefined, 'abc', 42, {}, [], { id: 'abc' }, { id: 'ab/c', rawId: 'ab/c' }, { id: 1, rawId: 1 }, { id: 'A'.repeat(2000), rawId: 'A'.repeat(2000) }]) {
        expect(credentialIdOf(input), JSON.stringify(input)).to.equal(null);
      }
    });
  });

  describe('amrFor', () => {
    it('is hwk for a device-bound key and swk for a synced passkey, plus user when verified', () => {
      expect(amrFor({ deviceType: 'singleDevice', userVerified: false })).to.deep.equal(['hwk']);
      expect(amrFor({ deviceType: 'singleDevice', userVerified: true })).to.deep.equal(['hwk', 'user']);
      expect(amrFor({ deviceType: 'multiDevice', userVerified: false })).to.deep.equal(['swk']);
      expect(amrFor({ deviceType: 'multiDevice', userVerified: true })).to.deep.equal(['swk', 'user']);
    });

    it('follows from a verified synced passkey assertion', async () => {
      const { authenticator, credential } = await enrol({ synced: true });
      const { response, challenge } = await assertion(authenticator, credential);
      expect(webauthn.amrFor(await webauthn.verifyAuthentication({ response, expectedChallenge: challenge, credential })))
        .to.deep.equal(['swk', 'user']);
    });
  });
});
