/**
 * "Remember this browser": one server-side record per browser and user. The
 * browser holds a random token; only its SHA-256 is stored, so a copy of the
 * database does not let anyone skip anybody's second factor.
 */
import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';

export interface TrustedBrowser {
  id: string;
  userId: string;
  label: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
}

interface Row { id: string; user_id: string; label: string; created_at: number; expires_at: number; last_used_at: number | null; revoked_at: number | null }

const toRecord = (r: Row): TrustedBrowser => ({
  id: r.id, userId: r.user_id, label: r.label, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at),
  lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
});

export type TrustedBrowsersStore = ReturnType<typeof createTrustedBrowsersStore>;

export function createTrustedBrowsersStore(db: Db, clock: Clock) {
  const live = () => db<Row>('trusted_browsers').whereNull('revoked_at').andWhere('expires_at', '>', clock.now());
  return {
    async insert(input: { id: string; userId: string; label: string; expiresAt: number }): Promise<void> {
      await db('trusted_browsers').insert({
        id: input.id, user_id: input.userId, label: input.label, created_at: clock.now(), expires_at: input.expiresAt, last_used_at: null, revoked_at: null,
      });
    },
    /** The live record with this id for this user; marks it used. */
    async use(id: string, userId: string): Promise<TrustedBrowser | undefined> {
      const r = await live().andWhere({ id, user_id: userId }).first();
      if (!r) return undefined;
      await db('trusted_browsers').where({ id }).update({ last_used_at: clock.now() });
      return toRecord(r);
    },
    async listLive(userId: string): Promise<TrustedBrowser[]> {
      return (await live().andWhere({ user_id: userId }).orderBy('created_at', 'desc')).map(toRecord);
    },
    /** @returns false when the user has no such live record. */
    async revoke(userId: string, id: string): Promise<boolean> {
      return (await db('trusted_browsers').where({ id, user_id: userId }).whereNull('revoked_at').update({ revoked_at: clock.now() })) === 1;
    },
    /** @returns how many were revoked. */
    async revokeAll(userId: string, trx: Db = db): Promise<number> {
      return trx('trusted_browsers').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: clock.now() });
    },
  };
}
