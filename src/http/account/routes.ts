/**
 * The self-service security page. The user signs in through Twofold's own
 * OIDC flow (the first-party `twofold-account` client), so the page reads the
 * provider's session. Adding or removing a factor needs a second factor
 * answered in the last few minutes, never just the session. Passkeys are
 * registered here (several per user) and can answer that check too.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { AppError, assertThat } from '../../errors.ts';
import { hmac, safeEqual } from '../../lib/hash.ts';
import { randomToken } from '../../lib/random.ts';
import type { ChallengeService } from '../../mfa/challenges.ts';
import type { FactorService } from '../../mfa/factors/index.ts';
import type { UserService } from '../../users/users.ts';
import type { User } from '../../store/users.ts';
import type { Factor } from '../../store/factors.ts';
import type { Passkeys } from '../../mfa/passkeys.ts';
import { LINK_CODE_TTL_MS, type Devices } from '../../push/devices.ts';
import { totpQrDataUrl } from '../../mfa/factors/totp.ts';
import { render } from '../render.ts';
import { credentialField, field, groupSecret, typedCode } from '../form.ts';

export const ACCOUNT_CLIENT_ID = 'twofold-account';
/** How long a second factor answered on this page keeps sensitive changes open. */
const FRESH_SECONDS = 300;

const DONE: Record<string, string> = {
  added: 'Your authenticator app is set up. You will be asked for its code when you sign in.',
  'passkey-added': 'Your passkey is set up. You can use it to sign in instead of a code.',
  removed: 'The factor was removed.',
  renamed: 'The factor was renamed.',
  'device-renamed': 'The device was renamed.',
  'device-unlinked': 'The device was unlinked. It can no longer approve sign-ins.',
};

export interface AccountDeps {
  provider: Provider;
  issuer: string;
  stateKey: string;
  users: UserService;
  challenges: ChallengeService;
  factorService: FactorService;
  /** Removes a factor of this user. @throws AppError factor.not_found */
  removeFactor(userId: string, factorId: string): Promise<void>;
  /** Renames a factor of this user. @throws AppError factor.not_found, request.invalid */
  renameFactor(userId: string, factorId: string, name: string): Promise<void>;
  /** Passkey registration and checks; without it the page offers no passkeys. */
  passkeys?: Passkeys;
  /** Linked devices (push approval); without it the page offers no devices. */
  devices?: Devices;
  /** Ends every session of the user, with its tokens. */
  endSessions(userId: string, actor: string | null): Promise<number>;
}

/** How the page names a kind of factor. */
function kindOf(f: Factor): string {
  if (f.type === 'webauthn') return f.settings.deviceType === 'multiDevice' ? 'Passkey' : 'Security key';
  if (f.type === 'email') return 'Email codes';
  if (f.type === 'sms') return 'Text message codes';
  return 'Authenticator app';
}

// Answers to a passkey registration that leave the person on the page to try again.
const RETRY_REGISTRATION = new Set(['request.invalid', 'factor.already_enrolled', 'mfa.challenge_not_found']);

