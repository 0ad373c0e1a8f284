/**
 * Declared API routes: each route states its inputs (zod), the statuses and
 * shapes it answers and the API-key scopes it needs. One declaration drives
 * validation at the edge, the response check and the OpenAPI document.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { ApiKeyService, Scope } from '../../admin/api-keys.ts';
import type { ApiKeyRecord } from '../../store/api-keys.ts';
import type { EventsStore } from '../../store/events.ts';

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type AnySchema = z.ZodType;

export interface RouteDef<P extends AnySchema, Q extends AnySchema, B extends AnySchema> {
  method: Method;
  /** koa-router path, e.g. `/api/v1/users/:id`. */
  path: string;
  summary: string;
  tag: string;
  /** API-key scopes needed; `null` for a route without API-key auth. */
  scopes: Scope[] | null;
  params?: P;
  query?: Q;
  body?: B;
  /** Every status the route may answer, error statuses included. */
  responses: Record<number, { description: string; schema?: AnySchema }>;
  handler(input: { params: z.output<P>; query: z.output<Q>; body: z.output<B>; key: ApiKeyRecord | null; ctx: Context }): Promise<RouteResult>;
}

export type ApiRoute = RouteDef<AnySchema, AnySchema, AnySchema>;

/** The error body every API error has. */
export const ErrorBody = z.object({ error: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

/**
 * Declares a route; the generic parameters give the handler typed inputs.
 * Statuses every route of its kind can answer are added: 400 for bad input,
 * 401/403 for API-key routes, 413 for a body too large, 500.
 */
export function route<P extends AnySchema = z.ZodObject, Q extends AnySchema = z.ZodObject, B extends AnySchema = z.ZodUnknown>(def: RouteDef<P, Q, B>): ApiRoute {
  const common: RouteDef<P, Q, B>['responses'] = {
    400: { description: 'The request is not valid', schema: ErrorBody },
    413: { description: 'The request body is too large', schema: ErrorBody },
    500: { description: 'Server error', schema: ErrorBody },
  };
  if (def.scopes) {
    common[401] = { description: 'API key missing, invalid or revoked', schema: ErrorBody };
    common[403] = { description: 'API key lacks a scope', schema: ErrorBody };
  }
  return { ...def, responses: { ...common, ...def.responses } } as unknown as ApiRoute;
}

function parse<S extends AnySchema>(schema: S | undefined, value: unknown, where: string): unknown {
  if (!schema) return value ?? {};
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  throw new AppError('request.invalid', {
    message: `The request ${where} is not valid: ${result.error.issues.map((i) => `${i.path.join('.') || where}: ${i.message}`).join('; ')}.`,
    details: { in: where, issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
  });
}

/** Reads `Authorization: Bearer <key>` or Okta's `Authorization: SSWS <key>`. */
function presentedKey(ctx: Context): string | undefined {
  const m = /^(?:Bearer|SSWS)\s+(\S+)$/i.exec(ctx.get('Authorization'));
  return m?.[1];
}

export interface MountDeps {
  apiKeys: ApiKeyService;
  events: EventsStore;
  /** Fail (500) when a handler answers a status or shape it did not declare. */
  strict: boolean;
  log(msg: string, err?: unknown): void;
}

export function mountRoutes(router: Router, routes: ApiRoute[], deps: MountDeps): void {
  for (const r of routes) {
    router[r.method](r.path, async (ctx) => {
      try {
        let key: ApiKeyRecord | null = null;
        if (r.scopes) {
          const presented = presentedKey(ctx);
          if (!presented) throw new AppError('auth.api_key_required');
          key = (await deps.apiKeys.authenticate(presented)) ?? null;
          if (!key) throw new AppError('auth.api_key_invalid');
          const missing = r.scopes.filter((s) => !key!.scopes.includes(s));
          if (missing.length > 0) throw new AppError('auth.scope_missing', { details: { missing } });
          await deps.events.record({ type: 'api_key.used', ip: ctx.ip, details: { keyId: key.id, route: `${r.method.toUpperCase()} ${r.path}` } });
        }
        const input = {
          params: parse(r.params, ctx.params, 'path'),
          query: parse(r.query, ctx.query, 'query'),
          body: parse(r.body, ctx.request.body, 'body'),
          key, ctx,
        };
        const result = await r.handler(input as Parameters<ApiRoute['handler']>[0]);
        checkDeclared(r, result.status, result.body, deps);
        for (const [k, v] of Object.entries(result.headers ?? {})) ctx.set(k, v);
        ctx.status = result.status;
        if (result.body !== undefined) ctx.body = result.body;
      } catch (err) {
        if (err instanceof AppError) checkDeclared(r, err.status, undefined, deps);
        throw err;
      }
    });
  }
}

function checkDeclared(r: ApiRoute, status: number, body: unknown, deps: MountDeps): void {
  const declared = r.responses[status];
  let problem: string | undefined;
  if (!declared) problem = `answered undeclared status ${status}`;
  else if (declared.schema && body !== undefined) {
    const check = declared.schema.safeParse(body);
    if (!check.success) problem = `answered ${status} with an undeclared shape: ${check.error.message}`;
  }
  if (!problem) return;
  const msg = `${r.method.toUpperCase()} ${r.path} ${problem}`;
  deps.log(msg);
  if (deps.strict) throw new Error(msg);
}
