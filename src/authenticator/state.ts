/**
 * The reference authenticator's state: one JSON file holding the linked
 * accounts (with their private keys) and TOTP secrets. The file is written
 * with mode 0600 through a temporary file and a rename, so a crash never
 * leaves half a file, and other users of the machine cannot read the keys.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { JsonWebKey } from 'node:crypto';

export interface LinkedAccount {
  issuer: string;
  deviceId: string;
  /** The account's email, as the server reported it when linking. */
  account: string;
  name: string;
  /** The device's private key (EC P-256 JWK). It never leaves this file. */
  privateKeyJwk: JsonWebKey;
  linkedAt: number;
}

export interface TotpEntry {
  label: string;
  issuer: string;
  secret: string;
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  digits: number;
  period: number;
}

export interface AuthenticatorState {
  version: 1;
  accounts: LinkedAccount[];
  totp: TotpEntry[];
}

export const DEFAULT_STATE_FILE = path.join(homedir(), '.twofold-authenticator.json');

/** The state in `file`, or an empty state when the file does not exist. @throws Error when it exists but is not a state file */
export async function loadState(file: string): Promise<AuthenticatorState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, accounts: [], totp: [] };
    throw err;
  }
  const state = JSON.parse(text) as Partial<AuthenticatorState>;
  if (state.version !== 1 || !Array.isArray(state.accounts) || !Array.isArray(state.totp)) throw new Error(`${file} is not an authenticator state file`);
  return state as AuthenticatorState;
}

export async function saveState(file: string, state: AuthenticatorState): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
