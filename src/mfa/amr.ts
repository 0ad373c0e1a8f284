/**
 * Authentication Method Reference values (RFC 8176) and the acr levels
 * Twofold publishes. Pure functions: no I/O.
 */
import type { MethodName } from '../store/challenges.ts';

/** The order in which amr values are listed in tokens. */
const ORDER = ['pwd', 'otp', 'sms', 'hwk', 'swk', 'user', 'pin', 'fpt', 'mfa'] as const;
export type Amr = (typeof ORDER)[number];

/**
 * The second-factor methods, by the names FusionAuth's API uses in `242`
 * answers, and what each proves in RFC 8176 terms when its answer does not
 * say more (a passkey adds `hwk` or `swk`, and `user` when the person was
 * verified on the device).
 */
export const METHOD_AMR = {
  authenticator: ['otp'],
  'recovery-code': ['otp'],
  email: ['otp'],
  sms: ['sms'],
  webauthn: [],
  push: ['swk'],
} as const satisfies Record<MethodName, readonly Amr[]>;

export type SecondFactorMethod = keyof typeof METHOD_AMR;
export const SECOND_FACTOR_METHODS = Object.keys(METHOD_AMR) as SecondFactorMethod[];

/**
 * The acr values in discovery, weakest first:
 * - `urn:twofold:acr:password` — the password alone.
 * - `urn:twofold:acr:mfa` — the password and a second factor.
 * - `urn:twofold:acr:phishing-resistant` — the password and a passkey: a
 *   second factor bound to Twofold's origin, which a look-alike site cannot
 *   relay.
 */
export const ACR = {
  password: 'urn:twofold:acr:password',
  mfa: 'urn:twofold:acr:mfa',
  phr: 'urn:twofold:acr:phishing-resistant',
} as const;
export type Acr = (typeof ACR)[keyof typeof ACR];
export const ACR_VALUES: Acr[] = [ACR.password, ACR.mfa, ACR.phr];

/**
 * `prior` plus what the second factor proved, in canonical order; plus `mfa`
 * when a factor was proven before (an app that did its own password login and
 * asks Twofold only for the second factor gets just the method's values).
 */
export function amrAfterSecondFactor(prior: readonly string[], proven: readonly Amr[]): Amr[] {
  const set = new Set<string>([...prior, ...proven]);
  if (prior.some((v) => v !== 'mfa')) set.add('mfa');
  return ORDER.filter((v) => set.has(v));
}

/** The acr a session with these amr values has reached (a passkey's `hwk`/`swk` only counts when the caller knows it was a passkey). */
export function acrFor(amr: readonly string[], phishingResistant = false): Acr {
  if (!amr.includes('mfa')) return ACR.password;
  return phishingResistant ? ACR.phr : ACR.mfa;
}

/** Position of an acr value in ACR_VALUES, or -1 for a value we do not publish. */
export function acrLevel(acr: string): number {
  return ACR_VALUES.indexOf(acr as Acr);
}
