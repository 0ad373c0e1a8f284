/**
 * The network around a node, for attacks on per-IP limits: requests sent
 * from a chosen loopback address (Linux routes all of 127.0.0.0/8 to lo, so
 * 127.0.0.2 is a second client), and a trusted reverse proxy that appends
 * the address it sees to X-Forwarded-For, as nginx's
 * `$proxy_add_x_forwarded_for` does.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { listenOnLoopback, relay } from './relay.ts';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request whose TCP connection starts from `localAddress`. */
export function sendFrom(localAddress: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export interface TrustedProxy {
  origin: string;
  /** The X-Forwarded-For values the node received, in order. */
  forwarded: string[];
  close(): Promise<void>;
}

/** A reverse proxy to `target` that appends the client's socket address to X-Forwarded-For. */
export async function startTrustedProxy(target: string): Promise<TrustedProxy> {
  const forwarded: string[] = [];
  const server: Server = createServer((req, res) => {
    const seen = req.socket.remoteAddress!;
    const prior = req.headers['x-forwarded-for'];
    const xff = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${seen}` : seen;
    forwarded.push(xff);
    relay(req, res, target, { headers: { ...req.headers, 'x-forwarded-for': xff, connection: 'close' }, agent: false });
  });
  const { origin, close } = await listenOnLoopback(server);
  return { origin, forwarded, close };
}
