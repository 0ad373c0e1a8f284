/**
 * Accounts: creation, password sign-in and password changes.
 */
import type { UsersStore, User } from '../store/users.ts';
import type { EventsStore } from '../store/events.ts';
import { isUniqueViolation } from '../store/db.ts';
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

/** @throws AppError request.invalid with a person-readable reason. */
export function assertAcceptablePassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new AppError('request.invalid', { message: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`, details: { field: 'password' } });
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new AppError('request.invalid', { message: `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.`, details: { field: 'password' } });
  }
}

export type UserService = ReturnType<typeof createUserService>;

export function createUserService(deps: { users: UsersStore; events: EventsStore; hasher: PasswordHasher }) {
  const { users, events, hasher } = deps;
  return {
    /**
     * @throws AppError request.invalid (bad email or password), user.email_taken
     */
    async create(input: { email: string; name?: string | null; password?: string | null }): Promise<User> {
      const email = normaliseEmail(input.email);
      if (!isValidEmail(email)) {
        throw new AppError('request.invalid', { message: 'That is not a valid email address.', details: { field: 'email' } });
      }
      if (input.password != null) assertAcceptablePassword(input.password);
      const passwordHash = input.password != null ? await hasher.hash(input.password) : null;
      try {
        const user = await users.insert({ email, name: input.name ?? null, passwordHash });
        await events.record({ type: 'user.created', userId: user.id });
        return user;
      } catch (err) {
        if (isUniqueViolation(err)) throw new AppError('user.email_taken');
        throw err;
      }
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
    async setPassword(userId: string, password: string): Promise<void> {
      assertAcceptablePassword(password);
      if (!(await users.setPasswordHash(userId, await hasher.hash(password)))) throw new AppError('user.not_found');
      await events.record({ type: 'user.password_changed', userId });
    },

    findById: (id: string) => users.findById(id),
    findByEmail: (email: string) => users.findByEmail(normaliseEmail(email)),
    list: (options: { limit: number; after?: string }) => users.list(options),
  };
}
