/**
 * The device API (protocol v1, docs/device-protocol.md): what a linked
 * authenticator app calls. No cookies and no CSRF: every call is signed with
 * the device's key (src/push/device-auth.ts), the link call with the key it
 * links. The body is read here as raw bytes, because the signature covers
 * their digest. Errors are always JSON `{ error, message, details? }`, and
 * every authentication failure is the same 401.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { IncomingSigned } from '../../push/device-auth.ts';
import type { Devices } from '../../push/devices.ts';
import type { PushRequests, PushRequestView } from '../../push/requests.ts';
import type { Device } from '../../store/devices.ts';

export interface DeviceRouterDeps {
  devices: Devices;
  /** The challenge side; without it a device sees no requests and can answer none. */
  requests?: PushRequests;
  log?: (msg: string, err?: unknown) => void;
  /** Comment lines that keep a stream open through proxies; 15 s by default. */
  heartbeatMs?: number;
  /** A stream ends after this long (the device reconnects with a new signature); 1 hour by default. */
  maxStreamMs?: number;
  /** Request bodies above this many bytes are refused; 16 KiB by default. */
  bodyLimit?: number;
}

const AnswerBody = z.object({
  decision: z.enum(['approve', 'deny']),
  number: z.string().regex(/^[0-9]{1,12}$/).optional(),
  localCheck: z.enum(['pin', 'biometric']).nullable().optional(),
});
const REF = /^[A-Za-z0-9_-]{1,128}$/;

/** Reads the raw body (up to `limit` bytes). @throws AppError request.too_large */
async function readRaw(ctx: Context, limit: number): Promise<Buffer> {
  if (Number(ctx.get('content-length') || 0) > limit) throw new AppError('request.too_large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new AppError('request.too_large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The JSON object in a raw body ({} when empty). @throws AppError request.invalid */
function jsonObject(ctx: Context, raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  if (!ctx.is('application/json')) throw new AppError('request.invalid', { details: { reason: 'send JSON (Content-Type: application/json)' } });
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AppError('request.invalid', { details: { reason: 'the body is not valid JSON' } });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AppError('request.invalid', { details: { reason: 'the body must be a JSON object' } });
  return value as Record<string, unknown>;
}

const signedRequest = (ctx: Context, body: Buffer): IncomingSigned => ({
  method: ctx.method, pathWithQuery: ctx.originalUrl, headers: ctx.headers, body,
});

export function deviceRouter(deps: DeviceRouterDeps): Router {
  const { devices, requests } = deps;
  const log = deps.log ?? ((msg: string, err?: unknown) => console.error(msg, err ?? ''));
  const limit = deps.bodyLimit ?? 16_384;
  const router = new Router({ prefix: '/device/v1' });

  router.use(async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (err) {
      const known = err instanceof AppError ? err : undefined;
      if (!known || known.status >= 500) log(`${ctx.method} ${ctx.path} failed`, err);
      const e = known && known.status < 500 ? known : new AppError('server.error');
      if (ctx.headerSent) return;
      ctx.status = e.status;
      ctx.body = { error: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
    }
  });

  /** Authenticates the device; the handler gets it and the parsed body. */
  const signed = (handler: (ctx: Context, device: Device, body: Record<string, unknown>) => Promise<void>) => async (ctx: Context) => {
    const raw = await readRaw(ctx, limit);
    const device = await devices.authenticate(signedRequest(ctx, raw));
    await handler(ctx, device, jsonObject(ctx, raw));
  };

  const pending = async (userId: string): Promise<PushRequestView[]> => (requests ? requests.pendingFor(userId) : []);

  router.post('/link', async (ctx) => {
    const raw = await readRaw(ctx, limit);
    const body = jsonObject(ctx, raw);
    const { device, account } = await devices.link({ code: body.code, name: body.name, publicKeyJwk: body.publicKeyJwk, request: signedRequest(ctx, raw) });
    ctx.status = 201;
    ctx.body = { deviceId: device.id, name: device.name, account, issuer: devices.issuer };
  });

  router.get('/me', signed(async (ctx, device) => {
    ctx.body = { deviceId: device.id, name: device.name, linkedAt: device.createdAt };
  }));

  router.delete('/me', signed(async (ctx, device) => {
    await devices.unlink(device.userId, device.id, 'device');
    ctx.status = 204;
  }));

  router.get('/requests', signed(async (ctx, device) => {
    ctx.body = { requests: await pending(device.userId) };
  }));

  router.post('/requests/:ref/answer', signed(async (ctx, device, body) => {
    const ref = ctx.params.ref ?? '';
    const parsed = AnswerBody.safeParse(body);
    if (!REF.test(ref) || !parsed.success) throw new AppError('request.invalid', { details: { reason: 'decision must be approve or deny; number digits; localCheck pin, biometric or null' } });
    if (!requests) throw new AppError('request.not_found');
    const state = await requests.answer({ ref, deviceId: device.id, userId: device.userId, answer: parsed.data });
    ctx.body = { ref, state };
  }));

  router.get('/requests/stream', signed(async (ctx, device) => {
    const res = ctx.res;
    let closed = false;
    let running = false;
    let again = false;
    const write = (text: string) => { if (!closed) res.write(text); };

    /** Sends the pending list; changes that arrive while sending are coalesced into one more send. */
    async function sendRequests(): Promise<void> {
      if (running) { again = true; return; }
      running = true;
      try {
        do {
          again = false;
          const list = await pending(device.userId);
          write(`event: requests\ndata: ${JSON.stringify({ requests: list })}\n\n`);
        } while (again && !closed);
      } catch (err) {
        log('device stream: listing requests failed', err);
        close();
      } finally {
        running = false;
      }
    }

    const unsubscribe = requests ? requests.subscribe(device.userId, () => { void sendRequests(); }) : () => {};
    const heartbeat = setInterval(() => {
      write(': keep-alive\n\n');
      // An unlinked device must stop hearing about requests at once, not at the next reconnect.
      devices.isActive(device.id).then((active) => { if (!active) close(); }, (err: unknown) => { log('device stream: status check failed', err); close(); });
    }, deps.heartbeatMs ?? 15_000);
    const expiry = setTimeout(() => close(), deps.maxStreamMs ?? 3_600_000);
    heartbeat.unref();
    expiry.unref();

    function close(): void {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(heartbeat);
      clearTimeout(expiry);
      res.end();
    }
    res.on('close', close);

    // Written straight to the socket (not as a Koa stream body): a device
    // going away is the normal end of a stream, not an error to report.
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('X-Accel-Buffering', 'no');
    ctx.respond = false;
    res.flushHeaders();
    write('retry: 5000\n\n');
    await sendRequests();
  }));

  return router;
}
