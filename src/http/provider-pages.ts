/**
 * Pages oidc-provider renders itself (errors on OIDC endpoints, the logout
 * confirmation), drawn with Twofold's views.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { render } from './render.ts';

function clientName(ctx: KoaContextWithOIDC): string | null {
  const client = ctx.oidc?.client;
  return client ? String(client.clientName ?? client.clientId) : null;
}

export function providerPages() {
  return {
    async renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }) {
      await render(ctx, 'error', {
        title: 'Sign-in could not continue',
        message: out.error_description ?? 'The request could not be completed.',
        code: out.error,
      }, ctx.status >= 400 ? ctx.status : 400);
    },
    async logoutSource(ctx: KoaContextWithOIDC, form: string) {
      await render(ctx, 'logout', { title: 'Sign out', form, client: clientName(ctx) ?? 'this app' });
    },
    async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      await render(ctx, 'logged-out', { title: 'Signed out', client: clientName(ctx) });
    },
  };
}
