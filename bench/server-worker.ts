/**
 * Twofold for the benchmark, in a worker thread of the benchmark's process:
 * a real app (createApp) on a temporary SQLite file with the system clock,
 * listening on loopback. Running it on its own thread keeps the load
 * generator's JavaScript (openid-client, the scripted browser) off the
 * server's event loop, so the loop delay measured here is the server's, and
 * the generator's CPU can be told apart (process.threadCpuUsage on the main
 * thread).
 *
 * Messages: `{ id, op: 'seed' | 'window-start' | 'window-end' | 'stop', … }`,
 * each answered with `{ id, result }` or `{ id, error }`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../src/config.ts';
import { createDb, migrateLatest } from '../src/store/db.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createApp } from '../src/app.ts';
import { createPasswordHasher } from '../src/users/passwords.ts';
import { BENCH_PASSWORD, type LoopWindow, type SeedResult, type SeededUser, type WorkerInput } from './load.ts';

const port = parentPort!;
const input = workerData as WorkerInput;

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
// The development defaults (config/default.json): the argon2id parameters a
// deployment runs with unless it changes them. No sweeper: a sweep landing in
// one level would skew it.
const config = loadConfig({
  env: {},
  // Every simulated user comes from this one address: per-IP limits off, as
  // behind a balancer spreading real clients' addresses.
  overrides: {
    issuer: origin, database: { url: input.databaseUrl }, demo: { enabled: false }, sweepIntervalSeconds: 0,
    throttle: { perIp: { signInPerMinute: 0, apiPerMinute: 0 } },
  },
});
const db = createDb(config.database.url);
await migrateLatest(db);
// Never benchmark on (and fill) a database that holds anything.
const [row] = await db('users').count({ n: '*' }) as Array<{ n: number | string }>;
if (Number(row?.n) > 0) throw new Error(`the benchmark needs an empty database; ${config.database.url.split('@').pop()} has users`);
const errors: string[] = [];
const app = await createApp({
  config, db, clock: systemClock, sealKey: Buffer.from(input.sealKey),
  log: (msg, err) => errors.push(`${msg}: ${err instanceof Error ? err.message : String(err ?? '')}`),
});
server.on('request', app.provider.callback());

// Statements the server sends to the database, and how many are not reads
// (writes, BEGIN, COMMIT).
let queries = 0;
let writes = 0;
db.on('query', (q: { sql?: string }) => {
  queries += 1;
  if (!/^\s*(select|pragma)\b/i.test(q.sql ?? '')) writes += 1;
});

// Node records the time between timer firings, interval included: a loop
// that never waits still shows the resolution, so it is subtracted below.
const LOOP_RESOLUTION_MS = 5;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
let threadCpuStart = process.threadCpuUsage();

/**
 * N users sharing one password hash (computed once: seeding thousands of
 * argon2 hashes would take longer than the benchmark), each with an active
 * authenticator, and one confidential first-party client.
 */
async function seed(count: number): Promise<SeedResult> {
  const started = performance.now();
  const passwordHash = await createPasswordHasher(config.passwords).hash(BENCH_PASSWORD);
  const users: SeededUser[] = [];
  const batch = 25;
  for (let i = 0; i < count; i += batch) {
    const made = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async (_, j) => {
      const email = `bench-${i + j}@example.com`;
      const user = await app.stores.users.insert({ email, name: `Bench ${i + j}`, passwordHash });
      const { factor, secret } = await app.services.factorService.enrollTotp({ userId: user.id, accountName: email });
      // Activated through the same guarded write sign-in uses; step 0 is never a real step.
      await app.stores.factors.acceptTimeStep(factor.id, 0, true);
      return { email, secret };
    }));
    users.push(...made);
  }
  const { client, clientSecret } = await app.services.clients.create({
    clientId: 'bench', name: 'Benchmark', redirectUris: ['http://127.0.0.1:9/callback'],
    postLogoutRedirectUris: ['http://127.0.0.1:9/'], public: false, firstParty: true, mfaPolicy: null, clientCredentials: true,
  });
  return { users, clientId: client.clientId, clientSecret: clientSecret!, seconds: (performance.now() - started) / 1000 };
}

function windowEnd(): LoopWindow {
  const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100);
  const cpu = process.threadCpuUsage(threadCpuStart);
  return {
    delayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max), mean: ms(loopDelay.mean) },
    threadCpuSeconds: (cpu.user + cpu.system) / 1e6,
    queries, writes,
  };
}

async function stop(): Promise<{ serverErrors: string[] }> {
  loopDelay.disable();
  app.stop();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await db.destroy();
  return { serverErrors: errors };
}

port.on('message', (msg: { id: number; op: string; count?: number }) => {
  const run = async (): Promise<unknown> => {
    switch (msg.op) {
      case 'seed': return seed(msg.count ?? 0);
      case 'window-start':
        loopDelay.reset();
        threadCpuStart = process.threadCpuUsage();
        queries = 0;
        writes = 0;
        return null;
      case 'window-end': return windowEnd();
      case 'stop': return stop();
      default: throw new Error(`unknown op ${msg.op}`);
    }
  };
  run().then(
    (result) => port.postMessage({ id: msg.id, result }),
    (err: unknown) => port.postMessage({ id: msg.id, error: err instanceof Error ? err.stack : String(err) }),
  );
});

const { algorithm, digits, period } = config.totp;
port.postMessage({ ready: { origin, passwords: config.passwords, totp: { algorithm, digits, period } } });
