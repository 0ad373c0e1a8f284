/**
 * The self-service security page. The user signs in through Twofold's own
 * OIDC flow (the first-party `twofold-account` client), so the page reads the
 * provider's session. Adding or removing a way to sign in, or making new
 * recovery codes, needs a second factor answered in the last few minutes,
 * never just the session (confirm.ts). This module signs in, shows the page
 * and composes the parts that change it.
 */
import Router from '@koa/router';
import { AppError, assertThat } from '../../errors.ts';
import { hmac, safeEqual } from '../../lib/hash.ts';
import { randomToken } from '../../lib/random.ts';
import { RECOVERY_CODE_COUNT, RECOVERY_CODES_LOW } from '../../mfa/recovery-codes.ts';
import type { Factor } from '../../store/factors.ts';
import { render } from '../render.ts';
import { ACCOUNT_CLIENT_ID, accountKit, kindOf, seeOther, type AccountDeps } from './context.ts';
import { confirmRoutes } from './confirm.ts';
import { factorRoutes } from './factors.ts';
import { deliveredRoutes } from './delivered.ts';
import { passkeyRoutes } from './passkeys.ts';
import { deviceRoutes } from './devices.ts';
import { recoveryCodeRoutes } from './recovery-codes.ts';
import { sessionRoutes } from './sessions.ts';

export { ACCOUNT_CLIENT_ID, type AccountDeps } from './context.ts';

const DONE: Record<string, string> = {
  added: 'Your authenticator app is set up. You will be asked for its code when you sign in.',
  'passkey-added': 'Your passkey is set up. You can use it to sign in instead of a code.',
  'email-added': 'Email codes are set up. You can have a code emailed to you when you sign in.',
  'sms-added': 'Text message codes are set up. You can have a code texted to you when you sign in.',
  'recovery-codes': 'Your new recovery codes are ready. The old ones no longer work.',
  removed: 'The factor was removed.',
  renamed: 'The factor was renamed.',
  'device-renamed': 'The device was renamed.',
  'device-unlinked': 'The device was unlinked. It can no longer approve sign-ins.',
  'browser-forgotten': 'That browser will be asked for two-step verification again.',
};

/** Where an email or SMS factor sends its codes: the person's own, shown in full on their own page. */
function destinationOf(f: Factor): string | null {
  if (f.type === 'email') return String(f.settings.email ?? '');
  if (f.type === 'sms') return String(f.settings.phoneNumber ?? '');
  return null;
}

export function accountRouter(deps: AccountDeps): Router {
  const kit = accountKit(deps);
  const router = new Router({ prefix: '/account' });
  const redirectUri = `${deps.issuer}/account/callback`;
  const stateCookie = 'twofold.account_state';

  router.get('/', (ctx) => seeOther(ctx, '/account/security'));

  // Sign-in is an ordinary authorization request of our own first-party
  // client; the provider's session is what the page then reads.
  router.get('/login', (ctx) => {
    const state = randomToken(16);
    ctx.cookies.set(stateCookie, state, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/account', maxAge: 600_000 });
    const url = new URL(`${deps.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state,
      // PKCE is required of every client; this flow never redeems its code.
      code_challenge: hmac(deps.stateKey, state).toString('base64url'), code_challenge_method: 'S256',
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', (ctx) => {
    const expected = ctx.cookies.get(stateCookie) ?? '';
    ctx.cookies.set(stateCookie, null, { path: '/account' });
    assertThat(expected && typeof ctx.query.state === 'string' && safeEqual(ctx.query.state, expected), 'interaction.expired');
    if (ctx.query.error) throw new AppError('interaction.expired', { message: 'Sign-in was cancelled. Start again.' });
    seeOther(ctx, '/account/security');
  });

  router.get('/security', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const active = await kit.activeFactors(me.user.id);
    const factors = active.map((f) => ({ ...f, kind: kindOf(f), destination: destinationOf(f) }));
    const done = typeof ctx.query.done === 'string' ? DONE[ctx.query.done] : undefined;
    const devices = deps.devices ? await deps.devices.list(me.user.id) : null;
    // Email and SMS are offered while the user has none of that kind (one of each).
    const delivered = deps.factorAdmin ? (['email', 'sms'] as const).filter((t) => !active.some((f) => f.type === t)) : [];
    // Recovery codes stand in for a second factor, so they exist only next to one.
    const recovery = deps.factorAdmin && active.length > 0
      ? { left: await deps.factorAdmin.recoveryCodesLeft(me.user.id), total: RECOVERY_CODE_COUNT, low: RECOVERY_CODES_LOW }
      : null;
    const browsers = deps.trust ? await deps.trust.list(me.user.id) : [];
    await render(ctx, 'account/security', {
      title: 'Security', user: me.user, factors, done, passkeys: Boolean(deps.passkeys), devices, delivered, recovery, browsers,
    });
  });

  for (const part of [confirmRoutes, factorRoutes, deliveredRoutes, passkeyRoutes, deviceRoutes, recoveryCodeRoutes, sessionRoutes]) {
    part(router, kit);
  }
  return router;
}
