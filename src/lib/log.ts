/**
 * Structured JSON logs (pino), one line per request. An identity provider's
 * requests carry passwords, one-time codes, authorization codes, tokens and
 * session cookies, so the request log is built from an allow-list (method,
 * route template, status, duration, request id) and never from the request
 * itself; `REDACT_PATHS` is the second line of defence for whatever other
 * code hands to the logger.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** The shape src/app.ts and its parts log errors with. */
export type LogFn = (msg: string, err?: unknown) => void;

/** Keys whose values are secrets wherever they appear, at the top level or one level down. */
const SECRET_KEYS = [
  'password', 'newPassword', 'currentPassword', 'passwordHash', 'password_hash',
  'token', 'access_token', 'refresh_token', 'id_token', 'accessToken', 'refreshToken', 'idToken',
  'client_secret', 'clientSecret', 'code_verifier', 'secret', 'sealKey', 'seed',
  'authorization', 'cookie', 'cookies', 'twoFactorId', 'otp', 'recoveryCode',
];

/**
 * Paths pino censors. `code` is censored only where a request's input would
 * put it (an OAuth code or a one-time code), not everywhere: `err.code` is an
 * error code we want to keep.
 */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`]),
  'code', 'query.code', 'body.code', 'params.code', 'form.code',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]',
  'req.query', 'req.body', 'res.headers["set-cookie"]', 'headers["set-cookie"]', 'headers["proxy-authorization"]',
];

const SQL_PREFIX = /^\s*(select|insert|update|delete|with|create|alter|drop|pragma|begin|commit|rollback)\b/i;

/**
 * knex prefixes a failed query's error message with the SQL and its bound
 * values interpolated (`insert into users … values ('a@b.c', '$argon2id…') - …`),
 * and pg errors carry `detail` with row values. Keep the driver's own message
 * and a few scalar fields; drop the rest.
 */
function safeMessage(message: string): string {
  if (!SQL_PREFIX.test(message)) return message;
  const at = message.lastIndexOf(' - ');
  return `[query redacted]${at >= 0 ? message.slice(at) : ''}`;
}

interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
  status?: number;
  stack?: string;
  cause?: SerializedError;
}

/** pino `err` serializer: type, message (SQL stripped), code, status, stack frames, cause. */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (!(err instanceof Error)) return { type: typeof err, message: safeMessage(String(err)) };
  const e = err as Error & { code?: unknown; status?: unknown };
  const message = safeMessage(e.message);
  const out: SerializedError = { type: e.name, message };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.status === 'number') out.status = e.status;
  // The stack's first lines repeat the (possibly SQL-bearing) message: keep only the frames.
  const frames = (e.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  out.stack = [`${e.name}: ${message}`, ...frames].join('\n');
  if (e.cause !== undefined && depth < 3) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

export interface LoggerConfig {
  level?: LevelWithSilent;
  /** Where the JSON lines go; stdout when absent (tests pass a stream). */
  destination?: DestinationStream;
  /** Fields on every line, such as `{ service: 'twofold' }`. */
  base?: Record<string, unknown>;
}

/** The request being served, so every line logged while serving it carries its id. */
const requestContext = new AsyncLocalStorage<{ reqId: string }>();

/**
 * A pino logger with Twofold's redaction and error serializer. Lines logged
 * while requestLog serves a request (by any code, through this logger or
 * logFunction) get that request's `reqId`.
 */
export function createLogger(options: LoggerConfig = {}): Logger {
  const config = {
    level: options.level ?? 'info',
    mixin: () => {
      const current = requestContext.getStore();
      return current ? { reqId: current.reqId } : {};
    },
    base: options.base ?? { service: 'twofold' },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    serializers: { err: (err: unknown) => serializeError(err) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** Adapts a logger to the `(msg, err?)` shape createApp takes. */
export function logFunction(logger: Logger): LogFn {
  return (msg, err) => {
    if (err === undefined) logger.error(msg);
    else logger.error({ err }, msg);
  };
}

/**
 * The route template a request matched: @koa/router's and oidc-provider's
 * routers both set `_matchedRoute` (`/interaction/:uid`, `/auth/:uid`);
 * oidc-provider also names its routes. Never the raw path, whose ids would
 * make every request its own label.
 *
 * @koa/router overwrites `_matchedRoute` with each router-level middleware's
 * path (`(?:\/|$)`) as the chain runs, so a request stopped by such a
 * middleware (CSRF, API key) would lose its route; the layer list in
 * `ctx.matched` still has it.
 */
export function routeLabel(ctx: Context): string {
  const layers = (ctx as { matched?: Array<{ path?: unknown; methods?: string[] }> }).matched;
  if (Array.isArray(layers)) {
    for (let i = layers.length - 1; i >= 0; i -= 1) {
      const layer = layers[i]!;
      if (typeof layer.path === 'string' && layer.path.startsWith('/') && layer.methods?.includes(ctx.method)) return layer.path;
    }
  }
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string' && matched.startsWith('/')) return matched;
  if (matched instanceof RegExp) return String(matched);
  const oidcRoute = (ctx as { oidc?: { route?: unknown } }).oidc?.route;
  if (typeof oidcRoute === 'string' && oidcRoute !== '') return `oidc:${oidcRoute}`;
  return 'unmatched';
}

/** The status a thrown error will most likely be answered with. */
export function statusOfError(err: unknown): number {
  const status = (err as { status?: unknown; statusCode?: unknown })?.status ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500;
}

/** An incoming X-Request-Id we are willing to echo: short, no spaces or control characters (no log forging). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One JSON line per request: method, route template, status, ms and request
 * id. Mount it outermost, so it sees the status the error handler chose.
 * The line has no path (only for unmatched requests, without the query),
 * no query, body, headers or cookies: those carry codes, passwords and tokens.
 * Sets `ctx.state.requestId`.
 */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const start = process.hrtime.bigint();
    let status = 500;
    try {
      await requestContext.run({ reqId: requestId }, next);
      status = ctx.status;
    } catch (err) {
      status = statusOfError(err);
      throw err;
    } finally {
      const route = routeLabel(ctx);
      const line: Record<string, unknown> = {
        reqId: requestId, method: ctx.method, route, status,
        ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
      };
      // Unmatched paths are worth seeing (scanners, broken links); ids in them are not ours.
      if (route === 'unmatched') line.path = ctx.path.slice(0, 200);
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      logger[level](line, 'request');
    }
  };
}
