/**
 * The reference authenticator: a command-line device for Twofold's push
 * approval, built on the documented device protocol (docs/device-protocol.md)
 * and nothing else. `npm run authenticator -- help` lists the commands.
 *
 * Exit codes: 0 done, 1 the command failed (the server refused, a network
 * error), 2 the command line is wrong.
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import type { PushRequestView } from '../push/requests.ts';
import { DeviceApiError, DeviceClient, generateDeviceKey, keyFromPrivateJwk } from './client.ts';
import { DEFAULT_STATE_FILE, loadState, saveState, type AuthenticatorState, type LinkedAccount } from './state.ts';
import { parseOtpauthUri, totpCode } from './totp.ts';

const USAGE = `Usage: npm run authenticator -- <command> [options]

  link --issuer <url> --code <code> [--name <device name>]   link this authenticator to an account
  accounts                                                   list linked accounts
  requests                                                   list pending sign-in requests
  approve [<ref>] [--number <n>] [--pin | --biometric]       approve a request (asks for the number if not given)
  deny [<ref>]                                               deny a request
  watch [--once]                                             print requests as they arrive (server-sent events)
  unlink                                                     unlink this authenticator from the account
  add-totp --uri <otpauth://totp/...>                        add a TOTP account
  codes                                                      show the current TOTP codes

Options: --state <file> (default ~/.twofold-authenticator.json), --account <email|device id> when several are linked.`;

class UsageError extends Error {}

const options = {
  state: { type: 'string' }, account: { type: 'string' }, issuer: { type: 'string' }, code: { type: 'string' },
  name: { type: 'string' }, number: { type: 'string' }, pin: { type: 'boolean' }, biometric: { type: 'boolean' },
  uri: { type: 'string' }, once: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];
const out = (line: string) => process.stdout.write(`${line}\n`);

function pickAccount(state: AuthenticatorState, wanted: string | undefined): LinkedAccount {
  if (state.accounts.length === 0) throw new UsageError('no account is linked yet: run `link` first');
  const found = wanted ? state.accounts.filter((a) => a.account === wanted || a.deviceId === wanted) : state.accounts;
  if (found.length === 0) throw new UsageError(`no linked account ${wanted}`);
  if (found.length > 1) throw new UsageError(`several accounts are linked: pick one with --account (${state.accounts.map((a) => a.account).join(', ')})`);
  return found[0]!;
}

const clientFor = (a: LinkedAccount) => new DeviceClient(a.issuer, keyFromPrivateJwk(a.privateKeyJwk), a.deviceId);

function describe(r: PushRequestView): string[] {
  const lines = [`${r.ref}  ${r.header}`, `  ${r.text}`, `  app: ${r.clientName} · check: ${r.kind} · expires ${new Date(r.expiresAt).toISOString()}`];
  for (const [k, v] of Object.entries(r.details)) lines.push(`  ${k}: ${v}`);
  return lines;
}

/** The request `ref` names (a unique prefix is enough; none needed when only one is pending). */
function findRequest(pending: PushRequestView[], ref: string | undefined): PushRequestView {
  const found = ref ? pending.filter((r) => r.ref === ref || r.ref.startsWith(ref)) : pending;
  if (found.length === 0) throw new Error(ref ? `no pending request ${ref}` : 'no pending request');
  if (found.length > 1) throw new UsageError(`several requests are pending: name one (${found.map((r) => r.ref).join(', ')})`);
  return found[0]!;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

async function run(command: string | undefined, args: string[], v: Values, stateFile: string): Promise<void> {
  const state = await loadState(stateFile);
  switch (command) {
    case 'link': {
      if (!v.issuer || !v.code) throw new UsageError('link needs --issuer and --code');
      const issuer = new URL(v.issuer).href.replace(/\/$/, '');
      const client = new DeviceClient(issuer, generateDeviceKey());
      const linked = await client.link(v.code, v.name ?? 'Reference authenticator');
      state.accounts.push({
        issuer, deviceId: linked.deviceId, account: linked.account, name: linked.name,
        privateKeyJwk: client.key.privateKey.export({ format: 'jwk' }), linkedAt: Date.now(),
      });
      await saveState(stateFile, state);
      out(`linked ${linked.account} at ${linked.issuer} as "${linked.name}" (device ${linked.deviceId})`);
      return;
    }
    case 'accounts':
      if (state.accounts.length === 0) out('no linked accounts');
      for (const a of state.accounts) out(`${a.account}  ${a.issuer}  "${a.name}"  device ${a.deviceId}`);
      return;
    case 'requests': {
      const pending = await clientFor(pickAccount(state, v.account)).requests();
      if (pending.length === 0) out('no pending requests');
      for (const r of pending) describe(r).forEach(out);
      return;
    }
    case 'approve':
    case 'deny': {
      const client = clientFor(pickAccount(state, v.account));
      const request = findRequest(await client.requests(), args[0]);
      if (command === 'deny') {
        out(`${request.ref}: ${await client.answer(request.ref, { decision: 'deny' })}`);
        return;
      }
      if (request.kind === 'pin' && !v.pin) throw new UsageError('this request asks for your PIN: add --pin once you checked it');
      if (request.kind === 'biometric' && !v.biometric) throw new UsageError('this request asks for biometrics: add --biometric once you checked them');
      const number = v.number ?? await ask(`Type the ${request.numberLength}-digit number shown on the sign-in page: `);
      const localCheck = v.biometric ? 'biometric' : v.pin ? 'pin' : null;
      out(`${request.ref}: ${await client.answer(request.ref, { decision: 'approve', number, localCheck })}`);
      return;
    }
    case 'watch': {
      const client = clientFor(pickAccount(state, v.account));
      const seen = new Set<string>();
      for (;;) {
        for await (const pending of client.stream()) {
          for (const r of pending.filter((p) => !seen.has(p.ref))) {
            seen.add(r.ref);
            describe(r).forEach(out);
          }
          if (v.once) return;
        }
        // The server ends a stream now and then; a new one needs a new signature.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
    case 'unlink': {
      const account = pickAccount(state, v.account);
      await clientFor(account).unlink();
      state.accounts = state.accounts.filter((a) => a !== account);
      await saveState(stateFile, state);
      out(`unlinked ${account.account}`);
      return;
    }
    case 'add-totp': {
      if (!v.uri) throw new UsageError('add-totp needs --uri otpauth://totp/…');
      const entry = parseOtpauthUri(v.uri);
      state.totp.push(entry);
      await saveState(stateFile, state);
      out(`added ${entry.label}`);
      return;
    }
    case 'codes': {
      if (state.totp.length === 0) out('no TOTP accounts: add one with add-totp');
      for (const entry of state.totp) {
        const { code, secondsLeft } = await totpCode(entry, Date.now());
        out(`${entry.label}  ${code}  (${secondsLeft}s left)`);
      }
      return;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === 'help') {
    out(USAGE);
    return 0;
  }
  try {
    await run(command, rest, parsed.values, parsed.values.state ?? DEFAULT_STATE_FILE);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const message = err instanceof DeviceApiError ? `${err.message} (${err.code}, HTTP ${err.status})`
      : err instanceof TypeError && cause ? `could not reach the server: ${cause.code ?? cause.message}` : (err as Error).message;
    process.stderr.write(`error: ${message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
