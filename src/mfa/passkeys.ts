/**
 * Passkeys and security keys as a second factor: registering them (several
 * per user, each a `webauthn` factor) and answering a challenge with one.
 * No HTTP here. Every ceremony's challenge is stored server-side, bound to
 * its user and to what it is for, and spent once; signature counters only
 * rise. The RP ID and the origin come from the issuer in the configuration,
 * never from a request.
 */
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';
import type { Factor, FactorsStore } from '../store/factors.ts';
import type { EventsStore } from '../store/events.ts';
import type { User } from '../store/users.ts';
import type { ChallengeMethod } from '../store/challenges.ts';
import type { WebAuthnStore } from '../store/webauthn-challenges.ts';
import type { Challenge } from './challenges.ts';
import type { MethodHandler } from './methods.ts';
import type { RecoveryCodes } from './recovery-codes.ts';
import { amrFor, createWebAuthn, credentialIdOf, WebAuthnError, type StoredCredential, type WebAuthn } from './factors/webauthn.ts';
import { AppError, assertThat } from '../errors.ts';

/** How long registration options can be answered: the account page's window for sensitive changes. */
const REGISTRATION_TTL_SECONDS = 300;
const MAX_NAME = 100;

export interface PasskeysDeps {
  db: Db;
  clock: Clock;
  factors: FactorsStore;
  store: WebAuthnStore;
  events: EventsStore;
  /** A first second factor comes with recovery codes, as an authenticator app does. */
  recoveryCodes: RecoveryCodes;
  /** The configured issuer: the RP ID is its host name, the one accepted origin its origin. */
  issuer: string;
  /** The name authenticators show for us. Default "Twofold". */
  rpName?: string;
  /** Built from `issuer` when absent. */
  webAuthn?: WebAuthn;
}

/** A user's passkey as a registration needs it. */
export type PasskeyUser = Pick<User, 'id' | 'email' | 'name'>;

export type Passkeys = ReturnType<typeof createPasskeys>;

/** The stored credential of a passkey factor, or null when its settings are not one. */
export function credentialOf(factor: Factor): StoredCredential | null {
  const s = factor.settings;
  if (factor.type !== 'webauthn' || typeof s.credentialId !== 'string' || typeof s.publicKey !== 'string') return null;
  return {
    credentialId: s.credentialId, publicKey: s.publicKey, counter: Number(s.counter ?? 0),
    transports: Array.isArray(s.transports) ? s.transports.filter((t): t is string => typeof t === 'string') : [],
    deviceType: s.deviceType === 'multiDevice' ? 'multiDevice' : 'singleDevice',
    backedUp: s.backedUp === true, aaguid: typeof s.aaguid === 'string' ? s.aaguid : '', userVerified: s.userVerified === true,
  };
}

/** What a person calls it until they rename it: a synced passkey, or a key bound to one device. */
export function defaultPasskeyName(deviceType: StoredCredential['deviceType']): string {
  return deviceType === 'multiDevice' ? 'Passkey' : 'Security key';
}

/**
 * @throws Error when the issuer's origin is not within its host name (never
 * for a valid URL; kept from createWebAuthn's own check).
 */
