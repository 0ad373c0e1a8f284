/**
 * Accounts: creation, password sign-in, and the management operations
 * (update, suspend, delete). Every change is written together with its audit
 * event, in one transaction, so the trail cannot miss a change.
 */
import type { UsersStore, User, UserPatch, UserStatus } from '../store/users.ts';
import type { EventsStore, EventType } from '../store/events.ts';
import { isUniqueViolation, type Db } from '../store/db.ts';
import { AppError } from '../errors.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, type PasswordHasher } from './passwords.ts';

/** Trimmed, NFC, lower-cased: the form emails are stored and looked up in. */
export function normaliseEmail(raw: string): string {
  return raw.normalize('NFC').trim().toLowerCase();
}

// No colon: the otpauth label (Issuer:account) cannot carry one.
const EMAIL = /^[^\s@:]{1,64}@[^\s@:]+\.[^\s@:]+$/;

export function isValidEmail(email: string): boolean {
  return email.length <= 320 && EMAIL.test(email);
}

export const MAX_NAME_LENGTH = 200;

/** @throws AppError request.invalid with a person-readable reason. */
export function assertAcceptablePassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new AppError('request.invalid', { message: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`, details: { field: 'password' } });
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new AppError('request.invalid', { message: `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.`, details: { field: 'password' } });
  }
}

/** @returns the normalised email. @throws AppError request.invalid */
function acceptableEmail(raw: string): string {
  const email = normaliseEmail(raw);
  if (!isValidEmail(email)) {
    throw new AppError('request.invalid', { message: 'That is not a valid email address.', details: { field: 'email' } });
  }
  return email;
}

/** Trimmed and NFC; blank means no name. @throws AppError request.invalid when too long. */
function acceptableName(raw: string | null): string | null {
  const name = raw?.normalize('NFC').trim() || null;
  if (name !== null && name.length > MAX_NAME_LENGTH) {
    throw new AppError('request.invalid', { message: `The name must be at most ${MAX_NAME_LENGTH} characters long.`, details: { field: 'name' } });
  }
  return name;
}

/** Who made a change, for the audit trail: an `api_key:<id>` and the caller's address. */
export interface AuditContext {
  actor?: string;
  ip?: string;
}

/** One page of users in email order; `nextAfter` is the key to pass as `afterEmail` for the next page. */
export interface UserPage {
  users: User[];
  nextAfter: string | null;
}

export type UserService = ReturnType<typeof createUserService>;

export function createUserService(deps: { users: UsersStore; events: EventsStore; hasher: PasswordHasher }) {
  const { users, events, hasher } = deps;

  /** Records an event about `userId` inside `trx`. Callers never pass a password, hash or secret in `details`. */
  function audit(trx: Db, type: EventType, userId: string, context: AuditContext, details: Record<string, unknown> = {}) {
    return events.record({ type, userId, ip: context.ip ?? null, details: { ...details, ...(context.actor ? { actor: context.actor } : {}) } }, trx);
  }

  /** Runs `fn` in a transaction, turning a duplicate email into user.email_taken. */
  async function write<T>(fn: (trx: Db) => Promise<T>): Promise<T> {
    try {
      return await users.transaction(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('user.email_taken');
      throw err;
    }
  }

  /** @throws AppError user.not_found */
  async function get(id: string): Promise<User> {
    const user = await users.findById(id);
    if (!user) throw new AppError('user.not_found');
    return user;
  }

  /**
   * Moves a user from the other status to `status` with one conditional write.
   * @throws AppError user.not_found, user.already_in_state
   */
  async function setStatus(id: string, status: UserStatus, context: AuditContext): Promise<User> {
    const from: UserStatus = status === 'SUSPENDED' ? 'ACTIVE' : 'SUSPENDED';
    const changed = await write(async (trx) => {
      if (!(await users.update(id, { status }, { ifStatus: from, trx }))) return false;
      await audit(trx, status === 'SUSPENDED' ? 'user.suspended' : 'user.unsuspended', id, context);
      return true;
    });
    const user = await get(id);
    if (!changed) throw new AppError('user.already_in_state', { details: { status: user.status } });
    return user;
  }

  async function page(options: { q?: string; limit: number; afterEmail?: string }): Promise<UserPage> {
    const q = options.q?.normalize('NFC').trim().toLowerCase() || undefined;
    // One extra row tells whether another page exists without a count query.
    const rows = await users.list({ limit: options.limit + 1, q, afterEmail: options.afterEmail });
    const more = rows.length > options.limit;
    const shown = more ? rows.slice(0, options.limit) : rows;
    return { users: shown, nextAfter: more ? shown[shown.length - 1]!.email : null };
  }

  return {
    /**
     * @throws AppError request.invalid (bad email, name or password), user.email_taken
     */
    async create(input: { email: string; name?: string | null; password?: string | null }, context: AuditContext = {}): Promise<User> {
      const email = acceptableEmail(input.email);
      const name = acceptableName(input.name ?? null);
      if (input.password != null) assertAcceptablePassword(input.password);
      const passwordHash = input.password != null ? await hasher.hash(input.password) : null;
      return write(async (trx) => {
        const user = await users.insert({ email, name, passwordHash }, trx);
        await audit(trx, 'user.created', user.id, context);
        return user;
      });
    },

    /**
     * Checks a password. Unknown users, users without a password, suspended
     * users and wrong passwords all cost one argon2 verification and all
     * answer undefined, so neither the answer nor its timing tells them apart.
     */
    async authenticate(loginId: string, password: string, context: { clientId?: string; ip?: string } = {}): Promise<User | undefined> {
      const email = normaliseEmail(loginId);
      const user = email.length <= 320 && password.length <= MAX_PASSWORD_LENGTH ? await users.findByEmail(email) : undefined;
      let ok = false;
      if (user?.passwordHash) ok = await hasher.verify(user.passwordHash, password);
      else await hasher.verifyDummy(password.slice(0, MAX_PASSWORD_LENGTH));
      if (!ok || !user || user.status !== 'ACTIVE') {
        await events.record({ type: 'login.password.failed', userId: user?.id ?? null, clientId: context.clientId ?? null, ip: context.ip ?? null });
        return undefined;
      }
      if (hasher.needsRehash(user.passwordHash!)) {
        await users.setPasswordHash(user.id, await hasher.hash(password));
      }
      await events.record({ type: 'login.password.succeeded', userId: user.id, clientId: context.clientId ?? null, ip: context.ip ?? null });
      return user;
    },

    /** @throws AppError user.not_found, request.invalid */
    async setPassword(userId: string, password: string, context: AuditContext = {}): Promise<void> {
      assertAcceptablePassword(password);
      const passwordHash = await hasher.hash(password);
      await write(async (trx) => {
        if (!(await users.update(userId, { passwordHash }, { trx }))) throw new AppError('user.not_found');
        await audit(trx, 'user.password_changed', userId, context);
      });
    },

    /**
     * Changes what is given and records `user.updated` (with the fields that
     * changed) and/or `user.password_changed`. A change to the current values
     * is a no-op that records nothing.
     * @throws AppError user.not_found, request.invalid (bad email, name or
     *   password), user.email_taken
     */
    async update(id: string, input: { email?: string; name?: string | null; password?: string }, context: AuditContext = {}): Promise<User> {
      const email = input.email !== undefined ? acceptableEmail(input.email) : undefined;
      const name = input.name !== undefined ? acceptableName(input.name) : undefined;
      if (input.password !== undefined) assertAcceptablePassword(input.password);
      const current = await get(id);
      const patch: UserPatch = {};
      if (email !== undefined && email !== current.email) patch.email = email;
      if (name !== undefined && name !== current.name) patch.name = name;
      const fields = Object.keys(patch);
      if (input.password !== undefined) patch.passwordHash = await hasher.hash(input.password);
      if (Object.keys(patch).length === 0) return current;
      await write(async (trx) => {
        if (!(await users.update(id, patch, { trx }))) throw new AppError('user.not_found');
        if (fields.length > 0) {
          // The previous address: changing the email is the usual first step of an account takeover.
          await audit(trx, 'user.updated', id, context, { fields, ...(patch.email ? { previousEmail: current.email } : {}) });
        }
        if (patch.passwordHash) await audit(trx, 'user.password_changed', id, context);
      });
      return get(id);
    },

    /** A suspended user cannot sign in, and its tokens stop yielding claims. @throws AppError user.not_found, user.already_in_state */
    suspend: (id: string, context: AuditContext = {}) => setStatus(id, 'SUSPENDED', context),

    /** @throws AppError user.not_found, user.already_in_state */
    unsuspend: (id: string, context: AuditContext = {}) => setStatus(id, 'ACTIVE', context),

    /**
     * Deletes the user; its factors and challenges go with it (foreign keys
     * cascade). The `user.deleted` event keeps the email, the only way left to
     * tell who it was.
     * @throws AppError user.not_found
     */
    async delete(id: string, context: AuditContext = {}): Promise<void> {
      await write(async (trx) => {
        const user = await users.findById(id, trx);
        if (!user || !(await users.delete(id, trx))) throw new AppError('user.not_found');
        await audit(trx, 'user.deleted', id, context, { email: user.email });
      });
    },

    get,
    findById: (id: string) => users.findById(id),
    findByEmail: (email: string) => users.findByEmail(normaliseEmail(email)),

    /**
     * One page of users in email order, optionally only those whose email or
     * name contains `q` (case-insensitive).
     */
    page,

    /** Every user in email order, `limit` at a time (the CLI's listing). */
    list: async (options: { limit: number; after?: string }) => (await page({ limit: options.limit, afterEmail: options.after })).users,
  };
}
