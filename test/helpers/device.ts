/**
 * Devices for tests: a TestDevice speaks the device protocol through the
 * reference authenticator's own client (same key handling, same signing), on
 * the test's clock, and can send raw or tampered requests. An honest
 * in-memory PushRequests stands in for the challenge side where a test needs
 * pending requests without a sign-in.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { DeviceClient, generateDeviceKey, type RequestTweaks } from '../../src/authenticator/client.ts';
import { AppError } from '../../src/errors.ts';
import type { PushAnswer, PushRequests, PushRequestView } from '../../src/push/requests.ts';
import type { Clock } from '../../src/lib/clock.ts';

export class TestDevice extends DeviceClient {
  constructor(issuer: string, clock: Clock, deviceId?: string) {
    super(issuer, generateDeviceKey(), deviceId, () => clock.now());
  }

  /** Sends a signed request as is, or tweaked, and returns the raw answer. */
  async raw(method: string, apiPath: string, body?: unknown, tweaks?: RequestTweaks): Promise<{ status: number; json: unknown }> {
    const { url, init } = this.prepare(method, apiPath, body, tweaks);
    return send(url, init);
  }
}

export async function send(url: string, init: RequestInit): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) as unknown : undefined };
}

/** The code shown on the "Link a device" page. */
export function linkingCodeOf(html: string): string {
  const code = /<code class="secret link-code">([0-9A-Z-]+)<\/code>/.exec(html)?.[1];
  if (!code) throw new Error(`no linking code on the page:\n${html.slice(0, 1500)}`);
  return code;
}

interface Held { view: PushRequestView; userId: string; state: 'pending' | 'approved' | 'denied'; number: string; answeredBy?: string; answer?: PushAnswer }

/** PushRequests kept in memory, with the contract's checks (number, local check, owner, state). */
export function memoryPushRequests(clock: Clock) {
  const held = new Map<string, Held>();
  const listeners = new Map<string, Set<() => void>>();
  const changed = (userId: string) => listeners.get(userId)?.forEach((fn) => fn());

  const requests: PushRequests = {
    async pendingFor(userId) {
      return [...held.values()].filter((h) => h.userId === userId && h.state === 'pending' && h.view.expiresAt > clock.now())
        .map((h) => h.view).sort((a, b) => b.createdAt - a.createdAt);
    },
    async answer({ ref, deviceId, userId, answer }) {
      const h = held.get(ref);
      if (!h || h.userId !== userId || h.state !== 'pending' || h.view.expiresAt <= clock.now()) throw new AppError('request.not_found');
      if (answer.decision === 'approve') {
        if (!answer.number) throw new AppError('request.invalid', { details: { field: 'number' } });
        if (h.view.kind !== 'simple' && answer.localCheck !== h.view.kind) throw new AppError('request.invalid', { details: { field: 'localCheck' } });
      }
      // As the challenge side does: a wrong number denies the request.
      h.state = answer.decision === 'approve' && answer.number === h.number ? 'approved' : 'denied';
      h.answeredBy = deviceId;
      h.answer = answer;
      changed(userId);
      return h.state;
    },
    subscribe(userId, onChange) {
      const set = listeners.get(userId) ?? new Set();
      listeners.set(userId, set);
      set.add(onChange);
      return () => { set.delete(onChange); };
    },
  };

  let counter = 0;
  return {
    requests,
    held,
    subscribers: (userId: string) => listeners.get(userId)?.size ?? 0,
    /** A new pending request for the user. */
    add(userId: string, options: { kind?: PushRequestView['kind']; number?: string; details?: Record<string, string> } = {}): PushRequestView {
      counter += 1;
      const now = clock.now();
      const view: PushRequestView = {
        ref: `ref-${counter}`, header: 'Sign in to Test app', text: 'Someone is signing in to Test app with your account.',
        details: options.details ?? {}, kind: options.kind ?? 'simple', clientName: 'Test app', numberLength: 2,
        createdAt: now, expiresAt: now + 120_000,
      };
      held.set(view.ref, { view, userId, state: 'pending', number: options.number ?? '42' });
      changed(userId);
      return view;
    },
  };
}

/** A Koa app on a loopback port; `build` gets the origin first (it is the issuer). */
export async function listen(build: (origin: string) => Koa | Promise<Koa>): Promise<{ origin: string; server: Server; close(): Promise<void> }> {
  let handle: ReturnType<Koa['callback']> | undefined;
  const server = createServer((req, res) => handle!(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handle = (await build(origin)).callback();
  return {
    origin, server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
