/**
 * The hosted sign-in pages: what each step shows a person.
 */
import type { Context } from 'koa';
import type { Interactions, InteractionDetails } from '../../oidc/interaction.ts';
import { maskEmail, maskPhone, type Challenge } from '../../mfa/challenges.ts';
import type { ChallengeMethod } from '../../store/challenges.ts';
import type { LockStatus } from '../../mfa/lockout.ts';
import type { GraceStatus } from '../../mfa/enrollment-grace.ts';
import { requestedAcrs } from '../../oidc/policy.ts';
import type { FactorService } from '../../mfa/factors/index.ts';
import type { FactorsStore } from '../../store/factors.ts';
import type { UserService } from '../../users/users.ts';
import type { User } from '../../store/users.ts';
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

/** A method as the second-factor page shows it. */
export interface MethodView {
  id: string;
  method: ChallengeMethod['method'];
  /** How the "other ways" list names it. */
  label: string;
  digits: number;
  /** Masked email address or phone number. */
  destination?: string;
  /** A code was sent for this challenge and method. */
  sent?: boolean;
  /** JSON of the passkey request options. */
  webauthnOptions?: string;
  /** The number to type on the device, while a push is out. */
  pushNumber?: string;
  /** pending | approved | denied, once a push was sent. */
  pushState?: string;
}

export function createPages(deps: {
  interactions: Interactions; factorService: FactorService; factors: FactorsStore; users: UserService; maxAttempts: number;
  lockStatus(userId: string): Promise<LockStatus>;
  /** Days "remember this browser" lasts for this sign-in's client, or null when the client may not offer it. */
  rememberDays?(details: InteractionDetails): Promise<number | null>;
  /** Options JSON for registering a passkey at enrolment (bound to this sign-in), when passkeys are on. */
  passkeyRegistration?(user: User, details: InteractionDetails): Promise<string>;
  /** Whether this user may skip enrolment now (the caller knows whether the request asked for a level). */
  enrollmentGrace?(userId: string, requestedAcrs: readonly string[]): Promise<GraceStatus>;
  /** Extra details of email, SMS and passkey methods (sent state, passkey options). */
  methodDetails?(challenge: Challenge, method: ChallengeMethod): Promise<Partial<MethodView>>;
}) {
  const { interactions, factorService, factors, users } = deps;

  async function describeMethod(challenge: Challenge, m: ChallengeMethod): Promise<MethodView> {
    const factor = m.factorId ? await factors.findById(m.factorId) : undefined;
    const extra = deps.methodDetails ? await deps.methodDetails(challenge, m) : {};
    switch (m.method) {
      case 'authenticator':
        return { id: m.id, method: m.method, label: `Enter a code from your authenticator app${factor && factor.name !== 'Authenticator app' ? ` (${factor.name})` : ''}`, digits: factor ? factorService.settingsOf(factor).digits : 6, ...extra };
      case 'recovery-code':
        return { id: m.id, method: m.method, label: 'Use a recovery code', digits: 0, ...extra };
      case 'email': {
        const destination = maskEmail(String(factor?.settings.email ?? ''));
        return { id: m.id, method: m.method, label: `Email a code to ${destination}`, digits: 6, destination, ...extra };
      }
      case 'sms': {
        const destination = maskPhone(String(factor?.settings.phoneNumber ?? ''));
        return { id: m.id, method: m.method, label: `Text a code to ${destination}`, digits: 6, destination, ...extra };
      }
      case 'webauthn':
        return { id: m.id, method: m.method, label: 'Use a passkey or security key', digits: 0, ...extra };
      case 'push':
        return { id: m.id, method: m.method, label: 'Approve on your linked device', digits: 0, ...extra };
    }
  }

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

    /**
     * The second-factor step: the chosen method (`methodId`, else the first)
     * with links to the others; the enrolment page when the challenge
     * activates a new authenticator.
     */
    async secondFactor(ctx: Context, details: InteractionDetails, challenge: Challenge, opts: { error?: AppError | undefined; methodId?: string | undefined; notice?: string } = {}) {
      const { error } = opts;
      const status = error ? error.status === 429 ? 429 : 400 : 200;
      const common = { uid: details.uid, client: await clientName(details), error: error?.message, attemptsLeft: deps.maxAttempts - challenge.attempts };
      if (challenge.enrollmentFactorId) {
        const [factor, user] = await Promise.all([factors.findById(challenge.enrollmentFactorId), users.findById(challenge.userId)]);
        if (!factor || !user) throw new AppError('mfa.challenge_not_found');
        const { secret, uri, settings } = factorService.pendingTotpDetails(factor, user.email);
        const grace = deps.enrollmentGrace ? await deps.enrollmentGrace(user.id, requestedAcrs(details.params)) : null;
        return render(ctx, 'login/enroll', {
          ...common, title: 'Set up two-step verification', qr: await totpQrDataUrl(uri), secret: groupSecret(secret),
          digits: settings.digits, methodId: factor.id, email: user.email, grace: grace?.allowed ? grace : null,
          passkeyOptions: deps.passkeyRegistration ? await deps.passkeyRegistration(user, details) : null,
        }, status);
      }
      const methods = await Promise.all(challenge.methods.map((m) => describeMethod(challenge, m)));
      const current = methods.find((m) => m.id === opts.methodId) ?? methods[0];
      if (!current) throw new AppError('mfa.challenge_not_found');
      const lock = await deps.lockStatus(challenge.userId);
      const locked = lock.locked ? { minutes: Math.max(1, Math.ceil(lock.retryAfter / 60)) } : null;
      const rememberDays = deps.rememberDays ? await deps.rememberDays(details) : null;
      return render(ctx, 'login/two-factor', {
        ...common, title: 'Two-step verification', current, others: methods.filter((m) => m !== current), rememberDays,
        locked: error?.code === 'mfa.locked' ? locked ?? { minutes: Math.ceil(Number(error.details?.retryAfter ?? 60) / 60) } : locked,
        error: error?.code === 'mfa.locked' ? undefined : error?.message, notice: opts.notice,
      }, locked || error?.code === 'mfa.locked' ? 429 : status);
    },

    /** After the first factor was turned on: the new recovery codes, once, then on to the app. */
    async recoveryCodes(ctx: Context, details: InteractionDetails, codes: string[], next: string) {
      await render(ctx, 'login/recovery-codes', { title: 'Save your recovery codes', client: await clientName(details), codes, next });
    },

    /** After a recovery code was used with few left: say so, then on to the app. */
    async recoveryCodesLow(ctx: Context, details: InteractionDetails, remaining: number, next: string) {
      await render(ctx, 'login/recovery-low', { title: 'Recovery code used', client: await clientName(details), remaining, next });
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
