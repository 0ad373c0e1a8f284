/** TOTP accounts of the reference authenticator: otpauth:// URIs in, codes out. */
import { generate } from 'otplib';
import type { TotpEntry } from './state.ts';

/**
 * Reads an `otpauth://totp/Issuer:account?secret=…` URI (Google's Key Uri Format).
 * @throws Error when it is not a TOTP URI with a base32 secret
 */
export function parseOtpauthUri(uri: string): TotpEntry {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error('not a URI: expected otpauth://totp/…');
  }
  if (url.protocol !== 'otpauth:' || url.host !== 'totp') throw new Error('not a TOTP URI: expected otpauth://totp/…');
  const label = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const secret = (url.searchParams.get('secret') ?? '').toUpperCase().replace(/=+$/, '');
  if (!/^[A-Z2-7]{16,}$/.test(secret)) throw new Error('the URI has no valid base32 secret');
  const algorithm = (url.searchParams.get('algorithm') ?? 'SHA1').toUpperCase();
  if (algorithm !== 'SHA1' && algorithm !== 'SHA256' && algorithm !== 'SHA512') throw new Error(`unsupported algorithm ${algorithm}`);
  const digits = Number(url.searchParams.get('digits') ?? 6);
  const period = Number(url.searchParams.get('period') ?? 30);
  if (![6, 7, 8].includes(digits) || !Number.isInteger(period) || period < 1) throw new Error('unsupported digits or period');
  const issuer = url.searchParams.get('issuer') ?? (label.includes(':') ? label.split(':')[0]! : '');
  return { label, issuer, secret, algorithm, digits, period };
}

/** The code `entry` shows at `nowMs`, and the seconds it stays valid. */
export async function totpCode(entry: TotpEntry, nowMs: number): Promise<{ code: string; secondsLeft: number }> {
  const epoch = Math.floor(nowMs / 1000);
  const code = await generate({
    secret: entry.secret, algorithm: entry.algorithm.toLowerCase() as 'sha1' | 'sha256' | 'sha512',
    digits: entry.digits as 6 | 7 | 8, period: entry.period, epoch,
  });
  return { code, secondsLeft: entry.period - (epoch % entry.period) };
}
