/**
 * Linked devices (push approval) on the security page. Linking one is adding
 * a way to sign in, so it takes the same gate as adding a factor (a device
 * already linked counts as one); unlinking takes the gate of removing one.
 */
import { assertThat } from '../../errors.ts';
import { LINK_CODE_TTL_MS, type Devices } from '../../push/devices.ts';
import { render } from '../render.ts';
import { field } from '../form.ts';
import { seeOther, type AccountRoutes, type Me } from './context.ts';

export const deviceRoutes: AccountRoutes = (router, kit) => {
  async function mayLinkDevice(me: Me, devices: Devices): Promise<boolean> {
    return ((await kit.activeFactors(me.user.id)).length === 0 && !(await devices.hasActive(me.user.id))) || kit.fresh(me.binding);
  }

  router.get('/security/devices/link', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    const { devices } = kit.deps;
    assertThat(devices, 'request.not_found');
    if (!(await mayLinkDevice(me, devices))) return kit.confirmPage(ctx, me, '/account/security/devices/link');
    const linking = await devices.createLinkingCode(me.user.id);
    await render(ctx, 'account/link-device', { title: 'Link a device', ...linking, minutes: LINK_CODE_TTL_MS / 60_000 });
  });

  router.post('/security/devices/:did/rename', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    assertThat(kit.deps.devices, 'request.not_found');
    await kit.deps.devices.rename(me.user.id, ctx.params.did!, field(ctx, 'name'));
    seeOther(ctx, '/account/security?done=device-renamed');
  });

  router.get('/security/devices/:did/unlink', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    assertThat(kit.deps.devices, 'request.not_found');
    const device = (await kit.deps.devices.list(me.user.id)).find((d) => d.id === ctx.params.did);
    assertThat(device, 'request.not_found');
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, `/account/security/devices/${device.id}/unlink`);
    await render(ctx, 'account/unlink-device', { title: 'Unlink a device', device });
  });

  router.post('/security/devices/:did/unlink', async (ctx) => {
    const me = await kit.signedIn(ctx);
    if (!me) return;
    assertThat(kit.deps.devices, 'request.not_found');
    // Checked again here: the page may have been open longer than the window.
    if (!(await kit.fresh(me.binding))) return kit.confirmPage(ctx, me, `/account/security/devices/${ctx.params.did}/unlink`);
    await kit.deps.devices.unlink(me.user.id, ctx.params.did!);
    seeOther(ctx, '/account/security?done=device-unlinked');
  });
};
