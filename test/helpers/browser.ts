/**
 * Debian's chromium driven by playwright-core, as a person would use the
 * hosted pages. Every page visited is saved under test-results/screenshots so
 * a person can look at them.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT_DIR } from '../../src/config.ts';

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
