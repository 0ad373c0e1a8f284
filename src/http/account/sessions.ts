/** Sessions on the security page: sign out everywhere. */
import { render } from '../render.ts';
import { AppError } from '../../errors.ts';
import type { AccountRoutes } from './context.ts';

export const sessionRoutes: AccountRoutes = (router, kit) => {
  // Forget a remembered browser: it is asked for the second factor again.
  router.post('/security/browsers/:bid/forget', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    if (!kit.deps.trust || !(await kit.deps.trust.revoke(me.user.id, String(ctx.params.bid), null))) throw new AppError('request.not_found');
    ctx.status = 303;
    ctx.redirect('/account/security?done=browser-forgotten');
  });

  // Every session of this user ends, this one included, and every refresh
  // token stops working. The CSRF token guards the form.
  router.post('/security/sign-out-everywhere', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    await kit.deps.endSessions(me.user.id, null);
    await render(ctx, 'logged-out', { title: 'Signed out everywhere', client: null, everywhere: true });
  });
};
