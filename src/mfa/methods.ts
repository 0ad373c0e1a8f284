/**
 * How the challenge module talks to each kind of second factor. A method
 * checks an answer without writing anything; when the answer is right it
 * hands back the writes that spend it, which the challenge module runs in
 * the same transaction that completes the challenge. A method never counts
 * failures or locks accounts: the challenge module does that, the same way
 * for all of them.
 */
import type { Db } from '../store/db.ts';
import type { Factor, FactorsStore } from '../store/factors.ts';
import type { Challenge } from './challenges.ts';
import type { ChallengeMethod, MethodName } from '../store/challenges.ts';
import type { FactorService } from './factors/index.ts';
import type { RecoveryCodes } from './recovery-codes.ts';
import { METHOD_AMR, type Amr } from './amr.ts';

/** What the person sent: a typed code, or a passkey's signed answer. */
export interface Answer {
  code?: string | undefined;
  credential?: unknown;
}

export interface Accepted {
  /**
   * Spends the answer (a TOTP step, a recovery code, a sent code, a passkey
   * counter) inside the challenge's transaction.
   * @returns false when a concurrent request spent it first: a replay.
   */
  spend(trx: Db): Promise<boolean>;
  /** What the answer proved (RFC 8176). */
  amr: readonly Amr[];
  /** True for phishing-resistant proof (a passkey bound to our origin). */
  phishingResistant: boolean;
}

export interface MethodContext {
  challenge: Challenge;
  method: ChallengeMethod;
  /** The method's factor, already checked to belong to the challenge's user. */
  factor: Factor | undefined;
}

export interface MethodHandler {
  /** @returns how to spend a right answer, or null for a wrong, malformed or used one (one answer for all). */
  check(ctx: MethodContext, answer: Answer): Promise<Accepted | null>;
}

export type MethodHandlers = Partial<Record<MethodName, MethodHandler>>;

/** Authenticator-app codes (TOTP): each time step is accepted once per factor. */
export function authenticatorMethod(deps: { factors: FactorsStore; factorService: FactorService }): MethodHandler {
  return {
    async check({ challenge, factor }, answer) {
      if (!factor || typeof answer.code !== 'string') return null;
      const step = await deps.factorService.matchTotp(factor, answer.code);
      if (step === null) return null;
      const activate = factor.status === 'PENDING_ACTIVATION' && factor.id === challenge.enrollmentFactorId;
      return {
        spend: (trx) => deps.factors.acceptTimeStep(factor.id, step, activate, trx),
        amr: METHOD_AMR.authenticator,
        phishingResistant: false,
      };
    },
  };
}

/** Recovery codes: any unused code of the user, once. */
export function recoveryCodeMethod(deps: { recoveryCodes: RecoveryCodes }): MethodHandler {
  return {
    async check({ challenge }, answer) {
      if (typeof answer.code !== 'string') return null;
      const matched = await deps.recoveryCodes.match(challenge.userId, answer.code);
      if (!matched) return null;
      return {
        spend: (trx) => deps.recoveryCodes.spend(challenge.userId, matched, trx),
        amr: METHOD_AMR['recovery-code'],
        phishingResistant: false,
      };
    },
  };
}
