/**
 * Sign-in benchmark: complete OIDC sign-ins (authorization request with PKCE,
 * password, authenticator code, code exchange, ID token validation by
 * openid-client) against a real Twofold on a temporary SQLite file, at
 * several concurrency levels; then refresh-token grants; the CPU of one
 * argon2id hash at the configured parameters as the yardstick.
 *
 *   npm run bench                      # about a minute
 *   BENCH_SECONDS=30 npm run bench     # longer levels
 *   BENCH_CONCURRENCY=1,8 BENCH_USERS=3000 npm run bench
 *   scripts/with-postgres.sh sh -c 'BENCH_DATABASE_URL=$DATABASE_URL npm run bench'
 *
 * BENCH_DATABASE_URL must name an empty database (the benchmark refuses one
 * with users); by default it is a SQLite file in a temporary directory.
 *
 * Results go to stdout and to bench-results.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { ROOT_DIR } from '../src/config.ts';
import { createPasswordHasher } from '../src/users/passwords.ts';
import { generateTotp } from '../src/mfa/factors/totp.ts';
import { SignIn, type TestClient } from '../test/helpers/oidc-flow.ts';
import type { TestServer } from '../test/helpers/server.ts';
import { BENCH_PASSWORD, ServerWorker, UserPool, runLevel, type LevelResult } from './load.ts';

const env = process.env;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const LEVELS = (env.BENCH_CONCURRENCY ?? '1,4,16').split(',').map(Number);
const REFRESH_LEVELS = (env.BENCH_REFRESH_CONCURRENCY ?? '1,16').split(',').map(Number);
const HASHES = Number(env.BENCH_HASHES ?? 20);

const machine = {
  nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version,
  platform: `${os.platform()} ${os.release()}`, uvThreadpoolSize: Number(env.UV_THREADPOOL_SIZE ?? 4),
};
console.log(`Twofold sign-in benchmark: ${machine.nproc} cores (${machine.cpu}), Node ${machine.node}, libuv pool ${machine.uvThreadpoolSize}`);

const dir = mkdtempSync(path.join(os.tmpdir(), 'twofold-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const databaseUrl = env.BENCH_DATABASE_URL ?? `sqlite:${path.join(dir, 'bench.sqlite')}`;
const server = new ServerWorker({ databaseUrl, sealKey: randomBytes(32) });
const { origin, passwords, totp } = await server.ready;
console.log(`server ${origin} on ${databaseUrl.split('@').pop()}; argon2id m=${passwords.memoryCost} KiB t=${passwords.timeCost} p=${passwords.parallelism}`);

/** CPU (all threads) and wall time of one argon2id hash, measured while the server is idle. */
async function measureHash() {
  const hasher = createPasswordHasher(passwords);
  for (let i = 0; i < 2; i += 1) await hasher.hash('warm-up password');
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < HASHES; i += 1) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await hasher.hash(`benchmark password ${i}`);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { hashes: HASHES, cpuMsMean: round(mean(cpu)), cpuMsMedian: round(median(cpu)), wallMsMean: round(mean(wall)) };
}

const hash = await measureHash();
console.log(`argon2id hash (${hash.hashes} hashes, server idle): ${hash.cpuMsMedian} ms CPU median, ${hash.cpuMsMean} ms mean; ${hash.wallMsMean} ms wall mean`);

// Enough users that none is needed twice within one TOTP step at the rate the
// target allows (every core busy, a sign-in costing 2 hashes), plus the
// refresh set. A smaller pool shows up as stalls, reported at the end.
const targetRate = machine.nproc / ((2 * hash.cpuMsMedian) / 1000);
const userCount = Number(env.BENCH_USERS ?? Math.min(20_000, Math.ceil(targetRate * totp.period * 1.25) + Math.max(...LEVELS, ...REFRESH_LEVELS)));
const seeded = await server.seed(userCount);
console.log(`seeded ${seeded.users.length} users with active authenticators in ${round(seeded.seconds, 1)} s`);
const pool = new UserPool(seeded.users, totp.period * 1000);

const rp: TestClient = {
  clientId: seeded.clientId, secret: seeded.clientSecret,
  config: await oidc.discovery(new URL(origin), seeded.clientId, seeded.clientSecret, oidc.ClientSecretBasic(seeded.clientSecret), { execute: [oidc.allowInsecureRequests] }),
};
// SignIn reads only the origin of the test server it is given.
const serverShim = { origin } as TestServer;

/** One complete sign-in; @returns the token response (validated by openid-client). */
async function signInOnce(params: Record<string, string> = {}) {
  const user = await pool.lease();
  try {
    const flow = new SignIn(serverShim, rp);
    await flow.start(params);
    await flow.password(user.email, BENCH_PASSWORD);
    const now = Date.now();
    pool.claimStep(user, now);
    await flow.code(await generateTotp({ secret: user.secret, settings: totp, nowMs: now }));
    if (!flow.returned && flow.page.html.includes('/consent')) flow.page = await flow.agent.submit(flow.page, '/consent', {});
    const { tokens, claims } = await flow.finish();
    if (!Array.isArray(claims.amr) || !claims.amr.includes('otp')) throw new Error(`expected amr with otp, got ${JSON.stringify(claims.amr)}`);
    return tokens;
  } finally {
    pool.release(user);
  }
}

