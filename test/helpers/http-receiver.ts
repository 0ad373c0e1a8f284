/**
 * A real HTTP server on a loopback port that keeps every request it gets,
 * for tests of webhooks. Its answer can be changed: a status (500 for a
 * gateway that fails) or no answer at all (a gateway that hangs).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as sent (signatures are over these bytes). */
  body: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** The status for the next requests (204 at first), or 'hang' to never answer. */
  answer: number | 'hang';
  /** The next request not yet returned by next(); waits up to `timeoutMs`. */
  next(timeoutMs?: number): Promise<ReceivedRequest>;
  stop(): Promise<void>;
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const hanging: ServerResponse[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      wake?.();
      if (receiver.answer === 'hang') hanging.push(res);
      else res.writeHead(receiver.answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const receiver: HttpReceiver = {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    answer: 204,
    async next(timeoutMs = 5000) {
      if (taken >= requests.length) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no request within ${timeoutMs} ms`)), timeoutMs);
          wake = () => { clearTimeout(timer); wake = undefined; resolve(); };
        });
      }
      return requests[taken++]!;
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
