/**
 * Challenge outcomes POSTed to a client's callback URL, from a durable
 * outbox (`callback_outbox`), signed per Standard Webhooks (see webhook.ts).
 *
 * - `enqueue` writes the event in the caller's transaction: the event exists
 *   if and only if the outcome was committed.
 * - `runOnce` delivers what is due. Each row is claimed with a guarded
 *   update, so two nodes never send the same attempt. A failed attempt is
 *   retried with exponential backoff and jitter; after `maxAttempts` the
 *   event is given up and counts as a failure of the client's endpoint,
 *   and `disableAfter` consecutive failures disable the endpoint until an
 *   administrator re-enables it.
 * - The body carries the app's `state`, the public `challengeRef`, the user
 *   and the method: never the twoFactorId, a code or a secret.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Db } from '../store/db.ts';
import type { Clock } from '../lib/clock.ts';
import type { Sealer } from '../lib/seal.ts';
import type { ClientsStore } from '../store/clients.ts';
import { createCallbackOutboxStore } from '../store/callback-outbox.ts';
import type { OutboxRow } from '../store/callback-outbox.ts';
import { checkUrl, guardedLookup, UnsafeUrlError, type ResolveAll, type UrlPolicy } from '../lib/network.ts';
import { signWebhook } from './webhook.ts';

export const CALLBACK_EVENT_TYPES = [
  'challenge.approved', 'challenge.denied', 'challenge.expired', 'challenge.succeeded', 'challenge.failed',
] as const;
export type CallbackEventType = (typeof CALLBACK_EVENT_TYPES)[number];

export interface CallbackEventData {
  /** The challenge's public reference: never the twoFactorId. */
  challengeRef: string;
  userId: string;
  /** The app's own state, echoed back as it gave it. */
  state?: unknown;
  method?: string;
}

export interface CallbackEvent {
  clientId: string;
  type: CallbackEventType;
  data: CallbackEventData;
}

/** The sealing context of a client's callback secret (another row's sealed secret does not open). */
export const callbackSecretContext = (clientId: string) => `client-callback:${clientId}`;

/** A new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newCallbackSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Sends one signed POST. @returns the answer's status. @throws on a network error or timeout. */
export type CallbackPost = (req: { url: URL; headers: Record<string, string>; body: string; timeoutMs: number; policy: UrlPolicy }) => Promise<number>;

export interface CallbacksDeps {
  db: Db;
  clock: Clock;
  clients: ClientsStore;
  sealer: Sealer;
  /** Unexpected errors only; a failed delivery is recorded on its row, not logged. */
  log(msg: string, err?: unknown): void;
  /** Non-production: http and loopback addresses for localhost, 127.0.0.1, [::1]. */
  allowLoopbackHttp: boolean;
  /** DNS for the address checks; node:dns when absent. */
  resolve?: ResolveAll;
  /** Attempts per event before it is given up (default 8). */
  maxAttempts?: number;
  /** First retry after about 2 × this (default 2 s), doubling per attempt. */
  baseDelayMs?: number;
  /** Longest wait between attempts (default 1 h). */
  maxDelayMs?: number;
  /** Consecutive given-up events that disable the endpoint (default 3). */
  disableAfter?: number;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** Rows per run (default 20), delivered concurrently. */
  batchSize?: number;
  /** [0, 1); Math.random when absent. */
  random?: () => number;
  /** The HTTP client; node:http(s) with a checked DNS lookup when absent. */
  post?: CallbackPost;
  /** Called in the transaction that disabled the endpoint (record the audit event here). */
  onDisabled?(clientId: string, trx: Db): Promise<void> | void;
}

export type Callbacks = ReturnType<typeof createCallbacks>;

/** Some slack past the timeout before another node may retry a claimed row. */
const LEASE_MARGIN_MS = 30_000;

/**
 * The default transport: node:http(s), no redirects, no connection reuse,
 * and a DNS lookup that checks every address before the socket connects,
 * so the address connected to is one that was checked (no rebinding gap
 * between check and connect). IP-literal hosts are checked by checkUrl.
 */
const nodePost: CallbackPost = ({ url, headers, body, timeoutMs, policy }) => new Promise((resolve, reject) => {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = request(url, {
    method: 'POST',
    agent: false,
    lookup: guardedLookup(policy),
    signal: AbortSignal.timeout(timeoutMs),
    headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
  }, (res) => {
    // The answer's body is not ours to read (it may echo the request).
    res.resume();
    resolve(res.statusCode ?? 0);
  });
  req.on('error', reject);
  req.end(body);
});

