/**
 * AES-256-GCM sealing for secrets we must be able to read back (TOTP seeds,
 * signing keys, cookie keys). Hash instead whatever only needs comparing.
 *
 * Format: `v1.<iv>.<ciphertext||tag>` in base64url. The optional `context`
 * is authenticated data: a sealed value copied to another row (another
 * context) no longer opens.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface Sealer {
  seal(plaintext: string | Buffer, context?: string): string;
  /** @throws Error when the value was tampered with, sealed under another key or context. */
  open(sealed: string, context?: string): Buffer;
  openString(sealed: string, context?: string): string;
}

/** @throws Error when the key is not exactly 32 bytes. */
export function createSealer(key: Buffer): Sealer {
  if (key.length !== 32) throw new Error('the seal key must be 32 bytes (base64 of 32 random bytes)');
  const sealer: Sealer = {
    seal(plaintext, context = '') {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, context = '') {
      const [version, ivPart, bodyPart, extra] = sealed.split('.');
      if (version !== VERSION || !ivPart || !bodyPart || extra !== undefined) throw new Error('sealed value is malformed');
      const iv = Buffer.from(ivPart, 'base64url');
      const body = Buffer.from(bodyPart, 'base64url');
      if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new Error('sealed value is malformed');
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
      } catch (cause) {
        throw new Error('sealed value failed authentication', { cause });
      }
    },
    openString(sealed, context) {
      return sealer.open(sealed, context).toString('utf8');
    },
  };
  return sealer;
}
