/**
 * The load generator's parts: the server worker's handle, a pool of users
 * whose TOTP steps never collide, and a closed-loop runner that measures a
 * concurrency level (throughput, latency, CPU by thread, server loop delay).
 */
import { Worker } from 'node:worker_threads';
import type { PasswordParams } from '../src/users/passwords.ts';
import type { TotpSettings } from '../src/mfa/factors/totp.ts';

export interface WorkerInput {
  /** `sqlite:<file>` or `postgres://…` of an empty database. */
  databaseUrl: string;
  sealKey: Uint8Array;
}

export interface SeededUser { email: string; secret: string }
export interface SeedResult { users: SeededUser[]; clientId: string; clientSecret: string; seconds: number }
export interface LoopWindow {
  /** Event-loop delay on the server's thread during the window, in ms beyond the timer interval. */
  delayMs: { p50: number; p99: number; max: number; mean: number };
  /** CPU seconds of the server's JavaScript thread alone. */
  threadCpuSeconds: number;
  /** SQL statements during the window, and those that were not reads. */
  queries: number;
  writes: number;
}

export const BENCH_PASSWORD = 'bench correct horse battery staple';

/** The Twofold worker: started, asked, stopped. */
export class ServerWorker {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  ready: Promise<{ origin: string; passwords: PasswordParams; totp: TotpSettings }>;

  constructor(input: WorkerInput) {
    // The worker inherits this process's execArgv, so tsx loads its TypeScript too.
    this.worker = new Worker(new URL('./server-worker.ts', import.meta.url), { workerData: input });
    this.ready = new Promise((resolve, reject) => {
      // A crashed server fails whatever waits on it instead of hanging the run.
      this.worker.once('error', (err) => {
        reject(err);
        for (const waiter of this.pending.values()) waiter.reject(err);
        this.pending.clear();
      });
      this.worker.on('message', (msg: { ready?: unknown; id?: number; result?: unknown; error?: string }) => {
        if (msg.ready) return resolve(msg.ready as Awaited<ServerWorker['ready']>);
        const waiter = this.pending.get(msg.id!);
        this.pending.delete(msg.id!);
        if (msg.error) waiter?.reject(new Error(msg.error));
        else waiter?.resolve(msg.result);
      });
    });
  }

  private call<T>(op: string, extra: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, ...extra });
    });
  }

  seed(count: number): Promise<SeedResult> { return this.call('seed', { count }); }
  windowStart(): Promise<void> { return this.call('window-start'); }
  windowEnd(): Promise<LoopWindow> { return this.call('window-end'); }
  async stop(): Promise<{ serverErrors: string[] }> {
    const result = await this.call<{ serverErrors: string[] }>('stop');
    await this.worker.terminate();
    return result;
  }
}

export interface PoolUser { email: string; secret: string; lastStep: number }

/**
 * Twofold accepts each TOTP time step once per factor, so a user can sign in
 * once per step. The pool hands out users least recently used first, each to
 * one sign-in at a time, and only when its last step is behind the current
 * one; if none is, the caller waits for the next step (a stall, reported:
 * it means the pool is too small for the throughput).
 */
export class UserPool {
  private queue: PoolUser[];
  stalls = 0;
  stalledMs = 0;

  constructor(users: Array<{ email: string; secret: string }>, private periodMs: number) {
    this.queue = users.map((u) => ({ ...u, lastStep: 0 }));
  }

  stepAt(ms: number): number { return Math.floor(ms / this.periodMs); }

  async lease(): Promise<PoolUser> {
    for (;;) {
      const now = Date.now();
      const step = this.stepAt(now);
      const i = this.queue.findIndex((u) => u.lastStep < step);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      this.stalls += 1;
      const wait = (step + 1) * this.periodMs - now + 20;
      this.stalledMs += wait;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Claims the current step for the user's code. */
  claimStep(user: PoolUser, nowMs: number): void {
    const step = this.stepAt(nowMs);
    if (step <= user.lastStep) throw new Error(`step ${step} already used by ${user.email}`);
    user.lastStep = step;
  }

  release(user: PoolUser): void { this.queue.push(user); }
}

export interface LevelResult {
  concurrency: number;
  seconds: number;
  completed: number;
  errors: number;
  firstError?: string;
  perSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  cpu: {
    /** All threads of the process: server worker, libuv pool (argon2, sqlite), GC, and the load generator. */
    processSeconds: number;
    /** The load generator's own thread. */
    clientThreadSeconds: number;
    /** processSeconds − clientThreadSeconds. */
    serverSeconds: number;
    /** The server's JavaScript thread alone. */
    serverThreadSeconds: number;
    coresUsed: number;
    serverCoresUsed: number;
  };
  /** Completed per second per core the process used. */
  perCoreSecond: number;
  /** Completed per second per core the server used. */
  perServerCoreSecond: number;
  serverCpuMsPerOp: number;
  /** Of which on the server's JavaScript thread (the rest: libuv pool, GC threads). */
  serverThreadCpuMsPerOp: number;
  /** The server's JavaScript thread busy share: near 100 % means one process can do no more. */
  serverThreadBusy: number;
  /** The load generator's thread busy share: near 100 % means the generator, not Twofold, is the limit. */
  clientThreadBusy: number;
  serverLoopDelayMs: LoopWindow['delayMs'];
  /** SQL statements per operation (all, and those that write). */
  sqlPerOp: { statements: number; writes: number };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Runs `op` in `concurrency` closed loops for `seconds` (`op` learns which
 * loop calls it); operations started before the deadline finish and count.
 */
export async function runLevel(server: ServerWorker, concurrency: number, seconds: number, op: (loop: number) => Promise<void>): Promise<LevelResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  await server.windowStart();
  const cpu0 = process.cpuUsage();
  const thread0 = process.threadCpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async (_, loop) => {
    while (performance.now() < deadline) {
      const start = performance.now();
      try {
        await op(loop);
        latencies.push(performance.now() - start);
      } catch (err) {
        errors += 1;
        firstError ??= err instanceof Error ? err.message.slice(0, 300) : String(err);
      }
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const thread = process.threadCpuUsage(thread0);
  const loop = await server.windowEnd();

  const processSeconds = (cpu.user + cpu.system) / 1e6;
  const clientThreadSeconds = (thread.user + thread.system) / 1e6;
  const serverSeconds = processSeconds - clientThreadSeconds;
  const completed = latencies.length;
  latencies.sort((a, b) => a - b);
  return {
    concurrency, seconds: round(wall), completed, errors, ...(firstError ? { firstError } : {}),
    perSecond: round(completed / wall),
    latencyMs: { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1), max: round(latencies.at(-1) ?? Number.NaN, 1) },
    cpu: {
      processSeconds: round(processSeconds), clientThreadSeconds: round(clientThreadSeconds), serverSeconds: round(serverSeconds),
      serverThreadSeconds: round(loop.threadCpuSeconds), coresUsed: round(processSeconds / wall), serverCoresUsed: round(serverSeconds / wall),
    },
    perCoreSecond: round(completed / processSeconds),
    perServerCoreSecond: round(completed / serverSeconds),
    serverCpuMsPerOp: round((serverSeconds / completed) * 1000, 1),
    serverThreadCpuMsPerOp: round((loop.threadCpuSeconds / completed) * 1000, 1),
    serverThreadBusy: round(loop.threadCpuSeconds / wall),
    clientThreadBusy: round(clientThreadSeconds / wall),
    serverLoopDelayMs: loop.delayMs,
    sqlPerOp: { statements: round(loop.queries / completed, 1), writes: round(loop.writes / completed, 1) },
  };
}
