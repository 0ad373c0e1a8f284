/**
 * Recovery codes: ten single-use codes a person keeps on paper for the day
 * their phone is gone. Each is 12 characters of Crockford's base32 (60 bits),
 * shown as `ABCD-EFGH-JKMN`, shown once and stored only as a keyed hash.
 * Typing is forgiving: case, spaces and dashes do not matter, and O/I/L are
 * read as 0/1/1.
 */
import type { Db } from '../store/db.ts';
import type { RecoveryCodesStore } from '../store/recovery-codes.ts';
import type { EventsStore } from '../store/events.ts';
import { randomString } from '../lib/random.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LENGTH = 12;
export const RECOVERY_CODE_COUNT = 10;
/** At or below this many unused codes, the person is asked to make new ones. */
export const RECOVERY_CODES_LOW = 3;

/** @returns the canonical form of what a person typed, or null when it cannot be a code. */
export function normalizeRecoveryCode(input: string): string | null {
  if (typeof input !== 'string' || input.length > 40) return null;
  const s = input.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (s.length !== LENGTH) return null;
  for (const ch of s) if (!ALPHABET.includes(ch)) return null;
  return s;
}

const format = (code: string) => code.match(/.{4}/g)!.join('-');

export type RecoveryCodes = ReturnType<typeof createRecoveryCodes>;

export function createRecoveryCodes(deps: { store: RecoveryCodesStore; events: EventsStore; hash: (value: string) => string }) {
  const { store, events } = deps;
  // Bound to the user: the same code of two users hashes differently.
  const hashOf = (userId: string, code: string) => deps.hash(`${userId}:${code}`);

  /**
   * Makes a new set and voids the old one.
   * @returns the codes, formatted for a person: the only time they exist in the clear.
   */
  async function generate(userId: string, context: { actor?: string } = {}, trx?: Db): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => randomString(LENGTH, ALPHABET));
    await store.replace(userId, codes.map((c) => hashOf(userId, c)), trx);
    await events.record({ type: 'recovery_codes.generated', userId, details: { count: codes.length, ...context } }, trx);
    return codes.map(format);
  }


  return {
    generate,

    /**
     * Makes the first set if the user never had one (called when a first
     * second factor becomes active).
     * @returns the codes, or null when the user already has a set.
     */
    async generateIfNone(userId: string, trx?: Db): Promise<string[] | null> {
      if (await store.hasSet(userId, trx)) return null;
      return generate(userId, {}, trx);
    },

    /**
     * Checks a code without spending it.
     * @returns a token for `spend`, or null for a wrong, malformed or used code.
     */
    async match(userId: string, input: string): Promise<string | null> {
      const code = normalizeRecoveryCode(input);
      if (!code) return null;
      const hash = hashOf(userId, code);
      return (await store.isUnused(userId, hash)) ? hash : null;
    },

    /** @returns false when a concurrent request spent it first. */
    spend: (userId: string, matched: string, trx?: Db) => store.spend(userId, matched, trx),

    remaining: (userId: string, trx?: Db) => store.remaining(userId, trx),

    /** Removes the set (when the last second factor is removed or factors are reset). */
    remove: (userId: string, trx?: Db) => store.deleteAll(userId, trx),
  };
}
