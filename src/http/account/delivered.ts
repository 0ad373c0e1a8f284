/**
 * Email and SMS factors on the security page: give an address or number,
 * get a code there, type it back. The factor is listed (ACTIVE) only once
 * the code comes back; a failed delivery leaves nothing behind. Starting an
 * enrolment takes the same gate as adding an authenticator.
 */
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Factor } from '../../store/factors.ts';
import { render } from '../render.ts';
import { field, typedCode } from '../form.ts';
import { seeOther, type AccountKit, type AccountRoutes, type Me } from './context.ts';

type Kind = 'email' | 'sms';

const COPY = {
  email: { title: 'Add email codes', input: 'email', done: 'email-added' },
  sms: { title: 'Add text message codes', input: 'phoneNumber', done: 'sms-added' },
} as const;

// Failures to send that leave the person on the page to try again.
const RETRY_SEND = new Set(['mfa.send_limited', 'delivery.failed']);

/** A message that says what happened and what to do; nothing was added or changed. */
function sendError(err: AppError, kind: Kind): AppError {
  if (err.code !== 'delivery.failed') return err;
  const where = kind === 'email' ? 'email' : 'text message';
  return new AppError('delivery.failed', { message: `We could not send the ${where} just now. Nothing was changed: try again in a moment.` });
}

function kindRoutes(router: Parameters<AccountRoutes>[0], kit: AccountKit, kind: Kind): void {
  const base = `/account/security/${kind}`;
  const copy = COPY[kind];

  function admin() {
    assertThat(kit.deps.factorAdmin, 'request.not_found');
    return kit.deps.factorAdmin;
  }

  /** The factor of this kind waiting for its first code (enrolment replaces any earlier one). */
  async function pendingOf(me: Me): Promise<Factor | undefined> {
    return (await kit.deps.factorService.listForUser(me.user.id)).find((f) => f.type === kind && f.status === 'PENDING_ACTIVATION');
  }

  async function formPage(ctx: Context, opts: { value?: string; fieldError?: string; error?: AppError } = {}) {
    const status = opts.error?.status ?? (opts.fieldError ? 400 : 200);
    await render(ctx, 'account/add-delivered', {
      title: copy.title, kind, input: copy.input, value: opts.value ?? '', fieldError: opts.fieldError ?? null, error: opts.error?.message,
    }, status);
  }

  async function codePage(ctx: Context, factor: Factor, opts: { error?: AppError; notice?: string } = {}) {
    const destination = String(kind === 'email' ? factor.settings.email : factor.settings.phoneNumber);
    await render(ctx, 'account/verify-delivered', {
      title: copy.title, kind, destination, error: opts.error?.message, notice: opts.notice ?? null,
    }, opts.error?.status ?? 200);
  }

  router.get(`/security/${kind}`, async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    admin();
    if (!(await kit.mayAddFactor(me))) return kit.confirmPage(ctx, me, base);
    await formPage(ctx);
  });

  // Checked again here: this post creates the factor and sends to the address.
  router.post(`/security/${kind}`, async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const factorAdmin = admin();
    if (!(await kit.mayAddFactor(me))) return kit.confirmPage(ctx, me, base);
    const value = field(ctx, copy.input);
    try {
      const destination = kind === 'email' ? { email: value } : { phoneNumber: value };
      await factorAdmin.enrollDelivered({ userId: me.user.id, factorType: kind, ...destination }, { ip: ctx.ip });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.code === 'request.invalid' && err.details?.field) return formPage(ctx, { value, fieldError: err.message });
      if (err.code === 'factor.already_enrolled') return formPage(ctx, { value, error: new AppError(err.code, { message: kind === 'email' ? 'Email codes are already set up. Remove them first to use another address.' : 'Text message codes are already set up. Remove them first to use another number.' }) });
      if (RETRY_SEND.has(err.code)) return formPage(ctx, { value, error: sendError(err, kind) });
      throw err;
    }
    seeOther(ctx, `${base}/verify`);
  });

  router.get(`/security/${kind}/verify`, async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    admin();
    const pending = await pendingOf(me);
    if (!pending) return seeOther(ctx, base);
    await codePage(ctx, pending);
  });

  router.post(`/security/${kind}/verify`, async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const factorAdmin = admin();
    const pending = await pendingOf(me);
    if (!pending) return seeOther(ctx, base);
    let activated;
    try {
      activated = await factorAdmin.activate(me.user.id, pending.id, typedCode(ctx), { ip: ctx.ip });
    } catch (err) {
      if (err instanceof AppError && err.code === 'mfa.locked') return codePage(ctx, pending, { error: err });
      throw err;
    }
    if (!activated) {
      const where = kind === 'email' ? 'the email we sent' : 'the text message we sent';
      return codePage(ctx, pending, { error: new AppError('mfa.invalid_code', { message: `That code is not correct. Check ${where} and try again.` }) });
    }
    const done = `/account/security?done=${copy.done}`;
    if (activated.recoveryCodes) return kit.recoveryCodesPage(ctx, activated.recoveryCodes, done);
    seeOther(ctx, done);
  });

  // A new code for the pending factor; the previous one stops working.
  router.post(`/security/${kind}/resend`, async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const factorAdmin = admin();
    const pending = await pendingOf(me);
    if (!pending) return seeOther(ctx, base);
    try {
      await factorAdmin.resend(me.user.id, pending.id);
    } catch (err) {
      if (!(err instanceof AppError && RETRY_SEND.has(err.code))) throw err;
      return codePage(ctx, pending, { error: sendError(err, kind) });
    }
    await codePage(ctx, pending, { notice: 'A new code was sent. The previous one no longer works.' });
  });
}

export const deliveredRoutes: AccountRoutes = (router, kit) => {
  kindRoutes(router, kit, 'email');
  kindRoutes(router, kit, 'sms');
};
