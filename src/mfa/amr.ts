/**
 * Authentication Method Reference values (RFC 8176) and the acr levels
 * Twofold publishes. Pure functions: no I/O.
 */

/** The order in which amr values are listed in tokens. */
const ORDER = ['pwd', 'otp', 'sms', 'hwk', 'swk', 'user', 'pin', 'fpt', 'mfa'] as const;
export type Amr = (typeof ORDER)[number];

/** What each second-factor method proves, in RFC 8176 terms. */
export const METHOD_AMR = {
  authenticator: ['otp'],
} as const satisfies Record<string, readonly Amr[]>;

export type SecondFactorMethod = keyof typeof METHOD_AMR;

/**
 * The acr values in discovery, weakest first:
 * - `urn:twofold:acr:password` — the password alone.
 * - `urn:twofold:acr:mfa` — the password and a second factor.
 */
export const ACR = {
  password: 'urn:twofold:acr:password',
  mfa: 'urn:twofold:acr:mfa',
} as const;
export type Acr = (typeof ACR)[keyof typeof ACR];
export const ACR_VALUES: Acr[] = [ACR.password, ACR.mfa];

/**
 * `prior` plus what `method` proved, in canonical order; plus `mfa` when a
 * factor was proven before (an app that did its own password login and asks
 * Twofold only for the second factor gets just the method's values).
 */
export function amrAfterSecondFactor(prior: readonly string[], method: SecondFactorMethod): Amr[] {
  const set = new Set<string>([...prior, ...METHOD_AMR[method]]);
  if (prior.some((v) => v !== 'mfa')) set.add('mfa');
  return ORDER.filter((v) => set.has(v));
}

/** The acr a session with these amr values has reached. */
export function acrFor(amr: readonly string[]): Acr {
  return amr.includes('mfa') ? ACR.mfa : ACR.password;
}

/** Position of an acr value in ACR_VALUES, or -1 for a value we do not publish. */
export function acrLevel(acr: string): number {
  return ACR_VALUES.indexOf(acr as Acr);
}
