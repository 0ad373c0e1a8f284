/**
 * Wakes linked devices when a push request is waiting: a signed JSON POST
 * (Standard Webhooks) to a push gateway adapter the deployer runs (APNs,
 * FCM, or anything else). It carries the request's public reference and the
 * device ids, never the number to match or the request's text: the device
 * fetches those itself with a signed call. A failed notice is logged and
 * otherwise ignored, since devices also poll and stream.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.ts';
import { signWebhook } from '../delivery/webhook.ts';

export interface NotifierTarget {
  url: string;
  secret: string;
}

export type PushNotifier = (input: { userId: string; ref: string; deviceIds: string[] }) => Promise<void>;

export function createPushNotifier(deps: { target: NotifierTarget; clock: Clock; fetch?: typeof fetch; timeoutMs?: number; log: (msg: string, err?: unknown) => void }): PushNotifier {
  const fetchFn = deps.fetch ?? fetch;
  return async ({ ref, deviceIds }) => {
    if (deviceIds.length === 0) return;
    const id = `msg_${randomUUID()}`;
    const now = deps.clock.now();
    const body = JSON.stringify({ type: 'push.request', ref, devices: deviceIds, createdAt: new Date(now).toISOString() });
    try {
      const res = await fetchFn(deps.target.url, {
        method: 'POST', redirect: 'manual', signal: AbortSignal.timeout(deps.timeoutMs ?? 5000),
        headers: {
          'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now / 1000)),
          'webhook-signature': signWebhook(deps.target.secret, id, Math.floor(now / 1000), body),
        },
        body,
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 200 || res.status > 299) throw new Error(`push notifier answered ${res.status}`);
    } catch (err) {
      deps.log('push notifier failed (devices still poll and stream)', err);
    }
  };
}
