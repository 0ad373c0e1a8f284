/**
 * "Confirm it's you": the fresh second factor in front of sensitive changes.
 * The session's confirm challenge is answered with a passkey, an
 * authenticator code, an emailed or texted code (sent on request), or a
 * recovery code. A success opens the gate for a few minutes (see context.ts).
 */
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Challenge, PublicMethod } from '../../mfa/challenges.ts';
import { render } from '../render.ts';
import { credentialField, field, typedCode } from '../form.ts';
import { ACCOUNT_CLIENT_ID, type AccountDeps, type AccountRoutes, type ConfirmOptions, type Me } from './context.ts';

// Methods answered on this page besides a passkey: a typed code, or a push approved on a linked device.
const CODE_METHODS = new Set(['authenticator', 'email', 'sms', 'push', 'recovery-code']);
// Failures to send a code or push that leave the person on the page to try again or choose another way.
const RETRY_SEND = new Set(['mfa.send_limited', 'delivery.failed', 'mfa.method_not_available', 'push.limited', 'push.paused']);
// A push not answered yet, or denied: not a wrong answer; the page says so.
const PUSH_WAIT = new Set(['push.pending', 'push.denied', 'push.not_sent']);
const NEXT = /^\/account\/security(\/[A-Za-z0-9/_-]*)?$/;

function labelOf(m: PublicMethod): string {
  if (m.method === 'email') return `Email a code to ${m.email ?? 'your address'}`;
  if (m.method === 'sms') return `Text a code to ${m.mobilePhone ?? 'your phone'}`;
  if (m.method === 'recovery-code') return 'Use a recovery code';
  if (m.method === 'push') return 'Approve on your linked device';
  return 'Use your authenticator app';
}

/** The live confirm challenge of this session, or a new one. */
async function confirmChallenge(deps: AccountDeps, me: Me): Promise<Challenge> {
  return (await deps.challenges.findByBinding(me.binding))
    ?? (await deps.challenges.begin({ userId: me.user.id, clientId: ACCOUNT_CLIENT_ID, origin: 'account', binding: me.binding, amr: [] })).challenge;
}

/** Renders the confirm page; `?method=` (or opts.methodId) picks the code method shown. */
export async function renderConfirm(ctx: Context, deps: AccountDeps, me: Me, next: string, opts: ConfirmOptions): Promise<void> {
  const { challenges } = deps;
  const live = await confirmChallenge(deps, me);
  const passkey = deps.passkeys && live.methods.some((m) => m.method === 'webauthn') ? await deps.passkeys.authenticationOptions(live) : null;
  const codeMethods = (await challenges.describe(live, me.user.email)).filter((m) => CODE_METHODS.has(m.method));
  const wanted = opts.methodId ?? (typeof ctx.query.method === 'string' ? ctx.query.method : undefined);
  const chosen = codeMethods.find((m) => m.id === wanted) ?? codeMethods[0];
  const delivered = chosen && (chosen.method === 'email' || chosen.method === 'sms');
  const push = chosen?.method === 'push' ? await challenges.pushRequest(live) : undefined;
  const codeMethod = chosen ? {
    id: chosen.id, method: chosen.method, destination: chosen.email ?? chosen.mobilePhone ?? null,
    digits: chosen.authenticator?.codeLength ?? 6,
    sent: delivered ? await challenges.codeSent(live, chosen.id) : Boolean(push && push.state !== 'denied'),
    pushNumber: push?.number ?? null,
  } : null;
  const others = codeMethods.filter((m) => m !== chosen).map((m) => ({ href: `${next}?method=${encodeURIComponent(m.id)}`, label: labelOf(m) }));
  await render(ctx, 'account/confirm', {
    title: 'Confirm it’s you', next, passkeyOptions: passkey ? JSON.stringify(passkey) : null, codeMethod, others,
    error: opts.error?.message, notice: opts.notice,
  }, opts.error ? opts.error.status : 200);
}

export const confirmRoutes: AccountRoutes = (router, kit) => {
  const { challenges } = kit.deps;

  /** The form's `next`, which must stay on the security page. */
  function nextOf(ctx: Context): string {
    const next = field(ctx, 'next');
    assertThat(NEXT.test(next), 'request.invalid');
    return next;
  }

  router.post('/security/confirm', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const next = nextOf(ctx);
    const challenge = await challenges.findByBinding(me.binding);
    assertThat(challenge, 'mfa.challenge_not_found');
    const methodId = field(ctx, 'methodId') || undefined;
    try {
      await challenges.verify(challenge, { code: typedCode(ctx), credential: credentialField(ctx), methodId });
    } catch (err) {
      if (err instanceof AppError && PUSH_WAIT.has(err.code)) return kit.confirmPage(ctx, me, next, { error: err, methodId });
      if (!(err instanceof AppError && err.code === 'mfa.invalid_code')) throw err;
      const shown = methodId === 'webauthn' ? new AppError('mfa.invalid_code', { message: 'The passkey was not accepted. Try again.' }) : err;
      return kit.confirmPage(ctx, me, next, { error: shown, methodId });
    }
    ctx.status = 303;
    ctx.redirect(next);
  });

  // Sends (or resends) a code to an email or SMS factor of the confirm challenge.
  router.post('/security/confirm/send', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const next = nextOf(ctx);
    const challenge = await challenges.findByBinding(me.binding);
    assertThat(challenge, 'mfa.challenge_not_found');
    const methodId = field(ctx, 'methodId');
    const method = challenge.methods.find((m) => m.id === methodId);
    assertThat(method && (method.method === 'email' || method.method === 'sms' || method.method === 'push'), 'mfa.method_not_available');
    try {
      await challenges.sendCode(challenge, methodId);
    } catch (err) {
      if (!(err instanceof AppError && RETRY_SEND.has(err.code))) throw err;
      const shown = err.code === 'delivery.failed' ? new AppError('delivery.failed', { message: 'The code could not be sent. Try again in a moment, or choose another way.' }) : err;
      return kit.confirmPage(ctx, me, next, { error: shown, methodId });
    }
    const notice = method.method === 'push' ? undefined : 'Code sent. It works for a few minutes; asking for a new one voids it.';
    return kit.confirmPage(ctx, me, next, { methodId, ...(notice ? { notice } : {}) });
  });

  // The state of the confirm challenge's push request, for the page's script.
  router.get('/security/confirm/push-status', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { state: await challenges.pushProgress(await challenges.findByBinding(me.binding)) };
  });
};
