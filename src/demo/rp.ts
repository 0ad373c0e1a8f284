/**
 * The demo relying party: a real OIDC client (openid-client, authorization
 * code + PKCE) on its own port, that signs in through Twofold and shows the
 * ID token's claims. For trying Twofold out, not for production.
 */
import type { Server } from 'node:http';
import Koa from 'koa';
import * as oidc from 'openid-client';
import { randomToken } from '../lib/random.ts';

interface DemoSession {
  verifier?: string;
  state?: string;
  nonce?: string;
  claims?: Record<string, unknown>;
  idToken?: string;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(issuer: string, title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Twofold demo app</title><link rel="stylesheet" href="${escape(issuer)}/static/app.css"></head>
<body><main class="card"><p class="brand"><span class="mark" aria-hidden="true">D</span> Demo app</p>${body}</main></body></html>`;
}

function describeTime(v: unknown): string {
  return typeof v === 'number' ? `${v} (${new Date(v * 1000).toISOString()})` : JSON.stringify(v);
}

export async function startDemoRp(options: { issuer: string; clientId: string; port: number }): Promise<Server> {
  const base = `http://localhost:${options.port}`;
  const redirectUri = `${base}/callback`;
  const sessions = new Map<string, DemoSession>();
  let config: oidc.Configuration | undefined;
  // Discovery on first use: the provider may still be starting.
  const discover = async () => {
    config ??= await oidc.discovery(new URL(options.issuer), options.clientId, undefined, oidc.None(), {
      // The demo runs on plain http://localhost.
      execute: [oidc.allowInsecureRequests],
    });
    return config;
  };

  const app = new Koa();
  app.use(async (ctx) => {
    let sid = ctx.cookies.get('demo.sid');
    if (!sid || !sessions.has(sid)) {
      sid = randomToken(16);
      sessions.set(sid, {});
      ctx.cookies.set('demo.sid', sid, { httpOnly: true, sameSite: 'lax' });
    }
    const session = sessions.get(sid)!;

    if (ctx.path === '/login') {
      const cfg = await discover();
      session.verifier = oidc.randomPKCECodeVerifier();
      session.state = oidc.randomState();
      session.nonce = oidc.randomNonce();
      ctx.redirect(oidc.buildAuthorizationUrl(cfg, {
        redirect_uri: redirectUri, scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(session.verifier), code_challenge_method: 'S256',
        state: session.state, nonce: session.nonce,
      }).href);
      return;
    }
    if (ctx.path === '/callback') {
      const cfg = await discover();
      try {
        const tokens = await oidc.authorizationCodeGrant(cfg, new URL(ctx.href, base), {
          pkceCodeVerifier: session.verifier, expectedState: session.state, expectedNonce: session.nonce,
        });
        session.claims = tokens.claims() as Record<string, unknown>;
        session.idToken = tokens.id_token;
        ctx.redirect('/');
      } catch (err) {
        ctx.status = 400;
        ctx.body = page(options.issuer, 'Sign-in failed', `<h1>Sign-in failed</h1><p class="alert">${escape(err instanceof Error ? err.message : String(err))}</p><a class="button" href="/">Back</a>`);
      }
      return;
    }
    if (ctx.path === '/logout') {
      const cfg = await discover();
      const idTokenHint = session.idToken;
      sessions.delete(sid);
      ctx.redirect(oidc.buildEndSessionUrl(cfg, { post_logout_redirect_uri: `${base}/`, ...(idTokenHint ? { id_token_hint: idTokenHint } : {}) }).href);
      return;
    }
    if (ctx.path !== '/') {
      ctx.status = 404;
      return;
    }
    const claims = session.claims;
    ctx.body = page(options.issuer, 'Demo app', claims
      ? `<h1>Signed in</h1><p class="lead">The ID token Twofold issued says:</p><dl class="facts">${
        Object.entries(claims).map(([k, v]) => `<dt>${escape(k)}</dt><dd><code>${escape(['iat', 'exp', 'auth_time'].includes(k) ? describeTime(v) : JSON.stringify(v))}</code></dd>`).join('')
      }</dl><a class="button" href="/logout">Sign out</a>`
      : '<h1>Demo app</h1><p class="lead">A relying party that signs in with Twofold using OpenID Connect (authorization code + PKCE).</p><a class="button" href="/login">Sign in with Twofold</a>');
  });
  return new Promise((resolve) => {
    const server = app.listen(options.port, () => resolve(server));
  });
}
