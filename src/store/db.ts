/**
 * The database: knex over SQLite (embedded default) or PostgreSQL
 * (`postgres://` URL), migrations, transactions and dialect error translation.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrations } from '../../migrations/index.ts';

export type Db = Knex;

// int8 columns (our millisecond timestamps) come back from pg as strings by
// default; every value we store fits a double exactly.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

/** Opens the database named by `url` (`sqlite:<file>`, `sqlite::memory:`, `postgres://…`). */
export function createDb(url: string): Db {
  if (url.startsWith('sqlite:')) {
    const filename = url.slice('sqlite:'.length);
    if (filename !== ':memory:') mkdirSync(path.dirname(path.resolve(filename)), { recursive: true });
    return knexFactory({
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      // One connection: SQLite has a single writer, and an in-memory database
      // exists only on the connection that made it.
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
          conn.run('PRAGMA foreign_keys = ON', (err) => {
            if (err) return done(err, conn);
            // WAL with synchronous NORMAL: no fsync per commit (only at checkpoints).
            // The database cannot be corrupted by a crash; a power loss may lose
            // the last commits, never a half-written one.
            conn.run('PRAGMA journal_mode = WAL', () => conn.run('PRAGMA synchronous = NORMAL', () => conn.run('PRAGMA busy_timeout = 5000', (e) => done(e, conn))));
          });
        },
      },
    });
  }
  return knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 10 } });
}

export function isSqlite(db: Db): boolean {
  return db.client.config.client === 'sqlite3';
}

const migrationSource: Knex.MigrationSource<(typeof migrations)[number]> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};

/** Applies every pending migration. */
export async function migrateLatest(db: Db): Promise<void> {
  // A newer release's migrations may already be applied (rolling upgrade): not an error.
  await db.migrate.latest({ migrationSource, disableMigrationsListValidation: true });
}

/**
 * True when every migration this release knows has been applied. Migrations
 * this release does not know (a newer release ran its own) do not count:
 * migrations are forward-only and additive, so a node of the previous release
 * keeps serving during a rolling upgrade.
 */
export async function migrationsCurrent(db: Db): Promise<boolean> {
  if (!(await db.schema.hasTable('knex_migrations'))) return migrations.length === 0;
  const applied = new Set((await db('knex_migrations').select('name')).map((r: { name: string }) => r.name));
  return migrations.every((m) => applied.has(m.name));
}

/** True when the error is a unique-constraint violation, on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT' && /UNIQUE|PRIMARY KEY/.test(e.message ?? '');
}

/** Parses a JSON text column. */
export function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}
