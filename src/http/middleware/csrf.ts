/**
 * CSRF protection for form posts: a random cookie, and a form token that is
 * an HMAC of it under a server key (an attacker who can plant a cookie still
 * cannot compute the matching token). JSON requests are protected by their
 * content type (a cross-site form cannot send one without a CORS preflight)
 * and by the Origin check.
 */
import type { Context, Middleware } from 'koa';
import { hmac, safeEqual } from '../../lib/hash.ts';
import { randomToken } from '../../lib/random.ts';
import { AppError } from '../../errors.ts';

const COOKIE = 'twofold.csrf';

export function csrf(options: { key: string; issuer: string }): Middleware {
  const issuerOrigin = new URL(options.issuer).origin;
  const tokenFor = (cookie: string) => hmac(options.key, `csrf:${cookie}`).toString('base64url');
  return async (ctx, next) => {
    let cookie = ctx.cookies.get(COOKIE);
    if (!cookie || cookie.length !== 43) {
      cookie = randomToken(32);
      ctx.cookies.set(COOKIE, cookie, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/', overwrite: true });
    }
    ctx.state.csrfToken = tokenFor(cookie);
    if (ctx.method === 'POST') assertSameSite(ctx, issuerOrigin, ctx.state.csrfToken as string);
    await next();
  };
}

function assertSameSite(ctx: Context, issuerOrigin: string, expected: string): void {
  const origin = ctx.get('Origin');
  if (origin && origin !== issuerOrigin && origin !== 'null') throw new AppError('request.csrf');
  if (ctx.is('application/json')) return;
  const body = ctx.request.body as Record<string, unknown> | undefined;
  const token = typeof body?._csrf === 'string' ? body._csrf : '';
  if (!safeEqual(token, expected)) throw new AppError('request.csrf');
}