/** A short reason for `last_error`: an error code or our own message, never a secret or an address. */
function describe(err: unknown): string {
  if (err instanceof UnsafeUrlError) return err.message;
  const e = err as { name?: string; code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.code ?? e?.name ?? 'error';
}

export function createCallbacks(deps: CallbacksDeps) {
  const { db, clock, clients, sealer, log } = deps;
  const outbox = createCallbackOutboxStore(db, clock);
  const maxAttempts = deps.maxAttempts ?? 8;
  const baseDelayMs = deps.baseDelayMs ?? 2_000;
  const maxDelayMs = deps.maxDelayMs ?? 3_600_000;
  const disableAfter = deps.disableAfter ?? 3;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const batchSize = deps.batchSize ?? 20;
  const random = deps.random ?? Math.random;
  const post = deps.post ?? nodePost;
  const policy: UrlPolicy = { allowLoopbackHttp: deps.allowLoopbackHttp, ...(deps.resolve ? { resolve: deps.resolve } : {}) };

  /** The wait before attempt `attempts + 1`: min(max, base·2^attempts), jittered to 50–100 %. */
  const backoff = (attempts: number) => Math.round(Math.min(maxDelayMs, baseDelayMs * 2 ** attempts) * (0.5 + random() * 0.5));

  /** One attempt of a claimed row. @returns true when delivered. */
  async function attempt(row: OutboxRow): Promise<boolean> {
    const client = await clients.find(row.clientId);
    if (!client?.callbackUrl || !client.callbackSecretSealed || client.callbackDisabledAt !== null) {
      // Removed or disabled since: the row is dropped, not counted against the endpoint.
      await outbox.markFailed(row.id, { attempts: row.attempts, nextAttemptAt: null, error: 'callback removed or disabled' });
      return false;
    }
    const attempts = row.attempts + 1;
    let error: string | undefined;
    try {
      // Checked again at every delivery: the policy may have changed, and
      // the host's addresses are checked again as the socket connects.
      const url = checkUrl(client.callbackUrl, policy);
      const secret = sealer.openString(client.callbackSecretSealed, callbackSecretContext(client.clientId));
      const timestamp = Math.floor(clock.now() / 1000);
      const status = await post({
        url, body: row.payload, timeoutMs, policy,
        headers: {
          'content-type': 'application/json',
          'webhook-id': row.eventId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secret, row.eventId, timestamp, row.payload),
        },
      });
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      error = describe(err);
    }
    if (error === undefined) {
      await db.transaction(async (trx) => {
        await outbox.markDelivered(row.id, attempts, trx);
        await clients.resetCallbackFailures(row.clientId, trx);
      });
      return true;
    }
    if (attempts < maxAttempts) {
      await outbox.markFailed(row.id, { attempts, nextAttemptAt: clock.now() + backoff(attempts), error });
      return false;
    }
    await db.transaction(async (trx) => {
      await outbox.markFailed(row.id, { attempts, nextAttemptAt: null, error: `gave up: ${error}` }, trx);
      if ((await clients.recordCallbackFailure(row.clientId, disableAfter, trx)) === 'disabled') await deps.onDisabled?.(row.clientId, trx);
    });
    return false;
  }

  async function runOnce(): Promise<number> {
    const rows = await outbox.due(clock.now(), batchSize);
    const delivered = await Promise.all(rows.map(async (row) => {
      try {
        if (!(await outbox.claim(row, clock.now() + timeoutMs + LEASE_MARGIN_MS))) return false;
        return await attempt(row);
      } catch (err) {
        log('callback delivery failed unexpectedly', err);
        return false;
      }
    }));
    return delivered.filter(Boolean).length;
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  return {
    /**
     * Queues `event` inside `trx`, the transaction that commits the outcome.
     * Only the listed data fields are sent, whatever else the caller passes.
     * @returns the event's webhook-id, or null when the client has no active callback.
     * @throws Error for an unknown event type (a programming error).
     */
    async enqueue(trx: Db, event: CallbackEvent): Promise<string | null> {
      if (!CALLBACK_EVENT_TYPES.includes(event.type)) throw new Error(`unknown callback event type ${String(event.type)}`);
      const client = await clients.find(event.clientId, trx);
      if (!client?.callbackUrl || client.callbackDisabledAt !== null) return null;
      const { challengeRef, userId, state, method } = event.data;
      const data = { challengeRef, userId, ...(method !== undefined ? { method } : {}), ...(state !== undefined ? { state } : {}) };
      const eventId = `msg_${randomUUID()}`;
      const payload = JSON.stringify({ type: event.type, timestamp: new Date(clock.now()).toISOString(), data });
      await outbox.insert({ clientId: event.clientId, eventId, type: event.type, payload }, trx);
      return eventId;
    },

    /**
     * Delivers every event due now (up to `batchSize`), one attempt each.
     * @returns how many were delivered.
     */
    runOnce,

    /** Runs `runOnce` every `intervalMs` (never two at once); the timer does not keep the process alive. */
    start(intervalMs: number): void {
      if (timer) return;
      timer = setInterval(() => {
        if (running) return;
        running = runOnce().catch((err: unknown) => log('callback delivery run failed', err)).finally(() => { running = undefined; });
      }, intervalMs);
      timer.unref();
    },

    /** Stops the timer and waits for a run in progress. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },

    outbox,
  };
}
