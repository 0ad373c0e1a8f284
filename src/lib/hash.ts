import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** SHA-256 in hex: for looking up high-entropy tokens we only need to compare. */
export function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export function hmac(key: Buffer | string, value: string): Buffer {
  return createHmac('sha256', key).update(value, 'utf8').digest();
}

/** Constant-time string comparison (lengths are compared via fixed-size digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/**
 * A keyed hash for short secrets we only need to recognise (recovery codes,
 * codes sent by SMS or email): without the key, a copy of the database does
 * not let anyone try the small code space offline. The key is derived from
 * `key` (the seal key) with HKDF, one key per `purpose`.
 * @returns a function from value to hex digest.
 */
export function keyedHasher(key: Buffer, purpose: string): (value: string) => string {
  const derived = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `twofold:${purpose}`, 32));
  return (value) => createHmac('sha256', derived).update(value, 'utf8').digest('hex');
}
