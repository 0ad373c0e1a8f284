/**
 * Server-rendered pages: an EJS view inside views/layout.ejs. Pages carry a
 * strict CSP (no inline script or style) and must not be framed or cached.
 */
import path from 'node:path';
import ejs from 'ejs';
import type { Context } from 'koa';
import { ROOT_DIR } from '../config.ts';

const VIEWS = path.join(ROOT_DIR, 'views');

export const PAGE_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "script-src 'self'",
  "style-src 'self'",
  "form-action 'self' http: https:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export type Locals = Record<string, unknown> & { title: string };

/** Renders `view` with `locals` (plus the CSRF token) into the layout. */
export async function render(ctx: Context, view: string, locals: Locals, status = 200): Promise<void> {
  const data = { csrfToken: ctx.state.csrfToken ?? '', error: undefined, ...locals };
  const body = await ejs.renderFile(path.join(VIEWS, `${view}.ejs`), data, { async: false });
  const html = await ejs.renderFile(path.join(VIEWS, 'layout.ejs'), { ...data, body }, { async: false });
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', PAGE_CSP);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = html;
}
