/**
 * The device request signature (protocol v1, docs/device-protocol.md): every
 * call of a linked device is signed with its ECDSA P-256 key over
 *
 *   "TWOFOLD-DEVICE-V1\n" METHOD "\n" path-with-query "\n" timestamp "\n" nonce "\n" base64url(SHA-256(body))
 *
 * The server keeps only the public key, so a copy of the database lets nobody
 * act as a device. Timestamps bound how long a captured request stays usable;
 * remembered nonces make it single use within that window. Pure crypto and
 * parsing here, plus `createDeviceAuth`, which needs only a store and a clock.
 * Both sides (server and the reference authenticator) use these functions.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import * as z from 'zod';
import type { Clock } from '../lib/clock.ts';
import type { Device, DevicePublicJwk } from '../store/devices.ts';
import { AppError } from '../errors.ts';

export const SIGNATURE_VERSION = 'TWOFOLD-DEVICE-V1';
/** How far a request's timestamp may be from the server's clock, either way. */
export const MAX_SKEW_SECONDS = 60;

export const HEADERS = {
  device: 'twofold-device',
  timestamp: 'twofold-timestamp',
  nonce: 'twofold-nonce',
  signature: 'twofold-signature',
} as const;

const b64u = (bytes: number) => z.string().regex(/^[A-Za-z0-9_-]+$/).refine((s) => Buffer.from(s, 'base64url').length === bytes && Buffer.from(s, 'base64url').toString('base64url') === s);

// WebCrypto and most JOSE libraries add these members to an exported public
// key; they are accepted and dropped. Anything else, `d` above all, is refused.
const publicJwkSchema = z.strictObject({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: b64u(32),
  y: b64u(32),
  alg: z.literal('ES256').optional(),
  use: z.literal('sig').optional(),
  kid: z.string().max(200).optional(),
  key_ops: z.array(z.enum(['verify'])).optional(),
  ext: z.boolean().optional(),
});

/**
 * A device's public key, checked strictly: an EC P-256 public JWK whose point
 * lies on the curve, with no private part.
 * @returns only {kty, crv, x, y}, or undefined when it is not such a key.
 */
