/**
 * A client of the device API (protocol v1), as an authenticator app would
 * write it: a P-256 key made on the device, every request signed with it.
 * Used by the reference CLI and by the tests, so both speak the protocol
 * through the same code.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { randomToken } from '../lib/random.ts';
import { signRequestHeaders } from '../push/device-auth.ts';
import type { PushRequestView } from '../push/requests.ts';

/** An error answer of the device API. */
export class DeviceApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'DeviceApiError';
  }
}

export interface DeviceKey {
  privateKey: KeyObject;
  /** The public half as sent to the server: {kty, crv, x, y} only. */
  publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
}

/** A new ECDSA P-256 key pair. */
export function generateDeviceKey(): DeviceKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return keyFromPrivateJwk(privateKey.export({ format: 'jwk' }));
}

export function keyFromPrivateJwk(jwk: JsonWebKey): DeviceKey {
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  const pub = createPublicKey(privateKey).export({ format: 'jwk' });
  return { privateKey, publicJwk: { kty: 'EC', crv: 'P-256', x: pub.x!, y: pub.y! } };
}

/** What may be changed in a request before it is sent (tests use it to attack the server). */
export interface RequestTweaks {
  nowMs?: number;
  nonce?: string;
  /** Replaces the headers after signing. */
  headers?: Record<string, string>;
}

export interface PreparedRequest {
  url: string;
  init: RequestInit & { headers: Record<string, string> };
}

export class DeviceClient {
  constructor(
    readonly issuer: string,
    readonly key: DeviceKey,
    public deviceId?: string,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A signed request, ready for fetch. */
  prepare(method: string, apiPath: string, body?: unknown, tweaks: RequestTweaks = {}): PreparedRequest {
    const url = new URL(`${this.issuer.replace(/\/$/, '')}/device/v1${apiPath}`);
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...signRequestHeaders({
        privateKey: this.key.privateKey, method, pathWithQuery: url.pathname + url.search, body: text,
        nowMs: tweaks.nowMs ?? this.now(), nonce: tweaks.nonce ?? randomToken(18),
        ...(this.deviceId ? { deviceId: this.deviceId } : {}),
      }),
      ...tweaks.headers,
    };
    return { url: url.href, init: { method, headers, ...(body === undefined ? {} : { body: text }) } };
  }

  /** Sends a signed request. @returns the JSON answer (undefined for 204). @throws DeviceApiError on an error answer */
  async call<T>(method: string, apiPath: string, body?: unknown, tweaks?: RequestTweaks): Promise<T> {
    const { url, init } = this.prepare(method, apiPath, body, tweaks);
    const res = await fetch(url, init);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new DeviceApiError(res.status, 'invalid_response', `the server answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) {
      const e = (json ?? {}) as { error?: string; message?: string };
      throw new DeviceApiError(res.status, e.error ?? 'unknown', e.message ?? `the server answered ${res.status}`);
    }
    return json as T;
  }

  /** Links this key to the account the code was made for; remembers the device id. */
  async link(code: string, name: string): Promise<{ deviceId: string; name: string; account: string; issuer: string }> {
    const linked = await this.call<{ deviceId: string; name: string; account: string; issuer: string }>('POST', '/link', { code, name, publicKeyJwk: this.key.publicJwk });
    this.deviceId = linked.deviceId;
    return linked;
  }

  async requests(): Promise<PushRequestView[]> {
    return (await this.call<{ requests: PushRequestView[] }>('GET', '/requests')).requests;
  }

  async answer(ref: string, answer: { decision: 'approve' | 'deny'; number?: string; localCheck?: 'pin' | 'biometric' | null }): Promise<'approved' | 'denied'> {
    return (await this.call<{ state: 'approved' | 'denied' }>('POST', `/requests/${encodeURIComponent(ref)}/answer`, answer)).state;
  }

  async me(): Promise<{ deviceId: string; name: string; linkedAt: number }> {
    return this.call('GET', '/me');
  }

  async unlink(): Promise<void> {
    await this.call('DELETE', '/me');
  }

  /**
   * The server-sent event stream of pending requests: yields each
   * `requests` event's list until the server ends the stream or `signal` aborts.
   * @throws DeviceApiError when the server refuses the stream
   */
  async *stream(signal?: AbortSignal): AsyncGenerator<PushRequestView[]> {
    const { url, init } = this.prepare('GET', '/requests/stream');
    init.headers.accept = 'text/event-stream';
    const res = await fetch(url, { ...init, ...(signal ? { signal } : {}) });
    if (!res.ok || !res.body) {
      const e = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
      throw new DeviceApiError(res.status, e.error ?? 'unknown', e.message ?? `the server answered ${res.status}`);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (event?.event === 'requests') yield (JSON.parse(event.data) as { requests: PushRequestView[] }).requests;
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }
}

/** One SSE block: its event name and joined data lines (comments and other fields ignored). */
function parseEvent(block: string): { event: string; data: string } | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : undefined;
}
