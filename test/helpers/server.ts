/**
 * A real Twofold on a loopback port: its own database (in-memory SQLite, or
 * TEST_DATABASE_URL), its own keys, and a clock the test moves.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig, type Config } from '../../src/config.ts';
import { createDb, isSqlite, migrateLatest, type Db } from '../../src/store/db.ts';
import { manualClock } from '../../src/lib/clock.ts';
import { createApp, type App } from '../../src/app.ts';
import { logFunction, type Logger } from '../../src/lib/log.ts';

export const TEST_SEAL_KEY = Buffer.from('twofold-test-seal-key-32-bytes!!');

export interface TestServer {
  origin: string;
  config: Config;
  db: Db;
  clock: ReturnType<typeof manualClock>;
  app: App;
  /** What the app logged as server errors; tests assert it stays empty. */
  errors: unknown[];
  close(): Promise<void>;
}

type Overrides = Record<string, unknown>;

/** Empties every table but knex's own (for a shared PostgreSQL test database). */
export async function resetDatabase(db: Db): Promise<void> {
  const rows: Array<{ name: string }> = isSqlite(db)
    ? await db.raw("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
    : (await db.raw('select tablename as name from pg_tables where schemaname = current_schema()')).rows;
  const tables = rows.map((r) => r.name).filter((n) => !n.startsWith('knex_'));
  if (tables.length === 0) return;
  if (isSqlite(db)) {
    for (const table of tables) await db(table).del();
  } else {
    await db.raw(`truncate ${tables.map((t) => `"${t}"`).join(', ')} cascade`);
  }
}

export interface StartOptions {
  overrides?: Overrides;
  /** A database the caller migrated and will close (shared by several nodes). */
  db?: Db;
  /** A clock shared with other servers; a fresh manual clock when absent. */
  clock?: ReturnType<typeof manualClock>;
  /** The seal key; TEST_SEAL_KEY when absent. */
  sealKey?: Buffer;
  /** A pino logger: the app logs requests to it, and server errors too (they still land in `errors`). */
  logger?: Logger;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig({
    env: { TWOFOLD_ENV: 'test' },
    overrides: { issuer: origin, ...(process.env.TEST_DATABASE_URL ? { database: { url: process.env.TEST_DATABASE_URL } } : {}), ...options.overrides },
  });
  const ownsDb = !options.db;
  const db = options.db ?? createDb(config.database.url);
  if (ownsDb) {
    await migrateLatest(db);
    if (!config.database.url.startsWith('sqlite:')) await resetDatabase(db);
  }
  const clock = options.clock ?? manualClock(Date.now());
  const errors: unknown[] = [];
  const logError = options.logger ? logFunction(options.logger) : undefined;
  const app = await createApp({
    config, db, clock, sealKey: options.sealKey ?? TEST_SEAL_KEY,
    log: (msg, err) => {
      errors.push({ msg, err });
      logError?.(msg, err);
    },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  server.on('request', app.provider.callback());
  return {
    origin, config, db, clock, app, errors,
    async close() {
      app.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsDb) await db.destroy();
    },
  };
}
