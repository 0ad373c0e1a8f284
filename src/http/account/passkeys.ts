/**
 * Passkeys on the security page: several per user, registered behind the
 * same gate as any other new factor.
 */
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Passkeys } from '../../mfa/passkeys.ts';
import { render } from '../render.ts';
import { credentialField, field } from '../form.ts';
import { seeOther, type AccountRoutes, type Me } from './context.ts';

// Answers to a passkey registration that leave the person on the page to try again.
const RETRY_REGISTRATION = new Set(['request.invalid', 'factor.already_enrolled', 'mfa.challenge_not_found']);

export const passkeyRoutes: AccountRoutes = (router, kit) => {
  /** The registration form, with new options (the earlier ones stop working). */
  async function passkeyPage(ctx: Context, me: Me, passkeys: Passkeys, opts: { error?: AppError; name?: string } = {}) {
    const options = await passkeys.registrationOptions(me.user, `${me.binding}:passkey`);
    await render(ctx, 'account/passkey', {
      title: 'Add a passkey', options: JSON.stringify(options), name: opts.name ?? '', error: opts.error?.message,
    }, opts.error ? opts.error.status : 200);
  }

  router.get('/security/passkey', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    assertThat(kit.deps.passkeys, 'request.not_found');
    if (!(await kit.mayAddFactor(me))) return kit.confirmPage(ctx, me, '/account/security/passkey');
    await passkeyPage(ctx, me, kit.deps.passkeys);
  });

  // Registration options are only issued behind the gate above and are spent
  // by this post, so the post itself needs no fresh check; a retry does.
  router.post('/security/passkey', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const { passkeys } = kit.deps;
    assertThat(passkeys, 'request.not_found');
    const name = field(ctx, 'name');
    let added;
    try {
      added = await passkeys.register(me.user, `${me.binding}:passkey`, credentialField(ctx), name);
    } catch (err) {
      if (!(err instanceof AppError && RETRY_REGISTRATION.has(err.code))) throw err;
      if (!(await kit.mayAddFactor(me))) return kit.confirmPage(ctx, me, '/account/security/passkey');
      return passkeyPage(ctx, me, passkeys, { error: err, name });
    }
    if (added.recoveryCodes) return kit.recoveryCodesPage(ctx, added.recoveryCodes, '/account/security?done=passkey-added');
    seeOther(ctx, '/account/security?done=passkey-added');
  });
};
