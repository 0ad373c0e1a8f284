/**
 * Prometheus metrics. Domain code sees only `DomainMetrics` (plain methods,
 * closed label values); prom-client stays in this file and in src/http/ops.ts.
 * Each `createMetrics()` has its own Registry, so tests and several apps in
 * one process do not share counters.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SecondFactorMethod } from './mfa/amr.ts';

export type SignInOutcome =
  /** Every factor the policy needs is done. */
  | 'success'
  /** Unknown user, wrong password, suspended user (one outcome: they look alike on purpose). */
  | 'invalid_credentials'
  /** The second factor failed for good (attempts exhausted, challenge expired). */
  | 'second_factor_failed'
  /** Refused because the account is locked out. */
  | 'locked';

export type SecondFactorOutcome = 'success' | 'invalid' | 'replayed' | 'expired' | 'too_many_attempts' | 'locked';

/** What the domain records. No prom-client types: a test can pass `noopMetrics` or a spy. */
export interface DomainMetrics {
  /** A sign-in ended; `amr` is the session's amr on success (RFC 8176 values). */
  recordSignIn(outcome: SignInOutcome, amr?: readonly string[]): void;
  /** One evaluated second-factor attempt. */
  recordSecondFactor(method: SecondFactorMethod, outcome: SecondFactorOutcome): void;
  /** An account was locked out. */
  recordLockout(): void;
  /** Wall time of one argon2 hash or verify. */
  observePasswordHash(seconds: number): void;
  /** Runs `work` (a hash or verify) and observes its duration, failed or not. */
  timePasswordHash<T>(work: () => Promise<T>): Promise<T>;
}

export interface HttpObservation {
  method: string;
  /** A route template or a fixed label, never a raw path. */
  route: string;
  status: number;
  seconds: number;
}

export interface Metrics extends DomainMetrics {
  /** This instance's registry (for the /metrics route or a push gateway). */
  readonly register: Registry;
  /** The Content-Type of `render()`. */
  readonly contentType: string;
  /** The Prometheus text exposition of every metric in the registry. */
  render(): Promise<string>;
  observeHttpRequest(observation: HttpObservation): void;
}

/** RFC 8176 values we may emit; anything else would be a new label value per typo. */
const KNOWN_AMR = new Set(['pwd', 'otp', 'sms', 'hwk', 'swk', 'user', 'pin', 'fpt', 'mfa', 'face', 'sc', 'kba']);
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** `pwd+otp+mfa`: the known values in the order given, or `none`. */
function amrLabel(amr: readonly string[] | undefined): string {
  const values = (amr ?? []).filter((v) => KNOWN_AMR.has(v));
  return values.length > 0 ? values.join('+') : 'none';
}

export interface MetricsOptions {
  /** Process and Node.js metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
  /** Prefix of Twofold's own metric names; default `twofold_`. */
  prefix?: string;
}

/** A registry with the HTTP and domain metrics (and by default the process ones). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const register = new Registry();
  const prefix = options.prefix ?? 'twofold_';
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register });

  const httpRequests = new Counter({
    name: 'http_requests_total', help: 'HTTP requests by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const, registers: [register],
  });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds', help: 'HTTP request duration until the handler returned, by route template.',
    labelNames: ['method', 'route'] as const, registers: [register],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  const signIns = new Counter({
    name: `${prefix}signins_total`, help: 'Finished sign-ins by outcome and amr (pwd, pwd+otp+mfa, …).',
    labelNames: ['outcome', 'amr'] as const, registers: [register],
  });
  const secondFactor = new Counter({
    name: `${prefix}second_factor_total`, help: 'Evaluated second-factor attempts by method and outcome.',
    labelNames: ['method', 'outcome'] as const, registers: [register],
  });
  const lockouts = new Counter({
    name: `${prefix}lockouts_total`, help: 'Accounts locked out.', registers: [register],
  });
  const passwordHash = new Histogram({
    name: `${prefix}password_hash_seconds`, help: 'Wall time of one argon2id hash or verify (includes thread-pool queueing).',
    registers: [register], buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5],
  });

  const observePasswordHash = (seconds: number) => passwordHash.observe(seconds);
  return {
    register,
    contentType: register.contentType,
    render: () => register.metrics(),
    observeHttpRequest({ method, route, status, seconds }) {
      const m = KNOWN_METHODS.has(method) ? method : 'OTHER';
      httpRequests.inc({ method: m, route, status: String(status) });
      httpDuration.observe({ method: m, route }, seconds);
    },
    recordSignIn(outcome, amr) {
      signIns.inc({ outcome, amr: outcome === 'success' ? amrLabel(amr) : 'none' });
    },
    recordSecondFactor(method, outcome) {
      secondFactor.inc({ method, outcome });
    },
    recordLockout() {
      lockouts.inc();
    },
    observePasswordHash,
    async timePasswordHash(work) {
      const start = performance.now();
      try {
        return await work();
      } finally {
        observePasswordHash((performance.now() - start) / 1000);
      }
    },
  };
}

/** Records nothing: the default for domain factories and unit tests. */
export const noopMetrics: DomainMetrics = {
  recordSignIn() {},
  recordSecondFactor() {},
  recordLockout() {},
  observePasswordHash() {},
  timePasswordHash: (work) => work(),
};
