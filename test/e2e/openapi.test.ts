/**
 * The OpenAPI document matches the routes, and a route that answers a status
 * or shape it did not declare is caught.
 */
import { expect } from 'chai';
import Router from '@koa/router';
import Koa from 'koa';
import { z } from 'zod';
import { startServer, type TestServer } from '../helpers/server.ts';
import { mountRoutes, route } from '../../src/http/api/route.ts';
import { errorHandler } from '../../src/http/middleware/error-handler.ts';

describe('OpenAPI document', () => {
  let server: TestServer;
  before(async () => { server = await startServer(); });
  after(() => server.close());

  it('is served at /api/openapi.json and lists every mounted route with its statuses', async () => {
    const res = await fetch(`${server.origin}/api/openapi.json`);
    expect(res.status).to.equal(200);
    const doc = await res.json() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown }>> };
    expect(doc.openapi).to.equal('3.1.0');
    expect(server.app.routes.length).to.be.greaterThan(0);
    for (const r of server.app.routes) {
      const op = doc.paths[r.path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[r.method];
      expect(op, `${r.method} ${r.path} is missing from the document`).to.be.an('object');
      expect(Object.keys(op!.responses).map(Number).sort()).to.deep.equal(Object.keys(r.responses).map(Number).sort());
      if (r.scopes) expect(op!.security).to.deep.equal([{ apiKey: [] }]);
    }
    const documented = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    expect(documented).to.equal(server.app.routes.length);
  });
});

describe('declared responses', () => {
  async function serve(strict: boolean) {
    const logged: string[] = [];
    const app = new Koa();
    const router = new Router();
    const apiKeys = { authenticate: async () => undefined } as never;
    const events = { record: async () => undefined } as never;
    mountRoutes(router, [
      route({ method: 'get', path: '/undeclared', tag: 't', summary: 's', scopes: null, responses: { 200: { description: 'ok' } }, handler: async () => ({ status: 201, body: {} }) }),
      route({ method: 'get', path: '/shape', tag: 't', summary: 's', scopes: null, responses: { 200: { description: 'ok', schema: z.object({ n: z.number() }) } }, handler: async () => ({ status: 200, body: { n: 'one' } }) }),
      route({ method: 'get', path: '/fine', tag: 't', summary: 's', scopes: null, responses: { 200: { description: 'ok', schema: z.object({ n: z.number() }) } }, handler: async () => ({ status: 200, body: { n: 1 } }) }),
    ], { apiKeys, events, strict, log: (m) => logged.push(m) });
    app.use(errorHandler({ log: () => {} }));
    app.use(router.routes());
    const server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return { base, logged, close: () => new Promise((r) => server.close(r)) };
  }

  it('turns an undeclared status or shape into a 500 in strict mode, and logs it', async () => {
    const s = await serve(true);
    expect((await fetch(`${s.base}/undeclared`)).status).to.equal(500);
    expect((await fetch(`${s.base}/shape`)).status).to.equal(500);
    expect((await fetch(`${s.base}/fine`)).status).to.equal(200);
    expect(s.logged).to.have.length(2);
    expect(s.logged[0]).to.match(/GET \/undeclared answered undeclared status 201/);
    await s.close();
  });

  it('only logs in production mode', async () => {
    const s = await serve(false);
    expect((await fetch(`${s.base}/undeclared`)).status).to.equal(201);
    expect(s.logged).to.have.length(1);
    await s.close();
  });
});
