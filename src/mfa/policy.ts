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
  if (requestedAcrs.length === 0) return false;
  const mfaLevel = acrLevel(ACR.mfa);
  return requestedAcrs.every((acr) => acrLevel(acr) >= mfaLevel);
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
