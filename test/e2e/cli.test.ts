/**
 * The admin command line, run as a real process against a database file.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT_DIR } from '../../src/config.ts';
import { createDb, migrateLatest } from '../../src/store/db.ts';
import { resetDatabase, TEST_SEAL_KEY } from '../helpers/server.ts';

const run = promisify(execFile);

describe('command line', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'twofold-cli-'));
    if (process.env.TEST_DATABASE_URL) {
      const db = createDb(process.env.TEST_DATABASE_URL);
      await migrateLatest(db);
      await resetDatabase(db);
      await db.destroy();
    }
    env = {
      ...process.env, TWOFOLD_ENV: 'development', SEAL_KEY: TEST_SEAL_KEY.toString('base64'),
      DATABASE_URL: process.env.TEST_DATABASE_URL ?? `sqlite:${path.join(dir, 'cli.sqlite')}`,
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT_DIR, 'src', 'cli.ts'), ...args], { env, cwd: ROOT_DIR });
      return { code: 0, out: stdout, err: stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, out: err.stdout, err: err.stderr };
    }
  }

  it('creates and lists users, printing a generated password once', async () => {
    const created = await cli('users', 'create', '--email', 'CLI@Example.com', '--name', 'Cli User');
    expect(created.code).to.equal(0);
    expect(created.out).to.match(/created user [0-9a-f-]{36} <cli@example\.com>/);
    expect(created.out).to.match(/password \(shown once\): \S{16}/);
    const list = await cli('users', 'list');
    expect(list.out).to.match(/cli@example\.com\s+ACTIVE\s+Cli User/);
    expect(list.out).to.not.match(/argon2/);
  });

  it('refuses a duplicate email and a short password with a clear message and exit code 1', async () => {
    const dup = await cli('users', 'create', '--email', 'cli@example.com', '--password', 'long enough password');
    expect(dup.code).to.equal(1);
    expect(dup.err).to.include('error: A user with that email address already exists.');
    const short = await cli('users', 'set-password', '--email', 'cli@example.com', '--password', 'short');
    expect(short.code).to.equal(1);
    expect(short.err).to.include('at least 8 characters');
  });

  it('creates, lists and deletes clients', async () => {
    const created = await cli('clients', 'create', '--id', 'cli-app', '--name', 'CLI app', '--redirect-uri', 'https://app.example/cb', '--mfa-policy', 'required', '--first-party');
    expect(created.code).to.equal(0);
    expect(created.out).to.match(/client secret \(shown once\): [A-Za-z0-9_-]{43}/);
    expect((await cli('clients', 'list')).out).to.match(/cli-app\s+CLI app\s+mfa=required\s+first-party\s+https:\/\/app\.example\/cb/);
    const bad = await cli('clients', 'create', '--name', 'Bad', '--redirect-uri', 'http://evil.example/cb');
    expect(bad.code).to.equal(1);
    expect(bad.err).to.include('not an allowed redirect URI');
    expect((await cli('clients', 'delete', '--id', 'cli-app')).code).to.equal(0);
    expect((await cli('clients', 'list')).out).to.not.include('cli-app');
  });

  it('creates, lists and revokes API keys', async () => {
    const created = await cli('keys', 'create', '--name', 'backend', '--scopes', 'login,users:read');
    expect(created.code).to.equal(0);
    const key = /key \(shown once\): (tfk_\S+)/.exec(created.out)![1]!;
    const id = /created API key ([0-9a-f-]{36})/.exec(created.out)![1]!;
    const list = await cli('keys', 'list');
    expect(list.out).to.include(id).and.include('login,users:read').and.include('active').and.not.include(key);
    expect((await cli('keys', 'revoke', '--id', id)).code).to.equal(0);
    expect((await cli('keys', 'list')).out).to.include('revoked');
    expect((await cli('keys', 'create', '--name', 'x', '--scopes', 'root')).err).to.include('Scopes must be some of');
  });
});
