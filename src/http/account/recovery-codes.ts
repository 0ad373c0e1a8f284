/**
 * Recovery codes on the security page: how many are left (shown on the page
 * itself), and a new set behind the fresh second-factor gate. A new set
 * voids the old one and is shown once.
 */
import { assertThat } from '../../errors.ts';
import { render } from '../render.ts';
import { seeOther, type AccountRoutes } from './context.ts';

const PATH = '/account/security/recovery-codes';

export const recoveryCodeRoutes: AccountRoutes = (router, kit) => {
  router.get('/security/recovery-codes', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const { factorAdmin } = kit.deps;
    assertThat(factorAdmin, 'request.not_found');
    if ((await kit.activeFactors(me.user.id)).length === 0) return seeOther(ctx, '/account/security');
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, PATH);
    const left = await factorAdmin.recoveryCodesLeft(me.user.id);
    await render(ctx, 'account/new-recovery-codes', { title: 'Make new recovery codes', left });
  });

  router.post('/security/recovery-codes', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const { factorAdmin } = kit.deps;
    assertThat(factorAdmin, 'request.not_found');
    // Checked again here: the page may have been open longer than the window.
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, PATH);
    const codes = await factorAdmin.regenerateRecoveryCodes(me.user.id);
    await kit.recoveryCodesPage(ctx, codes, '/account/security?done=recovery-codes');
  });
};