export function accountRouter(deps: AccountDeps): Router {
  const { provider, challenges, factorService, users } = deps;
  const router = new Router({ prefix: '/account' });
  const redirectUri = `${deps.issuer}/account/callback`;
  const stateCookie = 'twofold.account_state';

  /** The signed-in user and a binding for this session's challenges, or a redirect to sign in. */
  async function signedIn(ctx: Context): Promise<{ user: User; binding: string } | undefined> {
    const session = await provider.Session.get(ctx);
    const user = session.accountId ? await users.findById(session.accountId) : undefined;
    if (!user || user.status !== 'ACTIVE') {
      ctx.status = 303;
      ctx.redirect('/account/login');
      return undefined;
    }
    return { user, binding: `account:${session.uid}` };
  }

  async function fresh(binding: string): Promise<boolean> {
    return challenges.hasFreshSuccess(binding, FRESH_SECONDS);
  }

  async function activeFactors(userId: string) {
    return (await factorService.listForUser(userId)).filter((f) => f.status === 'ACTIVE');
  }

  /** Adding a factor next to existing ones needs a fresh second factor; the first one needs only the session. */
  async function mayAddFactor(me: { user: User; binding: string }): Promise<boolean> {
    return (await activeFactors(me.user.id)).length === 0 || fresh(me.binding);
  }

  router.get('/', (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

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
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

  router.get('/security', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const factors = (await activeFactors(me.user.id)).map((f) => ({ ...f, kind: kindOf(f) }));
    const done = typeof ctx.query.done === 'string' ? DONE[ctx.query.done] : undefined;
    const devices = deps.devices ? await deps.devices.list(me.user.id) : null;
    await render(ctx, 'account/security', { title: 'Security', user: me.user, factors, done, passkeys: Boolean(deps.passkeys), devices });
  });

  /** Asks for a passkey or a code from an existing factor before a sensitive change. */
  async function confirmPage(ctx: Context, me: { user: User; binding: string }, next: string, error?: AppError) {
    const live = (await challenges.findByBinding(me.binding)) ?? (await challenges.begin({ userId: me.user.id, clientId: ACCOUNT_CLIENT_ID, origin: 'account', binding: me.binding, amr: [] })).challenge;
    const passkey = deps.passkeys && live.methods.some((m) => m.method === 'webauthn') ? await deps.passkeys.authenticationOptions(live) : null;
    const codeMethod = live.methods.find((m) => m.method !== 'webauthn') ?? null;
    await render(ctx, 'account/confirm', {
      title: 'Confirm it’s you', next, passkeyOptions: passkey ? JSON.stringify(passkey) : null, codeMethod, error: error?.message,
    }, error ? 400 : 200);
  }

  router.post('/security/confirm', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const next = field(ctx, 'next');
    assertThat(/^\/account\/security(\/[A-Za-z0-9/_-]*)?$/.test(next), 'request.invalid');
    const challenge = await challenges.findByBinding(me.binding);
    assertThat(challenge, 'mfa.challenge_not_found');
    const methodId = field(ctx, 'methodId') || undefined;
    try {
      await challenges.verify(challenge, { code: typedCode(ctx), credential: credentialField(ctx), methodId });
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'mfa.invalid_code')) throw err;
      const shown = methodId === 'webauthn' ? new AppError('mfa.invalid_code', { message: 'The passkey was not accepted. Try again.' }) : err;
      return confirmPage(ctx, me, next, shown);
    }
    ctx.status = 303;
    ctx.redirect(next);
  });

  router.get('/security/authenticator', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    if (!(await mayAddFactor(me))) return confirmPage(ctx, me, '/account/security/authenticator');
    const enrolBinding = `${me.binding}:enrol`;
    const live = await challenges.findByBinding(enrolBinding);
    const challenge = live ?? (await challenges.beginEnrollment({ userId: me.user.id, clientId: ACCOUNT_CLIENT_ID, origin: 'account', binding: enrolBinding, amr: [], accountName: me.user.email })).challenge;
    await enrolPage(ctx, me.user, challenge);
  });

  async function enrolPage(ctx: Context, user: User, challenge: Awaited<ReturnType<typeof challenges.begin>>['challenge'], error?: AppError) {
    const [method] = await challenges.describe(challenge, user.email);
    assertThat(method?.enrollment, 'mfa.challenge_not_found');
    await render(ctx, 'account/enroll', {
      title: 'Add an authenticator app', qr: await totpQrDataUrl(method.enrollment.uri),
      secret: groupSecret(method.enrollment.secret), digits: method.authenticator?.codeLength ?? 6, error: error?.message,
    }, error ? 400 : 200);
  }

  router.post('/security/authenticator', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const challenge = await challenges.findByBinding(`${me.binding}:enrol`);
    assertThat(challenge, 'mfa.challenge_not_found');
    let outcome;
    try {
      outcome = await challenges.verify(challenge, { code: typedCode(ctx) });
    } catch (err) {
      if (err instanceof AppError && err.code === 'mfa.invalid_code') return enrolPage(ctx, me.user, challenge, err);
      throw err;
    }
    // A first factor comes with recovery codes: this is the one time they can be shown.
    if (outcome.recoveryCodes) return recoveryCodesPage(ctx, outcome.recoveryCodes, '/account/security?done=added');
    ctx.status = 303;
    ctx.redirect('/account/security?done=added');
  });

  async function recoveryCodesPage(ctx: Context, codes: string[], next: string) {
    await render(ctx, 'account/recovery-codes', { title: 'Save your recovery codes', codes, next });
  }

  /** The registration form, with new options (the earlier ones stop working). */
  async function passkeyPage(ctx: Context, me: { user: User; binding: string }, passkeys: Passkeys, opts: { error?: AppError; name?: string } = {}) {
    const options = await passkeys.registrationOptions(me.user, `${me.binding}:passkey`);
    await render(ctx, 'account/passkey', {
      title: 'Add a passkey', options: JSON.stringify(options), name: opts.name ?? '', error: opts.error?.message,
    }, opts.error ? opts.error.status : 200);
  }

  router.get('/security/passkey', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    assertThat(deps.passkeys, 'request.not_found');
    if (!(await mayAddFactor(me))) return confirmPage(ctx, me, '/account/security/passkey');
    await passkeyPage(ctx, me, deps.passkeys);
  });

  // Registration options are only issued behind the gate above and are spent
  // by this post, so the post itself needs no fresh check; a retry does.
  router.post('/security/passkey', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const { passkeys } = deps;
    assertThat(passkeys, 'request.not_found');
    const name = field(ctx, 'name');
    let added;
    try {
      added = await passkeys.register(me.user, `${me.binding}:passkey`, credentialField(ctx), name);
    } catch (err) {
      if (!(err instanceof AppError && RETRY_REGISTRATION.has(err.code))) throw err;
      if (!(await mayAddFactor(me))) return confirmPage(ctx, me, '/account/security/passkey');
      return passkeyPage(ctx, me, passkeys, { error: err, name });
    }
    if (added.recoveryCodes) return recoveryCodesPage(ctx, added.recoveryCodes, '/account/security?done=passkey-added');
    ctx.status = 303;
    ctx.redirect('/account/security?done=passkey-added');
  });

  router.post('/security/factors/:fid/rename', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    await deps.renameFactor(me.user.id, ctx.params.fid!, field(ctx, 'name'));
    ctx.status = 303;
    ctx.redirect('/account/security?done=renamed');
  });

  router.get('/security/factors/:fid/remove', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const factor = (await factorService.listForUser(me.user.id)).find((f) => f.id === ctx.params.fid);
    assertThat(factor, 'factor.not_found');
    if (!(await fresh(me.binding))) return confirmPage(ctx, me, `/account/security/factors/${factor.id}/remove`);
    await render(ctx, 'account/remove', { title: 'Remove a factor', factor, kind: kindOf(factor) });
  });

  router.post('/security/factors/:fid/remove', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    // Checked again here: the page may have been open longer than the window.
    if (!(await fresh(me.binding))) return confirmPage(ctx, me, `/account/security/factors/${ctx.params.fid}/remove`);
    await deps.removeFactor(me.user.id, ctx.params.fid!);
    ctx.status = 303;
    ctx.redirect('/account/security?done=removed');
  });

  // Linked devices. Linking one is adding a way to sign in, so it takes the
  // same gate as adding a factor (a device already linked counts as one);
  // unlinking takes the gate of removing a factor.
  async function mayLinkDevice(me: { user: User; binding: string }, devices: Devices): Promise<boolean> {
    return ((await activeFactors(me.user.id)).length === 0 && !(await devices.hasActive(me.user.id))) || fresh(me.binding);
  }

  router.get('/security/devices/link', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    const { devices } = deps;
    assertThat(devices, 'request.not_found');
    if (!(await mayLinkDevice(me, devices))) return confirmPage(ctx, me, '/account/security/devices/link');
    const linking = await devices.createLinkingCode(me.user.id);
    await render(ctx, 'account/link-device', { title: 'Link a device', ...linking, minutes: LINK_CODE_TTL_MS / 60_000 });
  });

  router.post('/security/devices/:did/rename', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    assertThat(deps.devices, 'request.not_found');
    await deps.devices.rename(me.user.id, ctx.params.did!, field(ctx, 'name'));
    ctx.status = 303;
    ctx.redirect('/account/security?done=device-renamed');
  });

  router.get('/security/devices/:did/unlink', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    assertThat(deps.devices, 'request.not_found');
    const device = (await deps.devices.list(me.user.id)).find((d) => d.id === ctx.params.did);
    assertThat(device, 'request.not_found');
    if (!(await fresh(me.binding))) return confirmPage(ctx, me, `/account/security/devices/${device.id}/unlink`);
    await render(ctx, 'account/unlink-device', { title: 'Unlink a device', device });
  });

  router.post('/security/devices/:did/unlink', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    assertThat(deps.devices, 'request.not_found');
    // Checked again here: the page may have been open longer than the window.
    if (!(await fresh(me.binding))) return confirmPage(ctx, me, `/account/security/devices/${ctx.params.did}/unlink`);
    await deps.devices.unlink(me.user.id, ctx.params.did!);
    ctx.status = 303;
    ctx.redirect('/account/security?done=device-unlinked');
  });

  // Sign out everywhere: every session of this user ends, this one included,
  // and every refresh token stops working. The CSRF token guards the form.
  router.post('/security/sign-out-everywhere', async (ctx) => {
    const me = await signedIn(ctx);
    if (!me) return;
    await deps.endSessions(me.user.id, null);
    await render(ctx, 'logged-out', { title: 'Signed out everywhere', client: null, everywhere: true });
  });

  return router;
}
