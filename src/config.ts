/**
 * Settings: `config/default.json`, then `config/<env>.json`, then environment
 * variables, validated once. This is the only module that reads `process.env`.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import { deliverySchema, webhookSchema } from './delivery/config.ts';

export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const mfaPolicy = z.enum(['off', 'optional', 'required']);
export type MfaPolicy = z.infer<typeof mfaPolicy>;

const seconds = z.number().int().positive();

const schema = z.object({
  env: z.enum(['development', 'test', 'production']),
  port: z.number().int().min(0).max(65535),
  issuer: z.url().refine((u) => !u.endsWith('/'), 'must not end with a slash'),
  /** Trust X-Forwarded-* (set only behind a load balancer that overwrites them). */
  proxy: z.boolean(),
  database: z.object({
    url: z.string().regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'must start with sqlite: or postgres://'),
  }),
  secrets: z.object({
    /** base64 of 32 random bytes; seals TOTP seeds, signing keys and cookie keys. */
    sealKey: z.string().nullable(),
    /** Where the development default keeps a generated seal key. */
    sealKeyFile: z.string().nullable(),
  }),
  ttl: z.object({
    interaction: seconds.max(600, 'an interaction lives at most 10 minutes'),
    session: seconds,
    /** A session unused this long ends, even before `session`. */
    sessionIdle: seconds,
    grant: seconds,
    authorizationCode: seconds.max(600),
    accessToken: seconds,
    idToken: seconds,
    refreshToken: seconds,
    challenge: seconds.max(600, 'a challenge lives at most 10 minutes'),
  }),
  passwords: z.object({
    memoryCost: z.number().int().min(8192),
    timeCost: z.number().int().min(1),
    parallelism: z.number().int().min(1),
  }),
  totp: z.object({
    issuer: z.string().min(1),
    algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']),
    digits: z.union([z.literal(6), z.literal(8)]),
    period: z.union([z.literal(30), z.literal(60)]),
    window: z.number().int().min(0).max(2),
  }),
  /** Push approval to linked devices, with number matching. */
  push: z.object({
    numberDigits: z.number().int().min(2).max(6),
    perUser: z.number().int().min(1),
    windowSeconds: seconds,
    pauseAfterDenials: z.number().int().min(1),
    pauseSeconds: seconds,
    /** A push gateway adapter woken (signed POST) when a request waits; null: devices poll and stream. */
    notifier: webhookSchema.nullable(),
  }),
  /** Codes sent by email and SMS. */
  sentCodes: z.object({
    digits: z.number().int().min(6).max(10),
    ttlSeconds: seconds.max(600, 'a sent code lives at most 10 minutes'),
    perUser: z.number().int().min(1),
    perDestination: z.number().int().min(1),
    windowSeconds: seconds,
  }),
  mfa: z.object({
    policy: mfaPolicy,
    /** Under the `required` policy, how often (or until when) a user may skip setting up a second factor. */
    enrollmentGrace: z.object({
      skips: z.number().int().min(0),
      until: z.iso.date().nullable(),
    }),
    /** "Remember this browser" at the second-factor step: for how many days, offered to which clients. */
    rememberBrowser: z.object({
      days: z.number().int().min(0).max(365),
      allowFor: z.enum(['none', 'first-party', 'all']),
    }),
    /** How long a sign-in counts for the mfa and phishing-resistant levels (null: the session's life). */
    freshSeconds: z.object({ mfa: seconds.nullable(), phr: seconds.nullable() }),
    maxAttempts: z.number().int().min(1).max(20),
  }),
  throttle: z.object({
    /** The account's second-factor lock-out (every method and door together). */
    secondFactor: z.object({
      maxFailures: z.number().int().min(1).max(100),
      lockSeconds: seconds,
      maxLockSeconds: seconds,
    }),
    /** Password failures per login id: free tries, then a doubling wait between tries. */
    password: z.object({
      freeFailures: z.number().int().min(1),
      baseDelaySeconds: seconds,
      maxDelaySeconds: seconds,
    }),
    /** Requests per client IP per minute (0 turns a limit off). */
    perIp: z.object({
      signInPerMinute: z.number().int().min(0),
      apiPerMinute: z.number().int().min(0),
    }),
  }),
  delivery: deliverySchema,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  demo: z.object({
    enabled: z.boolean(),
    port: z.number().int().min(0).max(65535),
  }),
  /** Signed callbacks to clients' callback URLs, from the durable outbox. */
  callbacks: z.object({
    /** How often due deliveries are sent (0: no background delivery). */
    pollIntervalSeconds: z.number().int().min(0),
    timeoutSeconds: seconds.max(60),
    maxAttempts: z.number().int().min(1).max(30),
    baseDelaySeconds: seconds,
    maxDelaySeconds: seconds,
    /** Events given up on, in a row, that disable the endpoint. */
    disableAfter: z.number().int().min(1),
  }),
  /** How often expired rows are deleted; 0 turns the sweeper off. */
  sweepIntervalSeconds: z.number().int().min(0),
});

export type Config = z.infer<typeof schema>;

type Env = Record<string, string | undefined>;

/** Environment variables that override a setting, with their parser. */
const ENV_OVERRIDES: Array<[string, string[], (v: string) => unknown]> = [
  ['PORT', ['port'], Number],
  ['ISSUER', ['issuer'], String],
  ['TRUST_PROXY', ['proxy'], (v) => v === 'true' || v === '1'],
  ['DATABASE_URL', ['database', 'url'], String],
  ['SEAL_KEY', ['secrets', 'sealKey'], String],
  ['MFA_POLICY', ['mfa', 'policy'], String],
  ['LOG_LEVEL', ['logLevel'], String],
  ['DEMO', ['demo', 'enabled'], (v) => v === 'true' || v === '1'],
  ['DEMO_PORT', ['demo', 'port'], Number],
];

type Json = { [key: string]: unknown };

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge where `b` wins; arrays and scalars are replaced, not merged. */
export function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function readJson(file: string): Json {
  if (!existsSync(file)) return {};
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isObject(parsed)) throw new Error(`${file}: expected a JSON object`);
  return parsed;
}

function setPath(obj: Json, keys: string[], value: unknown): void {
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (!isObject(next)) cur[k] = {};
    cur = cur[k] as Json;
  }
  cur[keys[keys.length - 1]!] = value;
}

/**
 * Loads and validates the settings.
 * @param overrides applied last (tests use them instead of environment variables)
 * @throws Error naming every invalid key, so a bad deployment fails at start.
 */
export function loadConfig(options: { env?: Env; overrides?: Json } = {}): Config {
  const env = options.env ?? process.env;
  const envName = env.TWOFOLD_ENV ?? (env.NODE_ENV === 'production' ? 'production' : env.NODE_ENV === 'test' ? 'test' : 'development');
  let raw = readJson(path.join(ROOT_DIR, 'config', 'default.json'));
  raw = deepMerge(raw, readJson(path.join(ROOT_DIR, 'config', `${envName}.json`)));
  raw.env = envName;
  for (const [name, keys, parse] of ENV_OVERRIDES) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(raw, keys, parse(v));
  }
  if (options.overrides) raw = deepMerge(raw, options.overrides);

  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${problems}`);
  }
  const config = result.data;
  if (config.env === 'production') {
    if (!config.secrets.sealKey) throw new Error('invalid configuration:\n  secrets.sealKey: SEAL_KEY is required in production');
    if (!config.issuer.startsWith('https://')) throw new Error('invalid configuration:\n  issuer: must be https in production');
  }
  return config;
}
