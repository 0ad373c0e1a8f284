import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.ts';

/**
 * The 32-byte seal key: from configuration (SEAL_KEY), or for the embedded
 * default a key generated once into `secrets.sealKeyFile` (mode 0600).
 * @throws Error when neither is configured or the key is not 32 bytes.
 */
export function loadSealKey(config: Config): Buffer {
  const { sealKey, sealKeyFile } = config.secrets;
  let encoded = sealKey;
  if (!encoded && sealKeyFile) {
    if (!existsSync(sealKeyFile)) {
      mkdirSync(path.dirname(path.resolve(sealKeyFile)), { recursive: true });
      writeFileSync(sealKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    }
    encoded = readFileSync(sealKeyFile, 'utf8').trim();
  }
  if (!encoded) throw new Error('no seal key: set SEAL_KEY (base64 of 32 random bytes)');
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== 32) throw new Error('SEAL_KEY must be base64 of exactly 32 bytes');
  return key;
}
