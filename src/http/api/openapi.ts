/**
 * The OpenAPI 3.1 document, generated from the same route declarations that
 * validate requests, so it cannot drift from the routes.
 */
import { z } from 'zod';
import type { ApiRoute } from './route.ts';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => ({
    name, in: where, required: where === 'path' || (s.required ?? []).includes(name), schema: prop,
  }));
}

export function openApiDocument(routes: ApiRoute[], info: { issuer: string; version: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][r.method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.scopes ? { security: [{ apiKey: [] }], 'x-scopes': r.scopes } : {}),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } } } : {}),
      responses: Object.fromEntries(Object.entries(r.responses).map(([status, res]) => [status, {
        description: res.description,
        ...(res.schema ? { content: { 'application/json': { schema: jsonSchema(res.schema, 'output') } } } : {}),
      }])),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Twofold API', version: info.version, description: 'Verification (second factor) and management APIs.' },
    servers: [{ url: info.issuer }],
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (`tfk_…`). `Authorization: SSWS <key>` is accepted too.' },
      },
    },
    paths,
  };
}
