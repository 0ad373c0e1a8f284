/**
 * Process entry: config -> database (+ migrations) -> app -> listen.
 * SIGTERM/SIGINT stop accepting, let in-flight requests finish, close the database.
 */
import type { Server } from 'node:http';
import { loadConfig } from './config.ts';
import { createDb, migrateLatest } from './store/db.ts';
import { systemClock } from './lib/clock.ts';
import { loadSealKey } from './lib/seal-key.ts';
import { createApp } from './app.ts';
import { seedDemo } from './seed.ts';
import { startDemoRp } from './demo/rp.ts';
import { createLogger, logFunction } from './lib/log.ts';
import { createMetrics } from './metrics.ts';

function listen(app: { listen(port: number, cb: () => void): Server }, port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = app.listen(port, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const db = createDb(config.database.url);
  await migrateLatest(db);
  const logger = createLogger({ level: config.logLevel });
  let stopping = false;
  const app = await createApp({
    config, db, clock: systemClock, sealKey: loadSealKey(config),
    log: logFunction(logger), logger, metrics: createMetrics(), stopping: () => stopping,
  });
  const servers: Server[] = [await listen(app.provider, config.port)];
  console.log(`Twofold ${config.env} listening on ${config.issuer} (database ${config.database.url.split('@').pop()})`);

  if (config.demo.enabled) {
    const created = await seedDemo({ clients: app.services.clients, users: app.services.users, demoPort: config.demo.port });
    const demo = await startDemoRp({ issuer: config.issuer, clientId: 'demo', port: config.demo.port });
    servers.push(demo);
    console.log(`Demo app on http://localhost:${config.demo.port}/`);
    if (created) {
      console.log('\n  First start: created the demo client and user. This password is shown once:');
      console.log(`    email:    ${created.email}`);
      console.log(`    password: ${created.password}`);
      console.log('  (change it with: npm run cli -- users set-password --email demo@example.com)\n');
    }
  }

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: finishing in-flight requests`);
    app.stop();
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeIdleConnections();
    })))
      .then(() => db.destroy())
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
