/**
 * Passkey (WebAuthn) state: the challenges of each ceremony, kept
 * server-side and spent once, and the guarded writes on passkey factor rows
 * (an ACTIVE insert, the signature counter) that the generic factors store
 * does not offer.
 */
import type { Db } from './db.ts';
import { isSqlite, parseJson } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import type { Factor } from './factors.ts';
import { uuid } from '../lib/random.ts';

export type WebAuthnPurpose = 'register' | 'authenticate';

/** Which ceremony a challenge belongs to: its user, its purpose and what it is bound to. */
export interface CeremonyKey {
  userId: string;
  purpose: WebAuthnPurpose;
  binding: string;
}

interface ChallengeRow {
  id: string; user_id: string; purpose: string; binding: string; challenge: string;
  created_at: number; expires_at: number; used_at: number | null;
}

export type WebAuthnStore = ReturnType<typeof createWebAuthnStore>;

export function createWebAuthnStore(db: Db, clock: Clock) {
  const ofCeremony = (q: CeremonyKey, trx: Db = db) =>
    trx<ChallengeRow>('webauthn_challenges').where({ user_id: q.userId, purpose: q.purpose, binding: q.binding }).whereNull('used_at');

  return {
    /**
     * Stores the challenge of new options and spends every earlier unused one
     * of the same ceremony: only the options last shown can be answered.
     */
    async issue(c: CeremonyKey & { challenge: string; expiresAt: number }): Promise<void> {
      const now = clock.now();
      await db.transaction(async (trx) => {
        await ofCeremony(c, trx).update({ used_at: now });
        await trx('webauthn_challenges').insert({
          id: uuid(), user_id: c.userId, purpose: c.purpose, binding: c.binding, challenge: c.challenge,
          created_at: now, expires_at: c.expiresAt, used_at: null,
        });
      });
    },

    /**
     * Spends the live challenge of a ceremony with one guarded write, so of
     * two concurrent answers only one is ever checked against it.
     * @returns the challenge, or null when there is none, it expired or it was used.
     */
    async take(q: CeremonyKey): Promise<string | null> {
      const now = clock.now();
      const row = await ofCeremony(q).andWhere('expires_at', '>', now).orderBy('created_at', 'desc').first('id', 'challenge');
      if (!row) return null;
      const n = await db('webauthn_challenges').where({ id: row.id }).whereNull('used_at').andWhere('expires_at', '>', now).update({ used_at: now });
      return n === 1 ? row.challenge : null;
    },

    async sweepExpired(olderThan: number): Promise<number> {
      return db('webauthn_challenges').where('expires_at', '<', olderThan).del();
    },

    /**
     * Inserts an ACTIVE passkey factor unless the user already has one with
     * the same credential id. Run it in a transaction: the user's row is
     * locked (PostgreSQL; SQLite has a single writer) so that two
     * registrations of one credential cannot both pass the check.
     * @returns false for a duplicate.
     */
    async insertCredential(f: { id: string; userId: string; name: string; credentialId: string; settings: Record<string, unknown> }, trx: Db): Promise<boolean> {
      if (!isSqlite(trx)) await trx('users').where({ id: f.userId }).forUpdate().first('id');
      const rows: Array<{ settings: string }> = await trx('factors').where({ user_id: f.userId, type: 'webauthn' }).select('settings');
      if (rows.some((r) => parseJson<Record<string, unknown>>(r.settings).credentialId === f.credentialId)) return false;
      const now = clock.now();
      await trx('factors').insert({
        id: f.id, user_id: f.userId, type: 'webauthn' satisfies Factor['type'], status: 'ACTIVE' satisfies Factor['status'],
        name: f.name, secret_sealed: null, settings: JSON.stringify(f.settings), last_time_step: null,
        created_at: now, updated_at: now, last_used_at: null,
      });
      return true;
    },

    /**
     * Records an accepted assertion: raises the stored signature counter and
     * sets the last use. The counter is compared with the value in the row at
     * write time (not the one read before the signature was checked), and the
     * write is conditional on the row being unchanged since, so of two
     * assertions racing from one counter value only one is accepted.
     * @returns false when the counter would not rise (replay, clone or lost race).
     */
    async recordAssertion(q: { factorId: string; userId: string; newCounter: number; backedUp: boolean }, trx: Db = db): Promise<boolean> {
      const row: { settings: string } | undefined = await trx('factors')
        .where({ id: q.factorId, user_id: q.userId, type: 'webauthn', status: 'ACTIVE' }).first('settings');
      if (!row) return false;
      const settings = parseJson<Record<string, unknown>>(row.settings);
      const stored = Number(settings.counter ?? 0);
      // WebAuthn §7.2 step 21: a counter of zero on both sides means the authenticator keeps none.
      if ((q.newCounter > 0 || stored > 0) && q.newCounter <= stored) return false;
      const now = clock.now();
      const n = await trx('factors').where({ id: q.factorId, settings: row.settings }).update({
        settings: JSON.stringify({ ...settings, counter: q.newCounter, backedUp: q.backedUp }), last_used_at: now, updated_at: now,
      });
      return n === 1;
    },
  };
}
