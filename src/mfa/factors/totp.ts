/**
 * TOTP primitives (RFC 6238) over otplib: seeds, otpauth URIs, QR codes and
 * code checks. Pure: no store, no HTTP; the caller supplies the time.
 */
import { randomBytes } from 'node:crypto';
import { generate, verify, ScureBase32Plugin } from 'otplib';
import QRCode from 'qrcode';

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpSettings {
  algorithm: TotpAlgorithm;
  digits: 6 | 8;
  period: 30 | 60;
}

/** A base32 string (as stored and shown to users), or the raw seed bytes (RFC 6238 test vectors). */
export type TotpSecret = string | Uint8Array;

const SECRET_BYTES = 20;
const base32 = new ScureBase32Plugin();

/** A new seed: 20 bytes (160 bits, RFC 4226 §4) from the OS CSPRNG, base32 without padding. */
export function generateTotpSecret(): string {
  return base32.encode(randomBytes(SECRET_BYTES), { padding: false });
}

/**
 * The otpauth://totp/ URI of Google's Key Uri Format. The issuer is in the
 * label and in the `issuer` parameter (older apps read only the label), and
 * every parameter is written out, defaults included, so no app has to guess.
 * @throws Error when the issuer or account name is empty or contains a colon
 * (the label separator; the format forbids it in either part).
 */
export function totpUri(input: { secret: string; settings: TotpSettings; issuer: string; accountName: string }): string {
  const { secret, settings, issuer, accountName } = input;
  for (const [name, value] of [['issuer', issuer], ['account name', accountName]] as const) {
    if (value === '' || value.includes(':')) throw new Error(`the TOTP ${name} must be non-empty and contain no colon`);
  }
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(accountName)}`;
  const params = [
    ['secret', secret],
    ['issuer', issuer],
    ['algorithm', settings.algorithm],
    ['digits', String(settings.digits)],
    ['period', String(settings.period)],
  ].map(([key, value]) => `${key}=${encodeURIComponent(value!)}`);
  return `otpauth://totp/${label}?${params.join('&')}`;
}

const QR_OPTIONS = { errorCorrectionLevel: 'M' } as const;

/** The URI as a QR code PNG, as a `data:image/png;base64,` URL for an `<img src>`. */
export function totpQrDataUrl(uri: string): Promise<string> {
  return QRCode.toDataURL(uri, { ...QR_OPTIONS, type: 'image/png' });
}

/** The URI as a QR code PNG. */
export function totpQrPng(uri: string): Promise<Buffer> {
  return QRCode.toBuffer(uri, { ...QR_OPTIONS, type: 'png' });
}

function otplibOptions(secret: TotpSecret, settings: TotpSettings, nowMs: number) {
  return {
    secret,
    algorithm: settings.algorithm.toLowerCase() as 'sha1' | 'sha256' | 'sha512',
    digits: settings.digits,
    period: settings.period,
    epoch: Math.floor(nowMs / 1000),
  };
}

/**
 * The code an authenticator shows at `nowMs`.
 * @throws Error when the secret is not valid base32 or is shorter than 16 bytes.
 */
export function generateTotp(input: { secret: TotpSecret; settings: TotpSettings; nowMs: number }): Promise<string> {
  return generate(otplibOptions(input.secret, input.settings, input.nowMs));
}

/**
 * Checks `code` against the steps within `window` steps either side of the
 * step at `nowMs`, skipping every step `<= afterTimeStep` (the last step this
 * factor accepted: a code is good once). The caller must record the returned
 * step with a guarded write before treating the code as spent.
 *
 * A wrong, malformed or replayed code gives the same `null`, so callers can't
 * tell them apart by accident.
 * @returns the accepted time step, or null.
 * @throws Error only for server-side faults: an invalid stored secret, a
 * window that is not an integer in 0..49 (otplib's limit), or an
 * `afterTimeStep` that is negative or fractional.
 */
export async function verifyTotp(input: {
  secret: TotpSecret;
  code: string;
  settings: TotpSettings;
  window: number;
  nowMs: number;
  afterTimeStep: number | null;
}): Promise<number | null> {
  const { secret, code, settings, window, nowMs, afterTimeStep } = input;
  if (!Number.isInteger(window) || window < 0 || window > 49) throw new Error('the TOTP window must be an integer in 0..49');
  // Checked before otplib, which throws on a malformed token: a typo must come back as the same null as a wrong code.
  if (code.length !== settings.digits || !/^[0-9]+$/.test(code)) return null;
  const options = otplibOptions(secret, settings, nowMs);
  const lastStepInWindow = Math.floor(options.epoch / settings.period) + window;
  // otplib throws when afterTimeStep lies beyond the window (e.g. after the clock went back); nothing could match anyway.
  if (afterTimeStep !== null && afterTimeStep >= lastStepInWindow) return null;
  const result = await verify({
    ...options,
    token: code,
    epochTolerance: window * settings.period,
    ...(afterTimeStep === null ? {} : { afterTimeStep }),
  });
  // The functional verify is typed as TOTP | HOTP result; only the TOTP one carries timeStep.
  return result.valid && 'timeStep' in result ? result.timeStep : null;
}
