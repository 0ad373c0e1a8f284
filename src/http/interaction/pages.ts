/**
 * The hosted sign-in pages: what each step shows a person.
 */
import type { Context } from 'koa';
import type { Interactions, InteractionDetails } from '../../oidc/interaction.ts';
import type { Challenge } from '../../mfa/challenges.ts';
import type { FactorService } from '../../mfa/factors/index.ts';
import type { FactorsStore } from '../../store/factors.ts';
import type { UserService } from '../../users/users.ts';
import { totpQrDataUrl } from '../../mfa/factors/totp.ts';
import { AppError } from '../../errors.ts';
import { render } from '../render.ts';
import { groupSecret } from '../form.ts';

/** What each OIDC scope means, in words a person reads on the consent page. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are',
  email: 'See your email address',
  profile: 'See your name',
  offline_access: 'Stay signed in to your account when you are not using it',
};

export function createPages(deps: { interactions: Interactions; factorService: FactorService; factors: FactorsStore; users: UserService; maxAttempts: number }) {
  const { interactions, factorService, factors, users } = deps;

  async function clientName(details: InteractionDetails): Promise<string> {
    const client = await interactions.client(details);
    return String(client.metadata().client_name ?? client.clientId);
  }

  return {
    async password(ctx: Context, details: InteractionDetails, opts: { error?: AppError; email?: string } = {}) {
      await render(ctx, 'login/password', {
        title: 'Sign in', uid: details.uid, client: await clientName(details), error: opts.error?.message,
        email: opts.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      }, opts.error ? opts.error.status : 200);
    },

    async secondFactor(ctx: Context, details: InteractionDetails, challenge: Challenge, error?: AppError) {
      const status = error ? 400 : 200;
      const common = { uid: details.uid, client: await clientName(details), error: error?.message, attemptsLeft: deps.maxAttempts - challenge.attempts };
      if (challenge.enrollmentFactorId) {
        const [factor, user] = await Promise.all([factors.findById(challenge.enrollmentFactorId), users.findById(challenge.userId)]);
        if (!factor || !user) throw new AppError('mfa.challenge_not_found');
        const { secret, uri, settings } = factorService.pendingTotpDetails(factor, user.email);
        return render(ctx, 'login/enroll', {
          ...common, title: 'Set up two-step verification', qr: await totpQrDataUrl(uri), secret: groupSecret(secret),
          digits: settings.digits, methodId: factor.id, email: user.email,
        }, status);
      }
      const methods = await Promise.all(challenge.methods.map(async (m) => {
        const f = await factors.findById(m.factorId);
        return { id: m.id, name: f?.name ?? 'Authenticator app', digits: f ? factorService.settingsOf(f).digits : 6 };
      }));
      return render(ctx, 'login/two-factor', {
        ...common, title: 'Two-step verification', methods, digits: methods[0]?.digits ?? 6,
      }, status);
    },

    async consent(ctx: Context, details: InteractionDetails) {
      const missing = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
      await render(ctx, 'consent', {
        title: 'Allow access', uid: details.uid, client: await clientName(details),
        scopes: missing.map((s) => SCOPE_TEXT[s] ?? s),
      });
    },

    /** A dead end the user can only leave: back to the app, with an error it understands. */
    async abortable(ctx: Context, details: InteractionDetails, error: AppError) {
      await render(ctx, 'login/stopped', { title: 'Sign-in stopped', uid: details.uid, client: await clientName(details), message: error.message }, error.status);
    },
  };
}