export function createPasskeys(deps: PasskeysDeps) {
  const { db, clock, factors, store, events } = deps;
  const issuer = new URL(deps.issuer);
  const webAuthn = deps.webAuthn ?? createWebAuthn({ rpId: issuer.hostname, rpName: deps.rpName ?? 'Twofold', origin: issuer.origin });

  /** The user's ACTIVE passkeys, with their factor. Only these can answer for the user. */
  async function activeOf(userId: string): Promise<Array<{ factor: Factor; credential: StoredCredential }>> {
    const all = await factors.listByUser(userId);
    return all.flatMap((factor) => {
      const credential = factor.status === 'ACTIVE' ? credentialOf(factor) : null;
      return credential ? [{ factor, credential }] : [];
    });
  }

  /**
   * Options for `navigator.credentials.get()` answering `challenge`; their
   * challenge replaces any earlier options for it.
   * @returns null when the user has no passkey.
   */
  async function authenticationOptions(challenge: Challenge): Promise<PublicKeyCredentialRequestOptionsJSON | null> {
    const mine = await activeOf(challenge.userId);
    if (mine.length === 0) return null;
    const { options, challenge: value } = await webAuthn.authenticationOptions({ credentials: mine.map((m) => m.credential) });
    // Lives as long as the second-factor challenge: a page may stay open a while before the person acts.
    await store.issue({ userId: challenge.userId, purpose: 'authenticate', binding: challenge.id, challenge: value, expiresAt: challenge.expiresAt });
    return options;
  }

  const methodHandler: MethodHandler = {
    /**
     * Spends the stored challenge first, whatever the answer, so each set of
     * options is checked at most once; then checks the assertion against
     * the user's own passkeys only.
     */
    async check({ challenge }, answer) {
      const expected = await store.take({ userId: challenge.userId, purpose: 'authenticate', binding: challenge.id });
      const id = credentialIdOf(answer.credential);
      if (!expected || !id) return null;
      const mine = (await activeOf(challenge.userId)).find((m) => m.credential.credentialId === id);
      // Another user's credential, a removed one or an unknown one: the same wrong answer.
      if (!mine) return null;
      let result;
      try {
        result = await webAuthn.verifyAuthentication({ response: answer.credential, expectedChallenge: expected, credential: mine.credential });
      } catch (err) {
        if (!(err instanceof WebAuthnError)) throw err;
        if (err.reason === 'counter_regressed') {
          // A valid signature with a stale counter: a cloned authenticator, or a replay. Worth an audit line.
          await events.record({ type: 'factor.verify_failed', userId: challenge.userId, details: { factorId: mine.factor.id, type: 'webauthn', reason: err.reason } });
        }
        return null;
      }
      const { newCounter, backedUp } = result;
      return {
        spend: (trx) => store.recordAssertion({ factorId: mine.factor.id, userId: challenge.userId, newCounter, backedUp }, trx),
        amr: amrFor(result),
        phishingResistant: true,
      };
    },
  };

  return {
    rpId: issuer.hostname,
    origin: issuer.origin,
    methodHandler,
    authenticationOptions,

    /**
     * The sign-in page's passkey options for `method` (a `{ webauthnOptions }`
     * part of its view); nothing for other methods, so it combines with
     * other methods' details.
     */
    async methodDetails(challenge: Challenge, method: ChallengeMethod): Promise<{ webauthnOptions?: string }> {
      if (method.method !== 'webauthn') return {};
      const options = await authenticationOptions(challenge);
      return options ? { webauthnOptions: JSON.stringify(options) } : {};
    },

    /** The passkey options for a JSON client of `challenge`, or null when it has no passkey method. */
    async describeForApi(challenge: Challenge): Promise<{ options: PublicKeyCredentialRequestOptionsJSON } | null> {
      if (!challenge.methods.some((m) => m.method === 'webauthn')) return null;
      const options = await authenticationOptions(challenge);
      return options ? { options } : null;
    },

    /**
     * Options for `navigator.credentials.create()`, excluding the user's
     * passkeys; their challenge replaces earlier ones of `binding` (the
     * caller's page session) and must be answered within five minutes.
     */
    async registrationOptions(user: PasskeyUser, binding: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const existing = (await factors.listByUser(user.id)).flatMap((f) => credentialOf(f) ?? []);
      const { options, challenge } = await webAuthn.registrationOptions({
        userId: user.id, userName: user.email, displayName: user.name || user.email, existing,
      });
      await store.issue({ userId: user.id, purpose: 'register', binding, challenge, expiresAt: clock.now() + REGISTRATION_TTL_SECONDS * 1000 });
      return options;
    },

    /**
     * Checks a registration response against the options last issued for
     * `binding` (spent whatever the outcome) and stores the passkey as an
     * ACTIVE factor.
     * @param name what the person typed; empty for "Passkey" or "Security key".
     * @returns the factor, and recovery codes when it is the user's first
     *   second factor (shown once).
     * @throws AppError request.invalid (name too long; a response that is not
     *   a valid registration for these options), mfa.challenge_not_found
     *   (no live options: expired, used or never issued),
     *   factor.already_enrolled (this passkey is registered already)
     */
    async register(user: PasskeyUser, binding: string, response: unknown, name: string): Promise<{ factor: Factor; recoveryCodes: string[] | null }> {
      const typed = name.normalize('NFC').trim();
      if (typed.length > MAX_NAME) throw new AppError('request.invalid', { message: `A name is at most ${MAX_NAME} characters.`, details: { field: 'name' } });
      const expected = await store.take({ userId: user.id, purpose: 'register', binding });
      if (!expected) throw new AppError('mfa.challenge_not_found', { message: 'This passkey request has expired or was already used. Try again.' });
      let credential: StoredCredential;
      try {
        credential = await webAuthn.verifyRegistration({ response, expectedChallenge: expected });
      } catch (err) {
        if (!(err instanceof WebAuthnError)) throw err;
        throw new AppError('request.invalid', { message: 'The passkey could not be registered. Try again.', details: { reason: err.reason }, cause: err });
      }
      const id = factors.newId();
      const recoveryCodes = await db.transaction(async (trx) => {
        const inserted = await store.insertCredential({
          id, userId: user.id, name: typed || defaultPasskeyName(credential.deviceType), credentialId: credential.credentialId, settings: { ...credential },
        }, trx);
        if (!inserted) throw new AppError('factor.already_enrolled', { message: 'This passkey is already registered on your account.' });
        const details = { factorId: id, type: 'webauthn', deviceType: credential.deviceType };
        await events.record({ type: 'factor.enrolled', userId: user.id, details }, trx);
        await events.record({ type: 'factor.activated', userId: user.id, details }, trx);
        return deps.recoveryCodes.generateIfNone(user.id, trx);
      });
      const factor = await factors.findById(id);
      assertThat(factor, 'factor.not_found');
      return { factor, recoveryCodes };
    },
  };
}
