/**
 * Debian's chromium driven by playwright-core, as a person would use the
 * hosted pages. Every page visited is saved under test-results/screenshots so
 * a person can look at them.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { ROOT_DIR } from '../../src/config.ts';
import { REDIRECT_URI, type TestClient } from './oidc-flow.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT_DIR, 'test-results', 'screenshots');

/** False when chromium is missing on a developer machine; CI installs it and must never get here. */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
  console.warn(`  (browser tests not run: ${CHROMIUM} is missing; apt-get install chromium)`);
  return false;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container has no sandbox; the closed network refuses
    // chromium's background connections, so they are switched off.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Saves a full-page screenshot and fails when the page shows Twofold's error page. */
export async function snap(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

export async function assertNoErrorPage(page: Page): Promise<void> {
  const code = await page.locator('text=Error code:').count();
  if (code > 0) throw new Error(`the page shows an error: ${await page.locator('.alert').first().textContent()}`);
}

/** A sign-in begun in a fresh browser context, with what the relying party needs to finish it. */
export interface BrowserSignIn {
  page: Page;
  verifier: string;
  state: string;
  /** The URL the browser was sent back to (the RP's redirect URI is caught, not served). */
  returned: Promise<string>;
  /** Waits for the way back, exchanges the code as the RP and validates the ID token. */
  finish(): ReturnType<typeof oidc.authorizationCodeGrant>;
}

/** Opens an authorization request (code + PKCE) for `client` in a new browser context. */
export async function beginSignIn(browser: Browser, client: TestClient): Promise<BrowserSignIn> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(client.config, {
    redirect_uri: REDIRECT_URI, scope: 'openid email', state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const page = await (await browser.newContext()).newPage();
  const returned = new Promise<string>((resolve) => {
    void page.route(`${REDIRECT_URI}**`, (r) => {
      resolve(r.request().url());
      void r.fulfill({ status: 200, body: 'back at the app' });
    });
  });
  await page.goto(url.href);
  return {
    page, verifier, state, returned,
    finish: async () => oidc.authorizationCodeGrant(client.config, new URL(await returned), { pkceCodeVerifier: verifier, expectedState: state }),
  };
}

/** Types the email address and password on the password page and submits it; fails on Twofold's error page. */
export async function enterPassword(page: Page, email: string, password = 'correct horse battery staple'): Promise<void> {
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await assertNoErrorPage(page);
}
