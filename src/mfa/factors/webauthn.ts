/**
 * Passkeys (WebAuthn) as a second factor, over @simplewebauthn/server 14:
 * options for the browser, and checks of what it sends back. No store, no
 * HTTP: the caller keeps the challenge server-side, clears it after one use,
 * and persists what a check returns.
 *
 * The RP ID and the origins come only from the config given to
 * `createWebAuthn`, never from a request (Koa 3's `ctx.origin` is the
 * request's `Origin` header, which an attacker writes).
 */
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type CredentialDeviceType, type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeAttestationObject, parseAuthenticatorData } from '@simplewebauthn/server/helpers';

/** Why a response was refused. Stable strings: callers map them to their own error codes. */
export type WebAuthnFailure = 'malformed_response' | 'verification_failed' | 'counter_regressed';

/**
 * A refused registration or assertion. The message names only the reason;
 * the library's own error, if any, is kept as `cause` for server logs and
 * must not be shown to the person.
 */
export class WebAuthnError extends Error {
  readonly reason: WebAuthnFailure;

  constructor(reason: WebAuthnFailure, options: { cause?: unknown } = {}) {
    super(`webauthn: ${reason}`, options);
    this.name = 'WebAuthnError';
    this.reason = reason;
  }
}

/** What we keep of a registered passkey (all of it public: nothing here needs sealing). */
export interface StoredCredential {
  /** base64url, as the browser reports it in `id`. */
  credentialId: string;
  /** base64url of the COSE public key. */
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: CredentialDeviceType;
  backedUp: boolean;
  aaguid: string;
  userVerified: boolean;
}

export interface WebAuthnConfig {
  rpId: string;
  rpName: string;
  /** The exact origin(s) pages are served from, e.g. `https://id.example.com`. */
  origin: string | string[];
  timeoutMs?: number;
}

export interface AuthenticationResult {
  credentialId: string;
  /** Persist it with a guarded write (only if greater than the stored value). */
  newCounter: number;
  userVerified: boolean;
  /** The backup state can change after registration; worth persisting too. */
  deviceType: CredentialDeviceType;
  backedUp: boolean;
}

/** RFC 8176 values a passkey proves. */
export type WebAuthnAmr = 'hwk' | 'swk' | 'user';

/** ES256 and RS256: what platform authenticators and security keys commonly offer. */
const ALGORITHMS = [-7, -257];
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_USER_HANDLE_BYTES = 64; // WebAuthn §5.4.3
// Upper bounds in base64url characters: a credential id is at most 1023 bytes
// (§5.8.3); attestation objects with certificate chains run to a few KB.
const MAX = { id: 1400, clientData: 16_384, attestation: 65_536, authData: 16_384, signature: 2_048, handle: 100 };
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * RFC 8176 values for a passkey check: `hwk` for a key bound to one device,
 * `swk` for a synced (multi-device) passkey, plus `user` when the device
 * verified the person (PIN or biometric). `mfa` is the caller's to add.
 */
export function amrFor(input: { deviceType: CredentialDeviceType; userVerified: boolean }): WebAuthnAmr[] {
  const amr: WebAuthnAmr[] = [input.deviceType === 'singleDevice' ? 'hwk' : 'swk'];
  if (input.userVerified) amr.push('user');
  return amr;
}

/**
 * The credential id an assertion claims, so the caller can look it up among
 * the user's own credentials; null when the input does not look like one.
 * Nothing is verified here.
 */
export function credentialIdOf(response: unknown): string | null {
  const r = asRecord(response);
  if (!r || typeof r.id !== 'string' || r.rawId !== r.id) return null;
  return r.id.length <= MAX.id && BASE64URL.test(r.id) ? r.id : null;
}

export type WebAuthn = ReturnType<typeof createWebAuthn>;

/**
 * @throws Error when an origin is not a bare origin or its host is not the RP
 * ID or a subdomain of it (browsers would refuse every ceremony).
 */
