/**
 * Linked devices (the device half of push approval): linking codes, linking
 * with proof of possession of the device's key, authenticating its signed
 * requests, and the person's own list (rename, unlink). No Koa here.
 *
 * A linking code is 80 random bits in Crockford base32 (16 characters, shown
 * in groups of four), valid 10 minutes and spent by one guarded write. Only
 * its SHA-256 is stored: at 80 bits nobody can search the code space, so a
 * keyed hash would add nothing.
 */
import QRCode from 'qrcode';
import { AppError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { sha256 } from '../lib/hash.ts';
import { randomString } from '../lib/random.ts';
import type { Db } from '../store/db.ts';
import { isUniqueViolation } from '../store/db.ts';
import { createDevicesStore, type Device, type DevicesStore } from '../store/devices.ts';
import { createDeviceAuth, jwkThumbprint, parsePublicJwk, type IncomingSigned } from './device-auth.ts';

export const LINK_CODE_TTL_MS = 10 * 60_000;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODE_LENGTH = 16;
const NAME_MAX = 100;

/** Audit event types this module records; they belong in src/store/events.ts EVENT_TYPES. */
export const DEVICE_EVENT_TYPES = ['device.link_code_created', 'device.linked', 'device.renamed', 'device.unlinked'] as const;
export type DeviceEventType = (typeof DEVICE_EVENT_TYPES)[number];

export interface DeviceEvents {
  record(e: { type: DeviceEventType; userId: string; details?: Record<string, unknown> }, trx?: Db): Promise<void>;
}

/** What the security page shows of a device. */
export interface DeviceSummary {
  id: string;
  name: string;
  createdAt: number;
  lastSeenAt: number | null;
}

export interface LinkingCode {
  /** The code as shown: four groups of four characters. */
  code: string;
  /** `twofold://link?issuer=…&code=…`, for the QR code. */
  uri: string;
  /** The QR code of `uri` as a `data:image/png` URL. */
  qr: string;
  expiresAt: number;
}

export interface DevicesDeps {
  db: Db;
  clock: Clock;
  issuer: string;
  users: { findById(id: string, trx?: Db): Promise<{ email: string; status: string } | undefined> };
  /** Defaults to a store over `db`. */
  store?: DevicesStore;
  events?: DeviceEvents;
  /** Debug log for refused device requests. */
  debug?: (msg: string, details: Record<string, unknown>) => void;
}

/**
 * A typed code as the canonical 16 characters: case, spaces and dashes do
 * not matter, and the letters people confuse with digits (O, I, L) count as
 * those digits, as Crockford's alphabet intends.
 * @returns undefined when it cannot be a linking code.
 */
export function normalizeLinkingCode(typed: string): string | undefined {
  const s = typed.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return s.length === CODE_LENGTH && [...s].every((c) => CROCKFORD.includes(c)) ? s : undefined;
}

/** A device name as stored: trimmed, 1–100 characters, no control characters. @throws AppError request.invalid */
function cleanName(name: unknown): string {
  const s = typeof name === 'string' ? name.trim() : '';
  if (s.length === 0 || s.length > NAME_MAX || /\p{Cc}/u.test(s)) throw new AppError('request.invalid', { details: { field: 'name', reason: `1 to ${NAME_MAX} characters` } });
  return s;
}

const summary = (d: Device): DeviceSummary => ({ id: d.id, name: d.name, createdAt: d.createdAt, lastSeenAt: d.lastSeenAt });

export type Devices = ReturnType<typeof createDevices>;

export function createDevices(deps: DevicesDeps) {
  const { db, clock, issuer } = deps;
  const store = deps.store ?? createDevicesStore(db, clock);
  const auth = createDeviceAuth({
    clock, findDevice: (id) => store.findById(id), rememberNonce: (id, nonce, exp) => store.rememberNonce(id, nonce, exp),
    ...(deps.debug ? { debug: deps.debug } : {}),
  });

  return {
    issuer,

    /** A new linking code for the user; earlier unused codes stop working. */
    async createLinkingCode(userId: string): Promise<LinkingCode> {
      const raw = randomString(CODE_LENGTH, CROCKFORD);
      const expiresAt = clock.now() + LINK_CODE_TTL_MS;
      await store.replaceLinkingCode({ hash: sha256(raw), userId, expiresAt });
      await deps.events?.record({ type: 'device.link_code_created', userId });
      const code = raw.replace(/(.{4})(?=.)/g, '$1-');
      const uri = `twofold://link?${new URLSearchParams({ issuer, code }).toString()}`;
      return { code, uri, qr: await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', type: 'image/png' }), expiresAt };
    },

    /**
     * Links a device: the request must be signed by the key it brings (proof
     * of possession), and the code is spent in the same transaction that
     * stores the device, so a failure leaves the code usable.
     * @returns the new device and the account's email (for the app's label).
     * @throws AppError request.invalid (name or key malformed);
     *   AppError device.unauthorized (signature or timestamp),
     *   device.link_code_invalid (unknown, expired, used; or the user is not active),
     *   device.key_in_use (this key is linked already)
     */
    async link(input: { code: unknown; name: unknown; publicKeyJwk: unknown; request: IncomingSigned }): Promise<{ device: Device; account: string }> {
      const jwk = parsePublicJwk(input.publicKeyJwk);
      if (!jwk) throw new AppError('request.invalid', { details: { field: 'publicKeyJwk', reason: 'an EC P-256 public JWK (kty, crv, x, y) without a private part' } });
      const name = cleanName(input.name);
      const proof = auth.verifyLinkRequest(input.request, jwk);
      const code = typeof input.code === 'string' ? normalizeLinkingCode(input.code) : undefined;
      if (!code) throw new AppError('device.link_code_invalid');
      try {
        return await store.transaction(async (trx) => {
          const userId = await store.spendLinkingCode(sha256(code), trx);
          const user = userId ? await deps.users.findById(userId, trx) : undefined;
          if (!userId || !user || user.status !== 'ACTIVE') throw new AppError('device.link_code_invalid');
          const device = await store.insert({ userId, name, publicKeyJwk: jwk, keyThumbprint: jwkThumbprint(jwk) }, trx);
          await store.rememberNonce(device.id, proof.nonce, proof.expiresAt, trx);
          await deps.events?.record({ type: 'device.linked', userId, details: { deviceId: device.id, name } }, trx);
          return { device, account: user.email };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new AppError('device.key_in_use', { cause: err });
        throw err;
      }
    },

    /**
     * Authenticates a signed device request and records that the device was seen.
     * @throws AppError device.unauthorized
     */
    async authenticate(request: IncomingSigned): Promise<Device> {
      const device = await auth.authenticate(request);
      await store.touch(device.id);
      return device;
    },

    /** True while the device is linked (a stream re-checks this). */
    async isActive(deviceId: string): Promise<boolean> {
      return (await store.findById(deviceId))?.status === 'ACTIVE';
    },

    async list(userId: string): Promise<DeviceSummary[]> {
      return (await store.listActive(userId)).map(summary);
    },

    /** @throws AppError request.invalid (name), request.not_found (no such linked device of this user) */
    async rename(userId: string, deviceId: string, name: string): Promise<void> {
      const clean = cleanName(name);
      if (!(await store.rename(userId, deviceId, clean))) throw new AppError('request.not_found');
      await deps.events?.record({ type: 'device.renamed', userId, details: { deviceId, name: clean } });
    },

    /**
     * Unlinks a device: from then on none of its requests authenticate.
     * @throws AppError request.not_found (no such linked device of this user)
     */
    async unlink(userId: string, deviceId: string, by: 'account' | 'device' = 'account'): Promise<void> {
      if (!(await store.unlink(userId, deviceId))) throw new AppError('request.not_found');
      await deps.events?.record({ type: 'device.unlinked', userId, details: { deviceId, by } });
    },

    hasActive: (userId: string): Promise<boolean> => store.hasActive(userId),

    /** Deletes expired nonces and codes; for the periodic sweeper. */
    sweep: (olderThan: number): Promise<number> => store.sweep(olderThan),
  };
}
