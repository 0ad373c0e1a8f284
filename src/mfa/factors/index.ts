/**
 * Factors: enrolment and code checks. Secrets are sealed with the factor id as
 * context, so a sealed seed copied onto another factor row does not open.
 */
import type { FactorsStore, Factor } from '../../store/factors.ts';
import type { Sealer } from '../../lib/seal.ts';
import type { Clock } from '../../lib/clock.ts';
import { generateTotpSecret, totpUri, verifyTotp, type TotpSettings } from './totp.ts';

export interface TotpPolicy extends TotpSettings {
  issuer: string;
  /** Accepted steps either side of now. */
  window: number;
}

export interface TotpEnrollment {
  factor: Factor;
  /** Base32 seed: shown once, at enrolment, never again. */
  secret: string;
  uri: string;
}

export type FactorService = ReturnType<typeof createFactorService>;

export function createFactorService(deps: { factors: FactorsStore; sealer: Sealer; clock: Clock; totp: TotpPolicy }) {
  const { factors, sealer, clock, totp } = deps;
  const context = (factorId: string) => `factor:${factorId}`;

  function settingsOf(factor: Factor): TotpSettings {
    const s = factor.settings as Partial<TotpSettings>;
    return { algorithm: s.algorithm ?? 'SHA1', digits: s.digits ?? 6, period: s.period ?? 30 };
  }

  return {
    settingsOf,

    /** The user's factors, oldest first (sealed secrets stay sealed). */
    listForUser: (userId: string) => factors.listByUser(userId),

    /** Creates a PENDING_ACTIVATION authenticator factor with a new seed. */
    async enrollTotp(input: { userId: string; accountName: string; name?: string; settings?: Partial<TotpSettings> }): Promise<TotpEnrollment> {
      const settings: TotpSettings = {
        algorithm: input.settings?.algorithm ?? totp.algorithm,
        digits: input.settings?.digits ?? totp.digits,
        period: input.settings?.period ?? totp.period,
      };
      const secret = generateTotpSecret();
      const id = factors.newId();
      const factor = await factors.insert({
        id, userId: input.userId, type: 'token:software:totp', name: input.name ?? 'Authenticator app',
        secretSealed: sealer.seal(secret, context(id)), settings: { ...settings },
      });
      return { factor, secret, uri: totpUri({ secret, settings, issuer: totp.issuer, accountName: input.accountName }) };
    },

    /** The seed and otpauth URI of a factor still waiting for activation (enrolment pages re-show it). */
    pendingTotpDetails(factor: Factor, accountName: string): { secret: string; uri: string; settings: TotpSettings } {
      if (factor.status !== 'PENDING_ACTIVATION' || !factor.secretSealed) throw new Error('factor is not pending activation');
      const secret = sealer.openString(factor.secretSealed, context(factor.id));
      const settings = settingsOf(factor);
      return { secret, settings, uri: totpUri({ secret, settings, issuer: totp.issuer, accountName }) };
    },

    /**
     * Checks a code against the factor without recording anything.
     * @returns the matching time step, or null (wrong, malformed or replayed:
     * deliberately the same answer).
     */
    async matchTotp(factor: Factor, code: string): Promise<number | null> {
      if (factor.type !== 'token:software:totp' || !factor.secretSealed) return null;
      const secret = sealer.openString(factor.secretSealed, context(factor.id));
      return verifyTotp({
        secret, code, settings: settingsOf(factor), window: totp.window,
        nowMs: clock.now(), afterTimeStep: factor.lastTimeStep,
      });
    },
  };
}
