/**
 * Factor management for the admin API (Okta's Factors API lifecycle):
 * enrol → PENDING_ACTIVATION, activate with a first code → ACTIVE, verify,
 * delete, reset all. No HTTP here; the routes map results to Okta's shapes.
 *
 * Every lookup is scoped to the user in the path, so a factor id of another
 * user answers exactly like an unknown one.
 */
import type { Db } from '../store/db.ts';
import type { Factor, FactorStatus, FactorType, FactorsStore } from '../store/factors.ts';
import type { EventsStore, EventType } from '../store/events.ts';
import type { User } from '../store/users.ts';
import type { FactorService } from './factors/index.ts';
import { totpQrPng, type TotpSettings } from './factors/totp.ts';
import { AppError, assertThat } from '../errors.ts';
import type { SecondFactorLock } from './lockout.ts';
import type { RecoveryCodes } from './recovery-codes.ts';
import type { SentCodes } from './sent-codes.ts';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

export const FACTOR_TYPES = ['token:software:totp', 'sms', 'email'] as const satisfies readonly FactorType[];

/**
 * Who the authenticator app is, in Okta's words (OKTA = Okta Verify, GOOGLE =
 * Google Authenticator). TWOFOLD: any app, and every factor enrolled through
 * the sign-in pages. The code check is the same for all three.
 */
export const TOTP_PROVIDERS = ['OKTA', 'GOOGLE', 'TWOFOLD'] as const;
export type TotpProvider = (typeof TOTP_PROVIDERS)[number];

// The name the sign-in pages show for the factor.
const LABELS: Record<TotpProvider, string> = { OKTA: 'Okta Verify', GOOGLE: 'Google Authenticator', TWOFOLD: 'Authenticator app' };

/** Who made a change, for the audit trail (same shape as the users service's). */
export interface AuditContext {
  /** `api_key:<id>` */
  actor?: string;
  ip?: string;
}

/** A factor as the management API describes it: never its secret. */
export interface FactorView {
  id: string;
  userId: string;
  factorType: FactorType;
  provider: TotpProvider;
  status: FactorStatus;
  /** Okta's profile: `credentialId` (the account name an authenticator shows), `phoneNumber` or `email`. */
  profile: { credentialId: string } | { phoneNumber: string } | { email: string };
  createdAt: number;
  updatedAt: number;
  /** When a code was last accepted (activation included). */
  lastVerifiedAt: number | null;
}

export interface Enrolment {
  factor: FactorView;
  /** Base32 seed: answered once, by enrol, never again. */
  secret: string;
  uri: string;
  settings: TotpSettings;
}

export type FactorAdmin = ReturnType<typeof createFactorAdmin>;

/**
 * A mobile number in E.164 (`+14155550123`), checked against the numbering
 * plan of its country.
 * @throws AppError request.invalid with details.field
 */
export function validPhone(input: string): string {
  const parsed = input.length <= 32 ? parsePhoneNumberFromString(input) : undefined;
  if (!parsed || !parsed.isValid()) {
    throw new AppError('request.invalid', {
      message: 'That is not a valid phone number. Give it with its country code, like +14155550123.',
      details: { field: 'profile.phoneNumber' },
    });
  }
  return parsed.number;
}

