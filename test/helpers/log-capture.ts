/**
 * A pino logger whose JSON lines stay in memory, and a search for secrets in
 * them that looks past JSON and URL encoding.
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/lib/log.ts';

export interface CapturedLogs {
  logger: Logger;
  text(): string;
  lines(): Array<Record<string, unknown>>;
}

/** Every line the logger writes, at `level` (debug unless told). */
export function captureLogs(level: 'debug' | 'trace' | 'info' = 'debug'): CapturedLogs {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level, destination });
  const text = () => chunks.join('');
  return { logger, text, lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function stringsIn(value: unknown, out: string[]): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) { out.push(k); stringsIn(v, out); }
  return out;
}

function urlDecoded(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * The names of the secrets that occur in the logs: in the raw text, in any
 * decoded JSON string (a `"` in a password is `\"` in the text) or in its
 * URL-decoded form (a query string or form body). Short secrets (one-time
 * codes) count only as a whole token, not inside a longer run of letters and
 * digits such as a request id.
 */
export function leakedSecrets(text: string, secrets: Record<string, string>): string[] {
  const lines = text.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return l;
    }
  });
  const strings = stringsIn(lines, []);
  const haystacks = [text, ...strings, ...strings.map(urlDecoded)];
  return Object.entries(secrets).filter(([, secret]) => {
    if (secret.length < 12) {
      const token = new RegExp(`(?<![A-Za-z0-9])${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`);
      return haystacks.some((h) => token.test(h));
    }
    return haystacks.some((h) => h.includes(secret));
  }).map(([name]) => name);
}
