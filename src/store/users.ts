import type { Db } from './db.ts';
import type { Clock } from '../lib/clock.ts';
import { uuid } from '../lib/random.ts';

export type UserStatus = 'ACTIVE' | 'SUSPENDED';

export interface User {
  id: string;
  email: string;
  name: string | null;
  phone: string | null;
  status: UserStatus;
  passwordHash: string | null;
  createdAt: number;
  updatedAt: number;
}

/** The columns a management update may change; absent means unchanged. */
export interface UserPatch {
  email?: string;
  name?: string | null;
  passwordHash?: string;
  status?: UserStatus;
}

interface Row {
  id: string; email: string; name: string | null; phone: string | null; status: string;
  password_hash: string | null; created_at: number; updated_at: number;
}

function toUser(r: Row): User {
  return {
    id: r.id, email: r.email, name: r.name, phone: r.phone, status: r.status as UserStatus,
    passwordHash: r.password_hash, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

/** `%` and `_` are LIKE wildcards; `!` is our escape character (portable, unlike a backslash). */
function likeContains(term: string): string {
  return `%${term.replace(/[!%_]/g, '!$&')}%`;
}

export type UsersStore = ReturnType<typeof createUsersStore>;

/**
 * Every method takes an optional `trx` so a change and its audit event can be
 * written in one transaction. With SQLite's single connection, a query inside
 * a transaction that does not use `trx` would wait forever for the pool.
 */
export function createUsersStore(db: Db, clock: Clock) {
  return {
    transaction: <T>(fn: (trx: Db) => Promise<T>): Promise<T> => db.transaction(fn),

    /** @throws the driver's unique violation when the email is taken (see isUniqueViolation). */
    async insert(input: { email: string; name?: string | null; phone?: string | null; passwordHash?: string | null }, trx: Db = db): Promise<User> {
      const now = clock.now();
      const row: Row = {
        id: uuid(), email: input.email, name: input.name ?? null, phone: input.phone ?? null,
        status: 'ACTIVE', password_hash: input.passwordHash ?? null, created_at: now, updated_at: now,
      };
      await trx('users').insert(row);
      return toUser(row);
    },
    async findById(id: string, trx: Db = db): Promise<User | undefined> {
      const r = await trx<Row>('users').where({ id }).first();
      return r && toUser(r);
    },
    async findByEmail(email: string): Promise<User | undefined> {
      const r = await db<Row>('users').where({ email }).first();
      return r && toUser(r);
    },

    /**
     * Users ordered by email (unique, so the order is total and keyset paging
     * is stable), after `afterEmail` when given. `q` must already be
     * lower-cased: it matches a substring of the email (stored lower-cased)
     * or of `lower(name)`. SQLite's lower() folds ASCII letters only.
     */
    async list(options: { limit: number; afterEmail?: string; q?: string }): Promise<User[]> {
      const q = db<Row>('users').orderBy('email').limit(options.limit);
      if (options.afterEmail !== undefined) q.where('email', '>', options.afterEmail);
      if (options.q) {
        const pattern = likeContains(options.q);
        q.where((w) => w.whereRaw("email like ? escape '!'", [pattern]).orWhereRaw("lower(name) like ? escape '!'", [pattern]));
      }
      return (await q).map(toUser);
    },

    /**
     * Applies `patch` and bumps `updated_at`; with `ifStatus`, only while the
     * user is in that status (one conditional write, so two concurrent
     * suspensions cannot both succeed).
     * @returns false when no row matched (no such user, or not in `ifStatus`).
     * @throws the driver's unique violation when the new email is taken.
     */
    async update(id: string, patch: UserPatch, options: { ifStatus?: UserStatus; trx?: Db } = {}): Promise<boolean> {
      const changes: Partial<Row> = { updated_at: clock.now() };
      if (patch.email !== undefined) changes.email = patch.email;
      if (patch.name !== undefined) changes.name = patch.name;
      if (patch.passwordHash !== undefined) changes.password_hash = patch.passwordHash;
      if (patch.status !== undefined) changes.status = patch.status;
      const q = (options.trx ?? db)('users').where({ id });
      if (options.ifStatus) q.andWhere({ status: options.ifStatus });
      return (await q.update(changes)) > 0;
    },

    /** Factors and challenges go with the user (ON DELETE CASCADE). @returns false when no such user. */
    async delete(id: string, trx: Db = db): Promise<boolean> {
      return (await trx('users').where({ id }).del()) > 0;
    },

    /** @returns false when no such user. */
    async setPasswordHash(id: string, passwordHash: string): Promise<boolean> {
      const n = await db('users').where({ id }).update({ password_hash: passwordHash, updated_at: clock.now() });
      return n > 0;
    },
  };
}