/** @throws AppError request.invalid with details.field */
export function validEmail(input: string): string {
  const email = input.normalize('NFC').trim();
  if (email.length > 254 || !/^[^\s@,;:<>"()[\]\\]+@[^\s@,;:<>"()[\]\\]+\.[^\s@,;:<>"()[\]\\]+$/.test(email)) {
    throw new AppError('request.invalid', { message: 'That is not a valid email address.', details: { field: 'profile.email' } });
  }
  return email;
}

export function createFactorAdmin(deps: {
  db: Db;
  users: { findById(id: string): Promise<User | undefined> };
  factors: FactorsStore;
  events: EventsStore;
  factorService: FactorService;
  lock: SecondFactorLock;
  recoveryCodes: RecoveryCodes;
  sentCodes: SentCodes;
  /** Unlinks every push device of the user (part of a reset). @returns how many. */
  unlinkDevices?: (userId: string, trx: Db) => Promise<number>;
  /** Forgets every remembered browser of the user (part of a reset). @returns how many. */
  forgetBrowsers?: (userId: string, trx: Db) => Promise<number>;
  /** Tells the person a factor was added or removed (so a change they did not make does not go unnoticed). */
  notify?: (userId: string, change: 'factor-added' | 'factor-removed', factorName: string) => Promise<void>;
}) {
  const { db, users, factors, events, factorService, lock } = deps;

  function providerOf(f: Factor): TotpProvider {
    const p = f.settings.provider;
    return (TOTP_PROVIDERS as readonly unknown[]).includes(p) ? p as TotpProvider : 'TWOFOLD';
  }

  function profileOf(f: Factor, user: User): FactorView['profile'] {
    if (f.type === 'sms') return { phoneNumber: String(f.settings.phoneNumber) };
    if (f.type === 'email') return { email: String(f.settings.email) };
    return { credentialId: user.email };
  }

  function view(f: Factor, user: User): FactorView {
    return {
      id: f.id, userId: f.userId, factorType: f.type, provider: providerOf(f), status: f.status, profile: profileOf(f, user),
      createdAt: f.createdAt, updatedAt: f.updatedAt, lastVerifiedAt: f.lastUsedAt,
    };
  }

  function audit(type: EventType, userId: string, context: AuditContext, details: Record<string, unknown>, trx: Db = db) {
    return events.record({ type, userId, ip: context.ip ?? null, details: { ...details, ...(context.actor ? { actor: context.actor } : {}) } }, trx);
  }

  /** @throws AppError user.not_found */
  async function userOf(userId: string): Promise<User> {
    const user = await users.findById(userId);
    assertThat(user, 'user.not_found');
    return user;
  }

  /** @throws AppError user.not_found, factor.not_found */
  async function owned(userId: string, factorId: string): Promise<{ user: User; factor: Factor }> {
    const user = await userOf(userId);
    const factor = await factors.findOfUser(user.id, factorId);
    assertThat(factor, 'factor.not_found');
    return { user, factor };
  }

  /**
   * Checks a code without writing.
   * @returns the write that spends it (false when a concurrent request spent it first), or null when wrong.
   */
  async function evaluate(factor: Factor, passCode: string, activate: boolean): Promise<((trx: Db) => Promise<boolean>) | null> {
    if (factor.type === 'token:software:totp') {
      const step = await factorService.matchTotp(factor, passCode);
      return step === null ? null : (trx) => factors.acceptTimeStep(factor.id, step, activate, trx);
    }
    if (factor.type === 'sms' || factor.type === 'email') {
      const id = await deps.sentCodes.match(factor, null, passCode);
      if (!id) return null;
      return async (trx) => {
        if (!(await deps.sentCodes.spend(id, trx))) return false;
        await factors.markUsed(factor.id, activate, trx);
        return true;
      };
    }
    return null;
  }

  /**
   * Checks a code and spends its time step with the same guarded write as
   * sign-in, so a code is good once even across concurrent requests. The
   * check counts toward the account's second-factor lock-out like any other
   * door: a management API key cannot be used to brute-force a user's codes.
   * @returns false for a wrong, malformed or replayed code (one answer).
   * @throws AppError mfa.locked
   */
  async function spend(factor: Factor, passCode: string, activate: boolean, onAccept: (trx: Db) => Promise<void>): Promise<boolean> {
    await lock.reserve(factor.userId);
    let ok: boolean;
    try {
      const right = await evaluate(factor, passCode, activate);
      ok = right !== null && await db.transaction(async (trx) => {
        if (!(await right(trx))) return false;
        await onAccept(trx);
        await lock.succeeded(factor.userId, trx);
        return true;
      });
    } catch (err) {
      await lock.refund(factor.userId);
      throw err;
    }
    if (!ok) await lock.failed(factor.userId);
    return ok;
  }

  return {
    /**
     * Creates a PENDING_ACTIVATION factor with a new sealed seed and replaces
     * any earlier pending one of the same type (an abandoned seed is useless).
     * @throws AppError user.not_found, factor.type_unsupported (type, or
     *   provider for the type), factor.already_enrolled (an ACTIVE one exists)
     */
    async enroll(input: { userId: string; factorType: string; provider?: string | undefined; settings?: Partial<TotpSettings> | undefined }, context: AuditContext = {}): Promise<Enrolment> {
      const user = await userOf(input.userId);
      if (!(FACTOR_TYPES as readonly string[]).includes(input.factorType)) {
        throw new AppError('factor.type_unsupported', { details: { factorType: input.factorType, supported: FACTOR_TYPES } });
      }
      if (input.factorType === 'sms' || input.factorType === 'email') {
        throw new AppError('request.invalid', { message: 'Enrol sms and email factors with enrollDelivered.' });
      }
      const provider = input.provider ?? 'TWOFOLD';
      if (!(TOTP_PROVIDERS as readonly string[]).includes(provider)) {
        throw new AppError('factor.type_unsupported', {
          message: `${input.factorType} is offered by the providers ${TOTP_PROVIDERS.join(', ')}.`,
          details: { factorType: input.factorType, provider, supported: TOTP_PROVIDERS },
        });
      }
      const type = 'token:software:totp';
      // A second active authenticator would be enrolled without proof of the first; remove it first.
      if (await factors.hasActiveOfType(user.id, type)) throw new AppError('factor.already_enrolled', { details: { factorType: type } });

      const { factor, secret, uri } = await factorService.enrollTotp({
        userId: user.id, accountName: user.email, name: LABELS[provider as TotpProvider], ...(input.settings ? { settings: input.settings } : {}),
      });
      // enrollTotp stores TOTP settings only; the provider is added to them here.
      const stored = await factors.mergeSettings(factor.id, { provider });
      assertThat(stored, 'factor.not_found');
      await factors.deletePendingOfType(user.id, type, factor.id);
      await audit('factor.enrolled', user.id, context, { factorId: factor.id, type, provider });
      return { factor: view(stored, user), secret, uri, settings: factorService.settingsOf(stored) };
    },

    /**
     * Enrols an SMS or email factor and sends it a first code: it becomes
     * ACTIVE only when that code comes back (activate). A failed delivery
     * leaves nothing behind.
     * @throws AppError user.not_found, request.invalid (details.field: an
     *   invalid number or address), factor.already_enrolled,
     *   mfa.send_limited, delivery.failed
     */
    async enrollDelivered(input: { userId: string; factorType: 'sms' | 'email'; phoneNumber?: string | undefined; email?: string | undefined }, context: AuditContext = {}): Promise<FactorView> {
      const user = await userOf(input.userId);
      const type = input.factorType;
      const settings = type === 'sms'
        ? { phoneNumber: validPhone(input.phoneNumber ?? ''), provider: 'TWOFOLD' }
        : { email: validEmail(input.email ?? ''), provider: 'TWOFOLD' };
      if (await factors.hasActiveOfType(user.id, type)) throw new AppError('factor.already_enrolled', { details: { factorType: type } });
      const id = factors.newId();
      const factor = await factors.insert({ id, userId: user.id, type, name: type === 'sms' ? 'Text message' : 'Email', secretSealed: null, settings });
      try {
        await deps.sentCodes.send(factor, null);
      } catch (err) {
        await factors.deleteOfUser(user.id, factor.id);
        throw err;
      }
      await factors.deletePendingOfType(user.id, type, factor.id);
      await audit('factor.enrolled', user.id, context, { factorId: factor.id, type });
      return view(factor, user);
    },

    /**
     * Sends a new code to a pending SMS or email factor (Okta's resend); the previous code stops working.
     * @throws AppError user.not_found, factor.not_found, factor.not_pending, factor.type_unsupported, mfa.send_limited, delivery.failed
     */
    async resend(userId: string, factorId: string): Promise<void> {
      const { factor } = await owned(userId, factorId);
      assertThat(factor.type === 'sms' || factor.type === 'email', 'factor.type_unsupported', { factorType: factor.type });
      assertThat(factor.status === 'PENDING_ACTIVATION', 'factor.not_pending', { status: factor.status });
      await deps.sentCodes.send(factor, null);
    },

    /**
     * Sends a code to an ACTIVE SMS or email factor, for a verify that follows (Okta's verify without a passCode).
     * @throws AppError user.not_found, factor.not_found, factor.not_active, user.suspended, factor.type_unsupported, mfa.send_limited, delivery.failed
     */
    async challenge(userId: string, factorId: string): Promise<void> {
      const { user, factor } = await owned(userId, factorId);
      assertThat(factor.type === 'sms' || factor.type === 'email', 'factor.type_unsupported', { factorType: factor.type });
      assertThat(factor.status === 'ACTIVE', 'factor.not_active', { status: factor.status });
      assertThat(user.status === 'ACTIVE', 'user.suspended');
      await deps.sentCodes.send(factor, null);
    },

    /**
     * Activates a pending factor with a first code from the authenticator.
     * @returns the ACTIVE factor, or null when the code is wrong, malformed or
     *   replayed.
     * @throws AppError user.not_found, factor.not_found, factor.not_pending
     */
    async activate(userId: string, factorId: string, passCode: string, context: AuditContext = {}): Promise<{ factor: FactorView; recoveryCodes: string[] | null } | null> {
      const { user, factor } = await owned(userId, factorId);
      assertThat(factor.status === 'PENDING_ACTIVATION', 'factor.not_pending', { status: factor.status });
      let recoveryCodes: string[] | null = null;
      const ok = await spend(factor, passCode, true, async (trx) => {
        await audit('factor.activated', user.id, context, { factorId, type: factor.type }, trx);
        // The user's first second factor comes with recovery codes.
        recoveryCodes = await deps.recoveryCodes.generateIfNone(user.id, trx);
      });
      if (!ok) {
        await audit('factor.verify_failed', user.id, context, { factorId, during: 'activation' });
        return null;
      }
      const activated = await factors.findOfUser(user.id, factorId);
      assertThat(activated, 'factor.not_found');
      await deps.notify?.(user.id, 'factor-added', activated.name);
      return { factor: view(activated, user), recoveryCodes };
    },

    /**
     * A new set of recovery codes for the user; the old set stops working.
     * @returns the codes, the only time they are readable.
     * @throws AppError user.not_found, factor.not_active (the user has no active factor)
     */
    async regenerateRecoveryCodes(userId: string, context: AuditContext = {}): Promise<string[]> {
      const user = await userOf(userId);
      assertThat(await factors.hasActive(user.id), 'factor.not_active', { reason: 'the user has no active second factor' });
      return deps.recoveryCodes.generate(user.id, context.actor ? { actor: context.actor } : {});
    },

    /** @throws AppError user.not_found */
    async lockStatus(userId: string) {
      const user = await userOf(userId);
      return lock.status(user.id);
    },

    /** Ends a lock-out (audited when there was one). @throws AppError user.not_found */
    async unlock(userId: string, actor: string): Promise<void> {
      const user = await userOf(userId);
      await lock.unlock(user.id, actor);
    },

    /** @returns how many unused recovery codes the user has. @throws AppError user.not_found */
    async recoveryCodesLeft(userId: string): Promise<number> {
      const user = await userOf(userId);
      return deps.recoveryCodes.remaining(user.id);
    },

    /**
     * Checks a code against an ACTIVE factor. A suspended user's factor never
     * verifies: apps take SUCCESS as "let them in".
     * @returns true when accepted; false for a wrong, malformed or replayed
     *   code (deliberately one answer).
     * @throws AppError user.not_found, factor.not_found, factor.not_active,
     *   user.suspended
     */
    async verify(userId: string, factorId: string, passCode: string, context: AuditContext = {}): Promise<boolean> {
      const { user, factor } = await owned(userId, factorId);
      assertThat(factor.status === 'ACTIVE', 'factor.not_active', { status: factor.status });
      assertThat(user.status === 'ACTIVE', 'user.suspended');
      const ok = await spend(factor, passCode, false, (trx) => audit('factor.verified', user.id, context, { factorId }, trx));
      if (!ok) await audit('factor.verify_failed', user.id, context, { factorId });
      return ok;
    },

    /** The user's factors, pending ones included, oldest first. @throws AppError user.not_found */
    async list(userId: string): Promise<FactorView[]> {
      const user = await userOf(userId);
      return (await factors.listByUser(user.id)).map((f) => view(f, user));
    },

    /** @throws AppError user.not_found, factor.not_found */
    async get(userId: string, factorId: string): Promise<FactorView> {
      const { user, factor } = await owned(userId, factorId);
      return view(factor, user);
    },

    /**
     * The otpauth URI as a QR code PNG. It carries the seed, so it exists only
     * while the factor waits for activation.
     * @throws AppError user.not_found, factor.not_found (also once active)
     */
    async qrPng(userId: string, factorId: string): Promise<Buffer> {
      const { user, factor } = await owned(userId, factorId);
      if (factor.status !== 'PENDING_ACTIVATION') {
        throw new AppError('factor.not_found', { message: 'The factor has no QR code: it is not waiting for activation.' });
      }
      return totpQrPng(factorService.pendingTotpDetails(factor, user.email).uri);
    },

    /** @throws AppError user.not_found, factor.not_found */
    async rename(userId: string, factorId: string, name: string): Promise<void> {
      const clean = name.normalize('NFC').trim();
      if (clean.length < 1 || clean.length > 100) {
        throw new AppError('request.invalid', { message: 'A name is 1 to 100 characters.', details: { field: 'name' } });
      }
      if (!(await factors.rename(userId, factorId, clean))) throw new AppError('factor.not_found');
    },

    /** @throws AppError user.not_found, factor.not_found */
    async remove(userId: string, factorId: string, context: AuditContext = {}): Promise<void> {
      const { user, factor } = await owned(userId, factorId);
      await db.transaction(async (trx) => {
        // Gone since it was read (a concurrent delete or reset): same answer as unknown.
        if (!(await factors.deleteOfUser(user.id, factor.id, trx))) throw new AppError('factor.not_found');
        await audit('factor.deleted', user.id, context, { factorId, type: factor.type, status: factor.status }, trx);
        // Recovery codes stand in for a second factor; without one they would be a second password.
        if (!(await factors.hasActive(user.id, trx))) await deps.recoveryCodes.remove(user.id, trx);
      });
      if (factor.status === 'ACTIVE') await deps.notify?.(user.id, 'factor-removed', factor.name);
    },

    /**
     * Deletes every factor of the user (Okta's reset_factors).
     * @returns how many were deleted.
     * @throws AppError user.not_found
     */
    async reset(userId: string, context: AuditContext = {}): Promise<number> {
      const user = await userOf(userId);
      return db.transaction(async (trx) => {
        const count = await factors.deleteAllOfUser(user.id, trx);
        await deps.recoveryCodes.remove(user.id, trx);
        // Everything that stands in for a second factor goes too: linked devices and remembered browsers.
        const devices = deps.unlinkDevices ? await deps.unlinkDevices(user.id, trx) : 0;
        const browsers = deps.forgetBrowsers ? await deps.forgetBrowsers(user.id, trx) : 0;
        await audit('factor.reset', user.id, context, { count, devices, browsers }, trx);
        return count;
      });
    },
  };
}