export function parsePublicJwk(value: unknown): DevicePublicJwk | undefined {
  const parsed = publicJwkSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const jwk: DevicePublicJwk = { kty: 'EC', crv: 'P-256', x: parsed.data.x, y: parsed.data.y };
  try {
    createPublicKey({ key: { ...jwk }, format: 'jwk' });
  } catch {
    return undefined; // not a point on the curve
  }
  return jwk;
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of a public key. */
export function jwkThumbprint(jwk: DevicePublicJwk): string {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/** base64url(SHA-256(body)); an empty body has the digest of zero bytes. */
export function bodyDigest(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('base64url');
}

export interface SignedParts {
  method: string;
  /** The request target as sent: path and query string, e.g. `/device/v1/requests?x=1`. */
  pathWithQuery: string;
  /** Unix time in seconds, as the decimal string sent in the header. */
  timestamp: string;
  nonce: string;
  body: Uint8Array | string;
}

/** The exact text a device signs (UTF-8). */
export function signingString(p: SignedParts): string {
  return [SIGNATURE_VERSION, p.method.toUpperCase(), p.pathWithQuery, p.timestamp, p.nonce, bodyDigest(p.body)].join('\n');
}

/** ES256 over `signingString(p)`, as base64url of r||s (IEEE P1363, 64 bytes). */
export function signParts(privateKey: KeyObject, p: SignedParts): string {
  return sign('sha256', Buffer.from(signingString(p), 'utf8'), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
}

/** True when `signature` is a valid ES256 (P1363) signature of `signingString(p)` by `jwk`. */
export function verifyParts(jwk: DevicePublicJwk, p: SignedParts, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  const raw = Buffer.from(signature, 'base64url');
  if (raw.length !== 64) return false;
  const key = createPublicKey({ key: { ...jwk }, format: 'jwk' });
  return verify('sha256', Buffer.from(signingString(p), 'utf8'), { key, dsaEncoding: 'ieee-p1363' }, raw);
}

/**
 * The headers of a signed request, for clients.
 * @returns header name → value (lower case names).
 */
export function signRequestHeaders(input: {
  privateKey: KeyObject; deviceId?: string; method: string; pathWithQuery: string; body: Uint8Array | string; nowMs: number; nonce: string;
}): Record<string, string> {
  const timestamp = String(Math.floor(input.nowMs / 1000));
  const signature = signParts(input.privateKey, { ...input, timestamp });
  return {
    ...(input.deviceId ? { [HEADERS.device]: input.deviceId } : {}),
    [HEADERS.timestamp]: timestamp,
    [HEADERS.nonce]: input.nonce,
    [HEADERS.signature]: signature,
  };
}

/** A request as the server received it. */
export interface IncomingSigned {
  method: string;
  pathWithQuery: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes, exactly as received. */
  body: Uint8Array;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;

function header(headers: IncomingSigned['headers'], name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** Why a request was refused: logged for operators, never told to the caller. */
export type RefusalReason = 'malformed_headers' | 'unknown_device' | 'unlinked_device' | 'stale_timestamp' | 'bad_signature' | 'replayed_nonce';

export interface DeviceAuthDeps {
  clock: Clock;
  findDevice(id: string): Promise<Device | undefined>;
  /** @returns false when the nonce was seen before (a replay). */
  rememberNonce(deviceId: string, nonce: string, expiresAt: number): Promise<boolean>;
  /** Debug log of refusals (the reason never reaches the caller). */
  debug?: (msg: string, details: Record<string, unknown>) => void;
}

export type DeviceAuth = ReturnType<typeof createDeviceAuth>;

export function createDeviceAuth(deps: DeviceAuthDeps) {
  const { clock } = deps;

  /** @throws AppError device.unauthorized, one answer for every reason. */
  function refuse(reason: RefusalReason, deviceId?: string): never {
    deps.debug?.('device request refused', { reason, ...(deviceId ? { deviceId } : {}) });
    throw new AppError('device.unauthorized');
  }

  /** The signature headers, and whether the timestamp is within the allowed skew. */
  function readHeaders(req: IncomingSigned) {
    const timestamp = header(req.headers, HEADERS.timestamp);
    const nonce = header(req.headers, HEADERS.nonce);
    const signature = header(req.headers, HEADERS.signature);
    if (!timestamp || !/^[0-9]{1,12}$/.test(timestamp) || !nonce || !NONCE.test(nonce) || !signature) return undefined;
    const fresh = Math.abs(clock.now() / 1000 - Number(timestamp)) <= MAX_SKEW_SECONDS;
    return { timestamp, nonce, signature, fresh };
  }

  /** A nonce must be remembered for as long as its timestamp would still be accepted. */
  const nonceExpiry = (timestamp: string) => (Number(timestamp) + MAX_SKEW_SECONDS + 1) * 1000;

  return {
    /**
     * Authenticates a linked device's request: known and linked device,
     * timestamp within MAX_SKEW_SECONDS, valid signature, nonce not seen
     * before (checked last, so forged requests cannot burn nonces).
     * @returns the device.
     * @throws AppError device.unauthorized (whatever failed)
     */
    async authenticate(req: IncomingSigned): Promise<Device> {
      const deviceId = header(req.headers, HEADERS.device);
      const h = readHeaders(req);
      if (!h || !deviceId || !UUID.test(deviceId)) return refuse('malformed_headers');
      const device = await deps.findDevice(deviceId);
      if (!device) return refuse('unknown_device', deviceId);
      if (device.status !== 'ACTIVE') return refuse('unlinked_device', deviceId);
      if (!h.fresh) return refuse('stale_timestamp', deviceId);
      if (!verifyParts(device.publicKeyJwk, { ...req, ...h }, h.signature)) return refuse('bad_signature', deviceId);
      if (!(await deps.rememberNonce(device.id, h.nonce, nonceExpiry(h.timestamp)))) return refuse('replayed_nonce', deviceId);
      return device;
    },

    /**
     * Checks a link request's proof of possession: signed (same scheme,
     * without a device id) by the key it asks to link, with a fresh timestamp.
     * @returns the nonce and its expiry, to remember once the device exists.
     * @throws AppError device.unauthorized
     */
    verifyLinkRequest(req: IncomingSigned, jwk: DevicePublicJwk): { nonce: string; expiresAt: number } {
      const h = readHeaders(req);
      if (!h) return refuse('malformed_headers');
      if (!h.fresh) return refuse('stale_timestamp');
      if (!verifyParts(jwk, { ...req, ...h }, h.signature)) return refuse('bad_signature');
      return { nonce: h.nonce, expiresAt: nonceExpiry(h.timestamp) };
    },
  };
}
