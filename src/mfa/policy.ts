/**
 * Whether a sign-in needs a second factor. Pure: the caller gathers the facts.
 */
import type { MfaPolicy } from '../config.ts';
import { ACR, acrLevel } from './amr.ts';

/** none: the password is enough; verify: ask for a factor; enroll: set one up first. */
export type Requirement = 'none' | 'verify' | 'enroll';

/**
 * True when the relying party asked only for levels that need a second factor.
 * `acr_values` is a preference list: if the password level is acceptable to
 * the RP (or a value we don't know is listed), the password alone satisfies it.
 */
export function requestsSecondFactor(requestedAcrs: readonly string[]): boolean {
  return requestedLevel(requestedAcrs) >= acrLevel(ACR.mfa);
}

/**
 * The lowest level among the requested acr values (any of them satisfies the
 * relying party); 0 (the password) when none is asked for or an unknown value
 * is among them.
 */
export function requestedLevel(requestedAcrs: readonly string[]): number {
  if (requestedAcrs.length === 0) return 0;
  return Math.max(0, Math.min(...requestedAcrs.map(acrLevel)));
}

/** True when only a phishing-resistant second factor (a passkey) satisfies the request. */
export function requestsPhishingResistant(requestedAcrs: readonly string[]): boolean {
  return requestedLevel(requestedAcrs) >= acrLevel(ACR.phr);
}

/** The level (index in ACR_VALUES) a session must have reached for this request. */
export function levelNeeded(input: { policy: MfaPolicy; requestedAcrs: readonly string[]; hasActiveFactor: boolean }): number {
  const byPolicy = input.policy === 'required' || (input.policy === 'optional' && input.hasActiveFactor) ? acrLevel(ACR.mfa) : 0;
  return Math.max(byPolicy, requestedLevel(input.requestedAcrs));
}

/**
 * @param policy the client's policy, or the global one when the client has none
 * @param requestedAcrs acr values the RP asked for (`acr_values`, or `claims` acr values)
 */
export function secondFactorRequirement(input: {
  policy: MfaPolicy;
  requestedAcrs: readonly string[];
  hasActiveFactor: boolean;
}): Requirement {
  const needed = input.policy === 'required' || requestsSecondFactor(input.requestedAcrs)
    || (input.policy === 'optional' && input.hasActiveFactor);
  if (!needed) return 'none';
  return input.hasActiveFactor ? 'verify' : 'enroll';
}
