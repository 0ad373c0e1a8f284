/**
 * Several Twofold nodes behind one origin, as in production: each node is a
 * real app on its own loopback port with its own database pool, all on one
 * database and one seal key, and a small HTTP balancer in front whose origin
 * is the issuer. The test decides which node serves each request.
 */
import { createServer, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { listenOnLoopback, relay } from './relay.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { resetDatabase, startServer, TEST_SEAL_KEY, type TestServer } from './server.ts';

/** Which node serves a request: a node's name, or a function of the request. */
export type Route = string | ((req: IncomingMessage) => string);

export interface Served {
  node: string;
  method: string;
  path: string;
  status: number;
}

export interface Balancer {
  origin: string;
  /** Every request forwarded so far, in order. */
  served: Served[];
  add(name: string, origin: string): void;
  /** Sends the following requests to one node, or by a rule; 'round-robin' alternates. */
  route(route: Route | 'round-robin'): void;
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the balancer's own, not forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  return out;
}

/**
 * A plain HTTP reverse proxy. It forwards the request unchanged, Host header
 * included, so a node builds its URLs for the public origin; it adds no
 * X-Forwarded-* headers (the nodes do not trust a proxy here).
 */
export async function startBalancer(): Promise<Balancer> {
  const nodes = new Map<string, string>();
  const agent = new HttpAgent({ keepAlive: true });
  const served: Served[] = [];
  let rule: Route | 'round-robin' = 'round-robin';
  let turn = 0;

  function pick(req: IncomingMessage): string {
    if (rule === 'round-robin') {
      const names = [...nodes.keys()];
      turn += 1;
      return names[(turn - 1) % names.length]!;
    }
    return typeof rule === 'function' ? rule(req) : rule;
  }

  const server: Server = createServer((req, res) => {
    const node = pick(req);
    const target = nodes.get(node);
    if (!target) {
      res.writeHead(502).end(`no node named ${node}`);
      return;
    }
    relay(req, res, target, {
      headers: endToEnd(req.headers), agent, answerHeaders: endToEnd,
      onAnswer: (status) => served.push({ node, method: req.method!, path: req.url!.split('?')[0]!, status }),
    });
  });
  const listening = await listenOnLoopback(server);

  return {
    origin: listening.origin,
    served,
    add: (name, origin) => { nodes.set(name, origin); },
    route: (r) => { rule = r; },
    async close() {
      await listening.close();
      agent.destroy();
    },
  };
}

/** A node as the relying party and the browser see it: `origin` is the balancer's. */
export interface ClusterNode extends TestServer {
  name: string;
  /** The node's own origin, bypassing the balancer. */
  nodeOrigin: string;
}

export interface Cluster {
  /** The public origin, which is also every node's issuer. */
  origin: string;
  balancer: Balancer;
  nodes: ClusterNode[];
  /** Where the database lives: TEST_DATABASE_URL, or a temporary SQLite file. */
  databaseUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the balancer, then one node per name: the same issuer (the balancer's
 * origin), seal key, clock and database URL, each with its own connection
 * pool. Migrations run once, before the first node starts, as in a rollout.
 * On SQLite the database is a temporary file (an in-memory database lives in
 * one connection and could not be shared).
 */
export async function startCluster(names: string[] = ['a', 'b']): Promise<Cluster> {
  const pg = process.env.TEST_DATABASE_URL?.startsWith('postgres');
  const dir = pg ? undefined : mkdtempSync(path.join(tmpdir(), 'twofold-cluster-'));
  const databaseUrl = pg ? process.env.TEST_DATABASE_URL! : `sqlite:${path.join(dir!, 'twofold.sqlite')}`;

  const first = createDb(databaseUrl);
  await migrateLatest(first);
  await resetDatabase(first);
  const dbs: Db[] = [first, ...names.slice(1).map(() => createDb(databaseUrl))];

  const balancer = await startBalancer();
  const clock = manualClock(Date.now());
  const nodes: ClusterNode[] = [];
  for (const [i, name] of names.entries()) {
    // Nodes start one after the other, so the first creates the keys and the others load them.
    const server = await startServer({ db: dbs[i]!, clock, sealKey: TEST_SEAL_KEY, overrides: { issuer: balancer.origin, database: { url: databaseUrl } } });
    balancer.add(name, server.origin);
    nodes.push({ ...server, name, origin: balancer.origin, nodeOrigin: server.origin });
  }

  return {
    origin: balancer.origin, balancer, nodes, databaseUrl,
    async close() {
      for (const node of nodes) await node.close();
      await balancer.close();
      for (const db of dbs) await db.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
