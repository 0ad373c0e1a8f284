/**
 * Per-IP request limits, counted in the database so that every node counts
 * the same client together. The client IP is Koa's `ctx.ip`: the socket's
 * address, or, only when `proxy` is trusted, the last X-Forwarded-For hop
 * (the one our own load balancer appended; see src/oidc/provider.ts), so a
 * client cannot rotate X-Forwarded-For values to get fresh limits.
 */
import type { Middleware } from 'koa';
import type { ThrottlesStore } from '../../store/throttles.ts';
import { AppError } from '../../errors.ts';

const WINDOW_MS = 60_000;

/**
 * @param bucket names the limit (`signin`, `api`): each bucket counts apart.
 * @param perMinute requests allowed per IP per minute; 0 turns the limit off.
 * @throws AppError request.rate_limited (429, with Retry-After) past the limit.
 */
export function perIpLimit(deps: { throttles: ThrottlesStore; bucket: string; perMinute: number; now: () => number }): Middleware {
  return async (ctx, next) => {
    if (deps.perMinute <= 0) return next();
    const state = await deps.throttles.hit(`ip:${deps.bucket}:${ctx.ip}`, WINDOW_MS);
    if (state.count > deps.perMinute) {
      const retryAfter = Math.max(1, Math.ceil((state.windowStart + WINDOW_MS - deps.now()) / 1000));
      ctx.set('Retry-After', String(retryAfter));
      throw new AppError('request.rate_limited', { details: { retryAfter } });
    }
    return next();
  };
}
