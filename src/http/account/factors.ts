/**
 * Authenticator apps on the security page, and renaming or removing any
 * factor. Adding one next to existing factors, and removing one, take a
 * fresh second factor.
 */
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Challenge } from '../../mfa/challenges.ts';
import type { User } from '../../store/users.ts';
import { totpQrDataUrl } from '../../mfa/factors/totp.ts';
import { render } from '../render.ts';
import { field, groupSecret, typedCode } from '../form.ts';
import { ACCOUNT_CLIENT_ID, kindOf, seeOther, type AccountRoutes } from './context.ts';

export const factorRoutes: AccountRoutes = (router, kit) => {
  const { challenges, factorService } = kit.deps;

  async function enrolPage(ctx: Context, user: User, challenge: Challenge, error?: AppError) {
    const [method] = await challenges.describe(challenge, user.email);
    assertThat(method?.enrollment, 'mfa.challenge_not_found');
    await render(ctx, 'account/enroll', {
      title: 'Add an authenticator app', qr: await totpQrDataUrl(method.enrollment.uri),
      secret: groupSecret(method.enrollment.secret), digits: method.authenticator?.codeLength ?? 6, error: error?.message,
    }, error ? 400 : 200);
  }

  router.get('/security/authenticator', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    if (!(await kit.mayAddFactor(me))) return kit.confirmPage(ctx, me, '/account/security/authenticator');
    const enrolBinding = `${me.binding}:enrol`;
    const live = await challenges.findByBinding(enrolBinding);
    const challenge = live ?? (await challenges.beginEnrollment({ userId: me.user.id, clientId: ACCOUNT_CLIENT_ID, origin: 'account', binding: enrolBinding, amr: [], accountName: me.user.email })).challenge;
    await enrolPage(ctx, me.user, challenge);
  });

  router.post('/security/authenticator', async (ctx) => {
    const me = await kit.signedIn(ctx);
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
    if (outcome.recoveryCodes) return kit.recoveryCodesPage(ctx, outcome.recoveryCodes, '/account/security?done=added');
    seeOther(ctx, '/account/security?done=added');
  });

  router.post('/security/factors/:fid/rename', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    await kit.deps.renameFactor(me.user.id, ctx.params.fid!, field(ctx, 'name'));
    seeOther(ctx, '/account/security?done=renamed');
  });

  router.get('/security/factors/:fid/remove', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const factor = (await factorService.listForUser(me.user.id)).find((f) => f.id === ctx.params.fid);
    assertThat(factor, 'factor.not_found');
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, `/account/security/factors/${factor.id}/remove`);
    await render(ctx, 'account/remove', { title: 'Remove a factor', factor, kind: kindOf(factor) });
  });

  router.post('/security/factors/:fid/remove', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    // Checked again here: the page may have been open longer than the window.
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, `/account/security/factors/${ctx.params.fid}/remove`);
    await kit.deps.removeFactor(me.user.id, ctx.params.fid!);
    seeOther(ctx, '/account/security?done=removed');
  });
};
