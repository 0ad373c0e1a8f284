/**
 * argon2id password hashing. Hashing runs on libuv's thread pool, off the
 * event loop. Parameters come from configuration; a stored hash weaker than
 * them is replaced at the next successful sign-in.
 */
import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';

// Algorithm.Argon2id; the package exports it as an ambient const enum.
const ARGON2ID = 2;
import { randomToken } from '../lib/random.ts';

export interface PasswordParams {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Never throws on a malformed hash: that is a failed check. */
  verify(passwordHash: string, password: string): Promise<boolean>;
  /** Spends the same work as a real check, for users who do not exist. */
  verifyDummy(password: string): Promise<void>;
  needsRehash(passwordHash: string): boolean;
}

/** Reads m, t and p from a PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…`. */
export function parseArgon2Params(phc: string): (PasswordParams & { algorithm: string }) | undefined {
  const m = /^\$(argon2(?:id|i|d))\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(phc);
  if (!m) return undefined;
  return { algorithm: m[1]!, memoryCost: Number(m[2]), timeCost: Number(m[3]), parallelism: Number(m[4]) };
}

/** @param timed wraps each hash and verify, to observe its duration (metrics). */
export function createPasswordHasher(params: PasswordParams, timed: <T>(work: () => Promise<T>) => Promise<T> = (w) => w()): PasswordHasher {
  const options = { algorithm: ARGON2ID, ...params };
  const hash = (password: string) => timed(() => argonHash(password, options));
  const verify = (h: string, password: string) => timed(() => argonVerify(h, password));
  let dummy: Promise<string> | undefined;
  return {
    hash,
    async verify(passwordHash, password) {
      try {
        return await verify(passwordHash, password);
      } catch {
        return false;
      }
    },
    async verifyDummy(password) {
      dummy ??= argonHash(randomToken(16), options);
      await verify(await dummy, password).catch(() => false);
    },
    needsRehash(passwordHash) {
      const p = parseArgon2Params(passwordHash);
      return !p || p.algorithm !== 'argon2id' || p.memoryCost < params.memoryCost
        || p.timeCost < params.timeCost || p.parallelism < params.parallelism;
    },
  };
}
