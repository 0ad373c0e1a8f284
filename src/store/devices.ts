/**
 * Linked devices, their linking codes and the nonces of their signed
 * requests. Only public keys and hashes of codes are stored. Spending a code
 * and remembering a nonce are each one conditional write, so two concurrent
 * requests can never both use the same one.
 */
import type { Db } from './db.ts';
import { isUniqueViolation } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { uuid } from '../lib/random.ts';

export type DeviceStatus = 'ACTIVE' | 'UNLINKED';

/** A device's public key: exactly these members, never a private part. */
export interface DevicePublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

export interface Device {
  id: string;
  userId: string;
  name: string;
  publicKeyJwk: DevicePublicJwk;
  keyThumbprint: string;
  status: DeviceStatus;
  createdAt: number;
  lastSeenAt: number | null;
}

interface Row {
  id: string; user_id: string; name: string; public_key_jwk: string; key_thumbprint: string;
  status: string; created_at: number; last_seen_at: number | null; unlinked_at: number | null;
}

const toDevice = (r: Row): Device => ({
  id: r.id, userId: r.user_id, name: r.name, publicKeyJwk: JSON.parse(r.public_key_jwk) as DevicePublicJwk,
  keyThumbprint: r.key_thumbprint, status: r.status as DeviceStatus, createdAt: Number(r.created_at),
  lastSeenAt: r.last_seen_at === null ? null : Number(r.last_seen_at),
});

export type DevicesStore = ReturnType<typeof createDevicesStore>;

export function createDevicesStore(db: Db, clock: Clock) {
  return {
    transaction: <T>(fn: (trx: Db) => Promise<T>): Promise<T> => db.transaction(fn),

    /** Stores a new linking code (by its hash) and spends the user's earlier unused ones: one live code per user. */
    async replaceLinkingCode(input: { hash: string; userId: string; expiresAt: number }): Promise<void> {
      const now = clock.now();
      await db.transaction(async (trx) => {
        await trx('device_linking_codes').where({ user_id: input.userId }).whereNull('used_at').update({ used_at: now });
        await trx('device_linking_codes').insert({ id: input.hash, user_id: input.userId, created_at: now, expires_at: input.expiresAt, used_at: null });
      });
    },

    /**
     * Spends a linking code: succeeds once, while it is unused and unexpired.
     * @returns the user the code was made for, or undefined.
     */
    async spendLinkingCode(hash: string, trx: Db = db): Promise<string | undefined> {
      const now = clock.now();
      const n = await trx('device_linking_codes').where({ id: hash }).whereNull('used_at').andWhere('expires_at', '>', now).update({ used_at: now });
      if (n !== 1) return undefined;
      const r = await trx('device_linking_codes').where({ id: hash }).first('user_id');
      return r?.user_id as string | undefined;
    },

    /** @throws the driver's unique violation when the key is already linked (see isUniqueViolation). */
    async insert(input: { userId: string; name: string; publicKeyJwk: DevicePublicJwk; keyThumbprint: string }, trx: Db = db): Promise<Device> {
      const now = clock.now();
      const row: Row = {
        id: uuid(), user_id: input.userId, name: input.name, public_key_jwk: JSON.stringify(input.publicKeyJwk),
        key_thumbprint: input.keyThumbprint, status: 'ACTIVE', created_at: now, last_seen_at: now, unlinked_at: null,
      };
      await trx('devices').insert(row);
      return toDevice(row);
    },

    async findById(id: string): Promise<Device | undefined> {
      const r = await db<Row>('devices').where({ id }).first();
      return r && toDevice(r);
    },

    /** The user's linked (active) devices, oldest first. */
    async listActive(userId: string): Promise<Device[]> {
      return (await db<Row>('devices').where({ user_id: userId, status: 'ACTIVE' }).orderBy('created_at').orderBy('id')).map(toDevice);
    },

    async hasActive(userId: string): Promise<boolean> {
      return Boolean(await db('devices').where({ user_id: userId, status: 'ACTIVE' }).first('id'));
    },

    /** @returns false when the user has no such active device. */
    async rename(userId: string, id: string, name: string): Promise<boolean> {
      return (await db('devices').where({ id, user_id: userId, status: 'ACTIVE' }).update({ name })) === 1;
    },

    /** Unlinks an active device and forgets its nonces. @returns false when the user has no such active device. */
    async unlink(userId: string, id: string): Promise<boolean> {
      return db.transaction(async (trx) => {
        const n = await trx('devices').where({ id, user_id: userId, status: 'ACTIVE' }).update({ status: 'UNLINKED', unlinked_at: clock.now() });
        if (n === 1) await trx('device_request_nonces').where({ device_id: id }).del();
        return n === 1;
      });
    },

    /** Unlinks every device of the user (an admin's factor reset). @returns how many. */
    async unlinkAll(userId: string, trx: Db = db): Promise<number> {
      return trx('devices').where({ user_id: userId, status: 'ACTIVE' }).update({ status: 'UNLINKED', unlinked_at: clock.now() });
    },

    async touch(id: string): Promise<void> {
      await db('devices').where({ id }).update({ last_seen_at: clock.now() });
    },

    /**
     * Remembers a request nonce of a device until `expiresAt`. Also drops
     * this device's expired nonces (a device has only a handful live).
     * @returns false when the nonce was already used: a replay.
     */
    async rememberNonce(deviceId: string, nonce: string, expiresAt: number, trx: Db = db): Promise<boolean> {
      await trx('device_request_nonces').where({ device_id: deviceId }).andWhere('expires_at', '<', clock.now()).del();
      try {
        await trx('device_request_nonces').insert({ device_id: deviceId, nonce, expires_at: expiresAt });
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },

    /** Deletes expired nonces and linking codes that expired before `olderThan`. */
    async sweep(olderThan: number): Promise<number> {
      const nonces = await db('device_request_nonces').where('expires_at', '<', clock.now()).del();
      const codes = await db('device_linking_codes').where('expires_at', '<', olderThan).del();
      return nonces + codes;
    },
  };
}
