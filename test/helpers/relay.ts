/**
 * The reverse-proxy plumbing the test balancer and the trusted proxy share:
 * forward one request to a target origin and stream the answer back, and
 * listen on a loopback port.
 */
import type { Agent, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Sends `req` to the same path on `target` with `headers`, and pipes the
 * answer (headers filtered by `answerHeaders`) to `res`; 502 when the target fails.
 */
export function relay(req: IncomingMessage, res: ServerResponse, target: string, options: {
  headers: OutgoingHttpHeaders;
  agent: Agent | false;
  answerHeaders?: (headers: IncomingHttpHeaders) => IncomingHttpHeaders;
  onAnswer?: (status: number) => void;
}): void {
  const upstream = httpRequest(new URL(req.url!, target), { method: req.method, headers: options.headers, agent: options.agent }, (answer) => {
    options.onAnswer?.(answer.statusCode!);
    res.writeHead(answer.statusCode!, answer.statusMessage, options.answerHeaders ? options.answerHeaders(answer.headers) : answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502);
    res.end(String(err));
  });
  req.pipe(upstream);
}

/** Listens on a free loopback port. @returns the origin and a close that also drops open connections. */
export async function listenOnLoopback(server: Server): Promise<{ origin: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
