/** Sessions on the security page: sign out everywhere. */
import { render } from '../render.ts';
import type { AccountRoutes } from './context.ts';

export const sessionRoutes: AccountRoutes = (router, kit) => {
  // Every session of this user ends, this one included, and every refresh
  // token stops working. The CSRF token guards the form.
  router.post('/security/sign-out-everywhere', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    await kit.deps.endSessions(me.user.id, null);
    await render(ctx, 'logged-out', { title: 'Signed out everywhere', client: null, everywhere: true });
  });
};
