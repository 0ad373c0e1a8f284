/**
 * Operations endpoints for load balancers and Prometheus:
 * - `GET /healthz`: the process answers (liveness; never touches the database,
 *   so a slow database does not get healthy processes killed).
 * - `GET /readyz`: the database answers and every migration is applied
 *   (readiness; a node that fails it is taken out of rotation, not restarted).
 * - `GET /metrics`: Prometheus text from this app's own registry.
 * And the middleware that counts and times requests by route template.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { migrationsCurrent, type Db } from '../store/db.ts';
import type { Metrics } from '../metrics.ts';
import { routeLabel, statusOfError, type LogFn } from '../lib/log.ts';

export type NotReadyReason = 'shutting_down' | 'database_unreachable' | 'database_timeout' | 'migrations_pending' | 'migrations_unknown';

export interface OpsDeps {
  db: Db;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  /** How long readiness waits for the database before answering 503; default 2000 ms. */
  readyTimeoutMs?: number;
  /** Told when readiness changes to a failure (once per change, not per probe). */
  log?: LogFn;
  /**
   * True once the process has begun a graceful shutdown: readiness fails
   * first, so the load balancer stops sending new sign-ins while in-flight
   * ones finish.
   */
  stopping?: () => boolean;
}

class ReadyTimeout extends Error {}

/** Rejects with ReadyTimeout after `ms`; the probe must answer even when the pool is stuck. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReadyTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why this node should not take traffic, or null when it should.
 * Never throws: every failure is a reason.
 */
export async function notReadyReason(db: Db, timeoutMs = 2000): Promise<{ reason: NotReadyReason; err?: unknown } | null> {
  try {
    await within(timeoutMs, db.raw('select 1'));
  } catch (err) {
    return { reason: err instanceof ReadyTimeout ? 'database_timeout' : 'database_unreachable', err };
  }
  try {
    // Checked on every probe, not cached: a node started before a migration
    // was rolled back, or pointed at a fresh database, must leave rotation.
    return (await within(timeoutMs, migrationsCurrent(db))) ? null : { reason: 'migrations_pending' };
  } catch (err) {
    return { reason: err instanceof ReadyTimeout ? 'database_timeout' : 'migrations_unknown', err };
  }
}

/**
 * The ops router. Mount it in front of everything else (`provider.use(ops.routes())`).
 * Its answers are never cached and carry no secrets; `/metrics` does reveal
 * traffic volumes: let only the scraper reach it (load balancer rule or a
 * separate internal listener).
 */
export function createOps(deps: OpsDeps): Router {
  const router = new Router();
  let lastReason: NotReadyReason | null = null;

  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const failure = deps.stopping?.() ? { reason: 'shutting_down' as const } : await notReadyReason(deps.db, deps.readyTimeoutMs);
    if (failure && failure.reason !== lastReason) deps.log?.(`not ready: ${failure.reason}`, 'err' in failure ? failure.err : undefined);
    lastReason = failure?.reason ?? null;
    if (!failure) {
      ctx.body = { status: 'ok' };
      return;
    }
    ctx.status = 503;
    ctx.body = { status: 'unavailable', reason: failure.reason };
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Type', deps.metrics.contentType);
    ctx.body = await deps.metrics.render();
  });

  return router;
}

/**
 * Counts (`http_requests_total{method,route,status}`) and times
 * (`http_request_duration_seconds{method,route}`) every request. The route is
 * the matched template (`/interaction/:uid`), or `unmatched`: never the raw
 * path, whose ids would create a time series per request. Mount it outside
 * the error handler so it records the status the client gets.
 */
export function metricsMiddleware(metrics: Pick<Metrics, 'observeHttpRequest'>): Middleware {
  return async (ctx, next) => {
    const start = process.hrtime.bigint();
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } catch (err) {
      status = statusOfError(err);
      throw err;
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.observeHttpRequest({ method: ctx.method, route: routeLabel(ctx), status, seconds });
    }
  };
}