export function createWebAuthn(config: WebAuthnConfig) {
  const { rpId, rpName } = config;
  const origins = typeof config.origin === 'string' ? [config.origin] : [...config.origin];
  const timeout = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (origins.length === 0) throw new Error('webauthn: at least one origin is required');
  for (const o of origins) {
    const url = new URL(o);
    if (url.origin !== o || !(url.hostname === rpId || url.hostname.endsWith(`.${rpId}`))) {
      throw new Error(`webauthn: origin ${o} is not a bare origin within the RP ID ${rpId}`);
    }
  }
  const expectedOrigin = origins.length === 1 ? origins[0]! : origins;

  return {
    amrFor,
    credentialIdOf,

    /**
     * Options for `navigator.credentials.create()`. Keep `challenge`
     * server-side, bound to this user and ceremony, and spend it once.
     * The WebAuthn user handle is the UTF-8 bytes of our internal user id:
     * stable per user and free of personal data.
     * @throws Error when the user id is empty or longer than 64 bytes.
     */
    async registrationOptions(input: { userId: string; userName: string; displayName: string; existing: StoredCredential[] }):
      Promise<{ options: PublicKeyCredentialCreationOptionsJSON; challenge: string }> {
      const userID = new TextEncoder().encode(input.userId);
      if (userID.length === 0 || userID.length > MAX_USER_HANDLE_BYTES) throw new Error('webauthn: the user id must be 1..64 bytes');
      const options = await generateRegistrationOptions({
        rpName, rpID: rpId, userID, userName: input.userName, userDisplayName: input.displayName, timeout,
        attestationType: 'none',
        // The same passkey twice would only add a row that proves nothing more.
        excludeCredentials: input.existing.map((c) => ({ id: c.credentialId, transports: c.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: ALGORITHMS,
      });
      return { options, challenge: options.challenge };
    },

    /**
     * Checks a registration response against the challenge we issued and our
     * RP ID and origins. User verification is welcome, not required.
     * @param input.response untrusted input, straight from the request.
     * @throws WebAuthnError 'malformed_response' when the input is not a
     * registration response at all; 'verification_failed' when it is one but
     * not for this challenge, origin or RP, or uses an unsupported key.
     */
    async verifyRegistration(input: { response: unknown; expectedChallenge: string }): Promise<StoredCredential> {
      const response = parseRegistration(input.response);
      const info = await orFail(async () => {
        const result = await verifyRegistrationResponse({
          response, expectedChallenge: input.expectedChallenge, expectedOrigin, expectedRPID: rpId,
          requireUserVerification: false, supportedAlgorithmIDs: ALGORITHMS,
        });
        return result.verified ? result.registrationInfo : undefined;
      });
      // The library takes the id from authData; the browser's `id` must agree, or lookups by `id` would miss.
      if (!info || info.credential.id !== response.id) throw new WebAuthnError('verification_failed');
      return {
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: response.response.transports ?? [],
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
        userVerified: info.userVerified,
      };
    },

    /**
     * Options for `navigator.credentials.get()`, limited to the user's passkeys.
     * @throws Error when `credentials` is empty: as a second factor the user is
     * known, and an empty list would let the browser offer any passkey.
     */
    async authenticationOptions(input: { credentials: StoredCredential[] }):
      Promise<{ options: PublicKeyCredentialRequestOptionsJSON; challenge: string }> {
      if (input.credentials.length === 0) throw new Error('webauthn: the user has no passkeys');
      const options = await generateAuthenticationOptions({
        rpID: rpId, timeout, userVerification: 'preferred',
        allowCredentials: input.credentials.map((c) => ({ id: c.credentialId, transports: c.transports })),
      });
      return { options, challenge: options.challenge };
    },

    /**
     * Checks an assertion made with `credential`, which the caller looked up
     * (with `credentialIdOf`) among this user's own credentials.
     * @param input.response untrusted input, straight from the request.
     * @throws WebAuthnError 'malformed_response' for input that is not an
     * assertion; 'verification_failed' for another credential, challenge,
     * origin or RP ID, a missing user presence or a bad signature;
     * 'counter_regressed' when a validly signed assertion carries a counter
     * not above the stored one (a cloned authenticator, or a replay).
     */
    async verifyAuthentication(input: { response: unknown; expectedChallenge: string; credential: StoredCredential }): Promise<AuthenticationResult> {
      const response = parseAssertion(input.response);
      const stored = input.credential;
      if (response.id !== stored.credentialId) throw new WebAuthnError('verification_failed');
      // The library checks the counter before the signature. We pass 0 to turn its check off and check
      // after the signature, so only the real key can get a credential flagged as cloned.
      const info = await orFail(async () => {
        const result = await verifyAuthenticationResponse({
          response, expectedChallenge: input.expectedChallenge, expectedOrigin, expectedRPID: rpId,
          credential: { id: stored.credentialId, publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')), counter: 0 },
          requireUserVerification: false,
        });
        return result.verified ? result.authenticationInfo : undefined;
      });
      if (!info) throw new WebAuthnError('verification_failed');
      // WebAuthn §7.2 step 21: when either counter is non-zero, the new one must be greater.
      if ((info.newCounter > 0 || stored.counter > 0) && info.newCounter <= stored.counter) {
        throw new WebAuthnError('counter_regressed');
      }
      return {
        credentialId: stored.credentialId, newCounter: info.newCounter, userVerified: info.userVerified,
        deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp,
      };
    },
  };
}

/** Runs a library check; anything it throws becomes 'verification_failed' (input was already shape-checked). */
async function orFail<T>(check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (cause) {
    throw new WebAuthnError('verification_failed', { cause });
  }
}

function malformed(cause?: unknown): never {
  throw new WebAuthnError('malformed_response', cause === undefined ? {} : { cause });
}

function asRecord(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function base64url(v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length > max || !BASE64URL.test(v)) malformed();
  return v;
}

function bytes(b64: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(b64, 'base64url'));
}

/**
 * The fields every public-key credential shares, checked and copied, so that
 * odd input is refused here as malformed and nothing unchecked reaches the library.
 */
function parseCredential(input: unknown) {
  const r = asRecord(input) ?? malformed();
  const id = base64url(r.id, MAX.id);
  if (r.rawId !== id || r.type !== 'public-key') malformed();
  const inner = asRecord(r.response) ?? malformed();
  const clientDataJSON = base64url(inner.clientDataJSON, MAX.clientData);
  let clientData: unknown;
  try {
    clientData = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
  } catch (cause) {
    malformed(cause);
  }
  const cd = asRecord(clientData) ?? malformed();
  if (typeof cd.type !== 'string' || typeof cd.challenge !== 'string' || typeof cd.origin !== 'string') malformed();
  // Extension outputs and the attachment hint are not used by any check, so they are not passed on.
  return { id, inner, clientDataJSON, common: { id, rawId: id, type: 'public-key' as const, clientExtensionResults: {} } };
}

function parseRegistration(input: unknown): RegistrationResponseJSON {
  const { inner, clientDataJSON, common } = parseCredential(input);
  const attestationObject = base64url(inner.attestationObject, MAX.attestation);
  try {
    const decoded = decodeAttestationObject(bytes(attestationObject));
    const authData = decoded.get('authData');
    if (typeof decoded.get('fmt') !== 'string' || !(authData instanceof Uint8Array)) malformed();
    parseAuthenticatorData(authData);
  } catch (cause) {
    if (cause instanceof WebAuthnError) throw cause;
    malformed(cause);
  }
  const transports = inner.transports ?? [];
  if (!Array.isArray(transports) || transports.length > 10) malformed();
  for (const t of transports) if (typeof t !== 'string' || !/^[a-z-]{1,32}$/.test(t)) malformed();
  return { ...common, response: { clientDataJSON, attestationObject, transports: [...new Set(transports as string[])] } };
}

function parseAssertion(input: unknown): AuthenticationResponseJSON {
  const { inner, clientDataJSON, common } = parseCredential(input);
  const authenticatorData = base64url(inner.authenticatorData, MAX.authData);
  // 32-byte RP ID hash, flags, 4-byte counter: anything shorter is not authenticator data.
  if (Buffer.from(authenticatorData, 'base64url').length < 37) malformed();
  const signature = base64url(inner.signature, MAX.signature);
  const handle = inner.userHandle;
  const userHandle = handle === undefined || handle === null ? undefined : base64url(handle, MAX.handle);
  return { ...common, response: { clientDataJSON, authenticatorData, signature, ...(userHandle ? { userHandle } : {}) } };
}
