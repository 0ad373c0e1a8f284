/** Reading the hosted pages' forms, shared by the sign-in and account routes. */
import type { Context } from 'koa';

/** The first of `names` present in the body as a string, or ''. */
export function field(ctx: Context, ...names: string[]): string {
  const body = ctx.request.body as Record<string, unknown> | undefined;
  for (const name of names) {
    const v = body?.[name];
    if (typeof v === 'string') return v;
  }
  return '';
}

/** The code a person typed: people copy "123 456"; the domain itself takes digits only. */
export function typedCode(ctx: Context): string {
  return field(ctx, 'code').replace(/[ \u00a0]/g, '');
}

/** "ABCDEFGH…" → "ABCD EFGH …", easier to type from a screen. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}

/**
 * A passkey's answer: JSON in the `credential` form field (hosted pages), or
 * an object in a JSON body. Parsed only; the WebAuthn module validates it.
 */
export function credentialField(ctx: Context): unknown {
  const v = (ctx.request.body as Record<string, unknown> | undefined)?.credential;
  if (typeof v !== 'string') return v ?? undefined;
  if (v === '' || v.length > 16_384) return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
}
