/**
 * A software WebAuthn authenticator (and the browser around it) for tests:
 * one ES256 (P-256) credential, attestation format 'none', real CBOR, real
 * signatures from node:crypto. Knobs let a test lie about the origin, the RP
 * ID, the challenge or the counter, or sign with a key it never registered.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

type Cbor = number | string | Uint8Array | Map<number | string, Cbor>;

function head(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) return Buffer.from([m | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = m | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Minimal CBOR (RFC 8949): integers up to 32 bits, byte and text strings, maps. */
export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || Math.abs(value) > 0xffffffff) throw new Error('cbor: only 32-bit integers');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === 'string') {
    const b = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  const parts = [head(5, value.size)];
  for (const [k, v] of value) parts.push(cbor(k), cbor(v));
  return Buffer.concat(parts);
}

const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export interface SoftAuthenticatorOptions {
  origin: string;
  rpId: string;
  /** Whether the UV flag is set (a PIN or biometric check). Default true. */
  userVerified?: boolean;
  /**
   * Emulate a synced passkey: BE and BS flags set, and (like the big
   * platform providers) a sign counter that stays 0. Default false.
   */
  synced?: boolean;
}

/** Per-call lies, for adversarial tests. */
export interface CeremonyOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  /** clientDataJSON `type`. */
  type?: string;
}

export interface AssertionOverrides extends CeremonyOverrides {
  /** The exact sign counter to report (and keep). */
  counter?: number;
  /** Sign with a fresh key that was never registered (a forgery). */
  forge?: boolean;
  userVerified?: boolean;
}

export class SoftAuthenticator {
  readonly credentialId: Buffer = randomBytes(32);
  private readonly keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly origin: string;
  private readonly rpId: string;
  private readonly userVerified: boolean;
  private readonly synced: boolean;
  private signCount = 0;
  private userHandle: string | undefined;

  constructor(options: SoftAuthenticatorOptions) {
    this.origin = options.origin;
    this.rpId = options.rpId;
    this.userVerified = options.userVerified ?? true;
    this.synced = options.synced ?? false;
  }

  /** The base64url credential id, as the server stores it. */
  get id(): string {
    return b64u(this.credentialId);
  }

  /** The last sign counter reported. */
  get counter(): number {
    return this.signCount;
  }

  /** Sets the stored counter: the next assertion reports `value + 1` (a synced passkey reports 0 regardless). */
  setCounter(value: number): void {
    this.signCount = value;
  }

  /**
   * `navigator.credentials.create()`.
   * @throws Error named InvalidStateError when this credential is in `excludeCredentials`, as a browser does.
   */
  register(options: PublicKeyCredentialCreationOptionsJSON, overrides: CeremonyOverrides = {}): RegistrationResponseJSON {
    if (options.excludeCredentials?.some((c) => c.id === this.id)) throw named('InvalidStateError');
    if (!options.pubKeyCredParams.some((p) => p.alg === -7)) throw named('NotSupportedError');
    this.userHandle = options.user.id;
    const clientDataJSON = this.clientData('webauthn.create', options.challenge, overrides);
    const jwk = this.keys.publicKey.export({ format: 'jwk' });
    const coseKey = new Map<number, Cbor>([
      [1, 2], [3, -7], [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([
      this.authDataHead(overrides.rpId, FLAG.AT | this.uvFlag(undefined), this.signCount),
      Buffer.alloc(16), idLength, this.credentialId, cbor(coseKey),
    ]);
    const attestationObject = cbor(new Map<string, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return {
      id: this.id, rawId: this.id, type: 'public-key',
      authenticatorAttachment: this.synced ? 'platform' : 'cross-platform',
      clientExtensionResults: { credProps: { rk: true } },
      response: {
        clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), authenticatorData: b64u(authData),
        transports: this.synced ? ['hybrid', 'internal'] : ['usb'], publicKeyAlgorithm: -7,
        publicKey: b64u(this.keys.publicKey.export({ format: 'der', type: 'spki' })),
      },
    };
  }

  /**
   * `navigator.credentials.get()`.
   * @throws Error named NotAllowedError when `allowCredentials` is non-empty and lacks this credential.
   */
  authenticate(options: PublicKeyCredentialRequestOptionsJSON, overrides: AssertionOverrides = {}): AuthenticationResponseJSON {
    const allowed = options.allowCredentials ?? [];
    if (allowed.length > 0 && !allowed.some((c) => c.id === this.id)) throw named('NotAllowedError');
    this.signCount = overrides.counter ?? (this.synced ? 0 : this.signCount + 1);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides);
    const authData = this.authDataHead(overrides.rpId, this.uvFlag(overrides.userVerified), this.signCount);
    const key: KeyObject = overrides.forge ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : this.keys.privateKey;
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), key); // DER for EC keys
    return {
      id: this.id, rawId: this.id, type: 'public-key',
      authenticatorAttachment: this.synced ? 'platform' : 'cross-platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature),
        ...(this.userHandle ? { userHandle: this.userHandle } : {}),
      },
    };
  }

  private uvFlag(override: boolean | undefined): number {
    return FLAG.UP | ((override ?? this.userVerified) ? FLAG.UV : 0) | (this.synced ? FLAG.BE | FLAG.BS : 0);
  }

  private authDataHead(rpId: string | undefined, flags: number, counter: number): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(Buffer.from(rpId ?? this.rpId)), Buffer.from([flags]), count]);
  }

  private clientData(type: string, challenge: string, o: CeremonyOverrides): Buffer {
    return Buffer.from(JSON.stringify({
      type: o.type ?? type, challenge: o.challenge ?? challenge, origin: o.origin ?? this.origin, crossOrigin: false,
    }));
  }
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

function named(name: string): Error {
  const e = new Error(`soft authenticator: ${name}`);
  e.name = name;
  return e;
}