function describeLevel(kind: string, r: LevelResult): string {
  return [
    `${kind} c=${String(r.concurrency).padStart(2)}: ${String(r.perSecond).padStart(6)}/s  `
      + `p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  (${r.completed} in ${r.seconds} s, ${r.errors} errors)`,
    `        CPU: process ${r.cpu.coresUsed} cores (${r.perCoreSecond}/s per core), server ${r.cpu.serverCoresUsed} cores `
      + `(${r.perServerCoreSecond}/s per core)`,
    `        server CPU per op: ${r.serverCpuMsPerOp} ms, of which ${r.serverThreadCpuMsPerOp} ms on its JS thread (${Math.round(r.serverThreadBusy * 100)} % busy); `
      + `load generator thread ${Math.round(r.clientThreadBusy * 100)} % busy`,
    `        server event loop delay: p50 ${r.serverLoopDelayMs.p50} ms  p99 ${r.serverLoopDelayMs.p99} ms  max ${r.serverLoopDelayMs.max} ms; `
      + `SQL per op: ${r.sqlPerOp.statements} statements, ${r.sqlPerOp.writes} not reads`,
    ...(r.firstError ? [`        first error: ${r.firstError}`] : []),
  ].join('\n');
}

// Warm-up (JIT, SQLite page cache, provider key import); not measured.
await runLevel(server, 2, Math.min(3, SECONDS), () => signInOnce().then(() => undefined));

const signIns: Array<LevelResult & { signInCpuPerHashCpu: number }> = [];
for (const c of LEVELS) {
  const r = await runLevel(server, c, SECONDS, () => signInOnce().then(() => undefined));
  const ratio = round(r.serverCpuMsPerOp / hash.cpuMsMedian);
  signIns.push({ ...r, signInCpuPerHashCpu: ratio });
  console.log(`${describeLevel('sign-in', r)}\n        server CPU per sign-in / argon2id hash CPU (median) = ${ratio}× (target ≤ 2×)`);
}

// Refresh grants: one refresh token per loop, from a sign-in with offline_access.
const refreshTokens: string[] = [];
for (let i = 0; i < Math.max(...REFRESH_LEVELS); i += 1) {
  const tokens = await signInOnce({ scope: 'openid offline_access', prompt: 'consent' });
  if (!tokens.refresh_token) throw new Error('no refresh token issued for scope offline_access');
  refreshTokens.push(tokens.refresh_token);
}
const refresh: LevelResult[] = [];
for (const c of REFRESH_LEVELS) {
  const r = await runLevel(server, c, SECONDS, async (slot) => {
    const tokens = await oidc.refreshTokenGrant(rp.config, refreshTokens[slot]!);
    if (!tokens.claims()?.sub) throw new Error('refresh answered without an ID token');
    // Rotated tokens (public clients, old tokens) replace the spent one.
    if (tokens.refresh_token) refreshTokens[slot] = tokens.refresh_token;
  });
  refresh.push(r);
  console.log(describeLevel('refresh', r));
}

// client_credentials: measured once the provider offers it.
const grantTypes = rp.config.serverMetadata().grant_types_supported ?? [];
let clientCredentials: LevelResult[] | { skipped: string } = { skipped: 'client_credentials is not enabled (src/oidc/provider.ts features.clientCredentials)' };
if (grantTypes.includes('client_credentials')) {
  const probe = await oidc.clientCredentialsGrant(rp.config, {}).then(() => null, (err: unknown) => String((err as Error).message));
  if (probe) clientCredentials = { skipped: `the benchmark client may not use it: ${probe}` };
  else {
    clientCredentials = [];
    for (const c of REFRESH_LEVELS) {
      const r = await runLevel(server, c, SECONDS, async () => { await oidc.clientCredentialsGrant(rp.config, {}); });
      clientCredentials.push(r);
      console.log(describeLevel('client_credentials', r));
    }
  }
}
if (!Array.isArray(clientCredentials)) console.log(`client_credentials: skipped, ${clientCredentials.skipped}`);

const { serverErrors } = await server.stop();
if (pool.stalls > 0) console.log(`WARNING: the user pool ran dry ${pool.stalls} times (${Math.round(pool.stalledMs)} ms waiting); raise BENCH_USERS`);
if (serverErrors.length > 0) console.log(`server errors (${serverErrors.length}): ${serverErrors.slice(0, 3).join(' | ')}`);

const results = {
  when: new Date().toISOString(), machine, database: databaseUrl.startsWith('sqlite:') ? 'sqlite file' : 'postgresql', seconds: SECONDS, users: seeded.users.length,
  argon2id: { ...passwords, ...hash }, signIns, refresh, clientCredentials,
  poolStalls: pool.stalls, serverErrors: serverErrors.length,
};
writeFileSync(path.join(ROOT_DIR, 'bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log('wrote bench-results.json');
