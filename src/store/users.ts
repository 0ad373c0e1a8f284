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

export type UsersStore = ReturnType<typeof createUsersStore>;

export function createUsersStore(db: Db, clock: Clock) {
  return {
    /** @throws the driver's unique violation when the email is taken (see isUniqueViolation). */
    async insert(input: { email: string; name?: string | null; phone?: string | null; passwordHash?: string | null }): Promise<User> {
      const now = clock.now();
      const row: Row = {
        id: uuid(), email: input.email, name: input.name ?? null, phone: input.phone ?? null,
        status: 'ACTIVE', password_hash: input.passwordHash ?? null, created_at: now, updated_at: now,
      };
      await db('users').insert(row);
      return toUser(row);
    },
    async findById(id: string): Promise<User | undefined> {
      const r = await db<Row>('users').where({ id }).first();
      return r && toUser(r);
    },
    async findByEmail(email: string): Promise<User | undefined> {
      const r = await db<Row>('users').where({ email }).first();
      return r && toUser(r);
    },
    async list(options: { limit: number; after?: string }): Promise<User[]> {
      const q = db<Row>('users').orderBy('email').limit(options.limit);
      if (options.after) q.where('email', '>', options.after);
      return (await q).map(toUser);
    },
    /** @returns false when no such user. */
    async setPasswordHash(id: string, passwordHash: string): Promise<boolean> {
      const n = await db('users').where({ id }).update({ password_hash: passwordHash, updated_at: clock.now() });
      return n > 0;
    },
  };
}
