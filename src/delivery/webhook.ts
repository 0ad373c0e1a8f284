/**
 * Webhook transport: a JSON POST signed per Standard Webhooks
 * (https://www.standardwebhooks.com/): `webhook-id`, `webhook-timestamp`
 * (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<body>">`, keyed by the bytes behind `whsec_<base64>`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { webhookKey } from './config.ts';

/**
 * The `webhook-signature` value for one delivery.
 * @throws Error when `secret` is not `whsec_<base64>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = webhookKey(secret);
  if (!key || key.length === 0) throw new Error('webhook secret must be whsec_ followed by base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface WebhookPayload {
  type: 'sms' | 'email';
  template: string;
  to: string;
  subject?: string;
  text: string;
}

export interface WebhookTarget {
  url: string;
  secret: string;
}

/**
 * POSTs `payload` (plus `id` and `createdAt`) to `target`, signed.
 * @throws Error on a network error, a timeout or an answer other than 2xx
 *   (redirects are not followed: the signed body goes only where configured).
 */
export async function postWebhook(
  target: WebhookTarget, payload: WebhookPayload,
  options: { fetch: typeof fetch; now: number; timeoutMs: number },
): Promise<void> {
  const id = `msg_${randomUUID()}`;
  const timestamp = Math.floor(options.now / 1000);
  const body = JSON.stringify({ id, ...payload, createdAt: new Date(options.now).toISOString() });
  const res = await options.fetch(target.url, {
    method: 'POST',
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs),
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(target.secret, id, timestamp, body),
    },
    body,
  });
  // The answer's body is not ours to read (it may echo the request); free the connection.
  await res.body?.cancel().catch(() => undefined);
  if (res.status < 200 || res.status > 299) throw new Error(`webhook answered ${res.status}`);
}
