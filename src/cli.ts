/**
 * Admin command line for first set-up: `npm run cli -- <command> [options]`.
 */
import { parseArgs } from 'node:util';
import { loadConfig, type MfaPolicy } from './config.ts';
import { createDb, migrateLatest } from './store/db.ts';
import { systemClock } from './lib/clock.ts';
import { loadSealKey } from './lib/seal-key.ts';
import { randomToken } from './lib/random.ts';
import { createApp } from './app.ts';
import { AppError } from './errors.ts';

const USAGE = `usage: npm run cli -- <command> [options]

  migrate
  users create --email EMAIL [--name NAME] [--password PASSWORD]
  users list
  users set-password --email EMAIL [--password PASSWORD]
  clients create --name NAME --redirect-uri URI [--redirect-uri URI ...]
                 [--post-logout-redirect-uri URI ...] [--id CLIENT_ID]
                 [--public] [--first-party] [--mfa-policy off|optional|required]
  clients list
  clients delete --id CLIENT_ID
  keys create --name NAME --scopes SCOPE[,SCOPE...]
  keys list
  keys revoke --id KEY_ID_OR_PREFIX

Without --password a random password is generated and printed once.`;

const OPTIONS = {
  email: { type: 'string' }, name: { type: 'string' }, password: { type: 'string' }, id: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true },
  scopes: { type: 'string' },
  public: { type: 'boolean' }, 'first-party': { type: 'boolean' }, 'mfa-policy': { type: 'string' }, help: { type: 'boolean' },
} as const;

function need(value: string | undefined, flag: string): string {
  if (!value) throw new AppError('request.invalid', { message: `--${flag} is required` });
  return value;
}

async function run(argv: string[]): Promise<void> {
  const { values: o, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const command = positionals.join(' ');
  if (o.help || !command) {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  const db = createDb(config.database.url);
  try {
    await migrateLatest(db);
    if (command === 'migrate') {
      console.log('migrations are current');
      return;
    }
    const app = await createApp({ config, db, clock: systemClock, sealKey: loadSealKey(config) });
    const { users, clients, apiKeys } = app.services;
    switch (command) {
      case 'users create': {
        const password = o.password ?? randomToken(12);
        const user = await users.create({ email: need(o.email, 'email'), name: o.name ?? null, password });
        console.log(`created user ${user.id} <${user.email}>`);
        if (!o.password) console.log(`password (shown once): ${password}`);
        break;
      }
      case 'users list':
        for (const u of await users.list({ limit: 1000 })) console.log(`${u.id}  ${u.email}  ${u.status}  ${u.name ?? ''}`);
        break;
      case 'users set-password': {
        const user = await users.findByEmail(need(o.email, 'email'));
        if (!user) throw new AppError('user.not_found');
        const password = o.password ?? randomToken(12);
        await users.setPassword(user.id, password);
        console.log(`password changed for <${user.email}>`);
        if (!o.password) console.log(`new password (shown once): ${password}`);
        break;
      }
      case 'clients create': {
        const policy = o['mfa-policy'];
        if (policy !== undefined && !['off', 'optional', 'required'].includes(policy)) {
          throw new AppError('request.invalid', { message: '--mfa-policy must be off, optional or required' });
        }
        const { client, clientSecret } = await clients.create({
          ...(o.id ? { clientId: o.id } : {}), name: need(o.name, 'name'), redirectUris: o['redirect-uri'] ?? [],
          postLogoutRedirectUris: o['post-logout-redirect-uri'] ?? [], public: o.public ?? false,
          firstParty: o['first-party'] ?? false, mfaPolicy: (policy as MfaPolicy | undefined) ?? null,
        });
        console.log(`created client ${client.clientId}`);
        if (clientSecret) console.log(`client secret (shown once): ${clientSecret}`);
        break;
      }
      case 'clients list':
        for (const c of await clients.list()) {
          console.log(`${c.clientId}  ${String(c.metadata.client_name ?? '')}  mfa=${c.mfaPolicy ?? 'global'}  ${c.firstParty ? 'first-party' : 'third-party'}  ${(c.metadata.redirect_uris as string[]).join(' ')}`);
        }
        break;
      case 'clients delete':
        await clients.delete(need(o.id, 'id'));
        console.log(`deleted client ${o.id}`);
        break;
      case 'keys create': {
        const scopes = need(o.scopes, 'scopes').split(',').map((s) => s.trim()).filter(Boolean);
        const { key, record } = await apiKeys.create({ name: need(o.name, 'name'), scopes });
        console.log(`created API key ${record.id} (tfk_${record.prefix}_…) scopes=${record.scopes.join(',')}`);
        console.log(`key (shown once): ${key}`);
        break;
      }
      case 'keys list':
        for (const k of await apiKeys.list()) {
          console.log(`${k.id}  tfk_${k.prefix}_…  ${k.name}  ${k.scopes.join(',')}  ${k.revokedAt ? 'revoked' : 'active'}`);
        }
        break;
      case 'keys revoke':
        await apiKeys.revoke(need(o.id, 'id'));
        console.log(`revoked API key ${o.id}`);
        break;
      default:
        throw new AppError('request.invalid', { message: `unknown command "${command}"\n\n${USAGE}` });
    }
    app.stop();
  } finally {
    await db.destroy();
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof AppError ? `error: ${err.message}` : err);
  process.exitCode = 1;
});
