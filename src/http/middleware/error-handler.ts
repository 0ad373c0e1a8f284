/**
 * Turns errors from our routes into `{ error, message, details? }` (JSON) or
 * the error page (HTML). oidc-provider's own endpoints handle their errors
 * themselves and never reach this.
 */
import type { Context, Middleware } from 'koa';
import { AppError } from '../../errors.ts';
import { render } from '../render.ts';

export function wantsJson(ctx: Context): boolean {
  return ctx.path.startsWith('/api/') || ctx.is('application/json') === 'application/json'
    || (ctx.accepts('html', 'json') === 'json');
}

/** oidc-provider's "no such interaction" family: the sign-in expired or ended. */
function isExpiredInteraction(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'SessionNotFound' || name === 'InvalidRequest' && /interaction/i.test(String((err as Error).message));
}

/** An error from a body parser or Koa itself carrying a 4xx status. */
function clientStatus(err: unknown): number | undefined {
  const status = (err as { status?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isExpiredInteraction(err)) return new AppError('interaction.expired');
  const status = clientStatus(err);
  if (status === 413) return new AppError('request.too_large');
  if (status !== undefined) return new AppError('request.invalid');
  return new AppError('server.error', { cause: err });
}

export function errorHandler(options: { log: (msg: string, err: unknown) => void }): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('request.not_found');
    } catch (err) {
      const e = toAppError(err);
      if (e.code === 'server.error') options.log(`${ctx.method} ${ctx.path} failed`, err);
      if (wantsJson(ctx)) {
        ctx.status = e.status;
        ctx.body = { error: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
        return;
      }
      await render(ctx, 'error', { title: 'Something went wrong', message: e.message, code: e.code, startOver: ctx.state.startOverUrl }, e.status);
    }
  };
}
