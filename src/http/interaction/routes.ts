/**
 * The hosted sign-in: one router that switches on the prompt and re-checks it
 * on every POST. Each handler parses, calls the domain, and hands a Step to
 * the page presenter; no factor logic lives here.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Interactions, InteractionDetails } from '../../oidc/interaction.ts';
import { requirementFor, type PolicyDeps } from '../../oidc/policy.ts';
import type { UserService } from '../../users/users.ts';
import type { ChallengeService, Challenge } from '../../mfa/challenges.ts';
import { ACR } from '../../mfa/amr.ts';
import { createPages } from './pages.ts';

export interface InteractionDeps {
  interactions: Interactions;
  users: UserService;
  challenges: ChallengeService;
  policy: PolicyDeps;
  pages: ReturnType<typeof createPages>;
}

/** Form posts are answered 303 See Other, so a reload never re-posts. */
function seeOther(ctx: Context, url: string): void {
  ctx.status = 303;
  ctx.redirect(url);
}

function field(ctx: Context, name: string): string {
  const v = (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
}

export function interactionRouter(deps: InteractionDeps): Router {
  const { interactions, users, challenges, pages } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  /** The challenge for a step-up: the session's user, the session's amr. */
  async function stepUpChallenge(details: InteractionDetails): Promise<Challenge> {
    const existing = await challenges.findByBinding(details.uid);
    if (existing) return existing;
    const accountId = details.session!.accountId;
    const client = await interactions.client(details);
    const need = await requirementFor(deps.policy, { params: details.params, clientMetadata: client.metadata(), userId: accountId });
    const user = await users.findById(accountId);
    assertThat(user, 'interaction.expired');
    const base = { userId: accountId, clientId: client.clientId, origin: 'interaction' as const, binding: details.uid, amr: details.session!.amr ?? ['pwd'] };
    const { challenge } = need === 'enroll'
      ? await challenges.beginEnrollment({ ...base, accountName: user.email })
      : await challenges.begin(base);
    return challenge;
  }

  router.get('/', async (ctx) => {
    const details = await interactions.load(ctx);
    switch (details.prompt.name) {
      case 'login': {
        if (interactions.isStepUp(details)) return pages.secondFactor(ctx, details, await stepUpChallenge(details));
        const pending = await challenges.findByBinding(details.uid);
        if (pending) return pages.secondFactor(ctx, details, pending);
        return pages.password(ctx, details);
      }
      case 'consent':
        return pages.consent(ctx, details);
      default:
        throw new AppError('interaction.unexpected_step');
    }
  });

  router.post('/login', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login' && !interactions.isStepUp(details), 'interaction.unexpected_step');
    const email = field(ctx, 'email');
    const client = await interactions.client(details);
    const user = await users.authenticate(email, field(ctx, 'password'), { clientId: client.clientId, ip: ctx.ip });
    if (!user) return pages.password(ctx, details, { error: new AppError('auth.invalid_credentials'), email });

    const need = await requirementFor(deps.policy, { params: details.params, clientMetadata: client.metadata(), userId: user.id });
    if (need === 'none') {
      return seeOther(ctx, await interactions.finishLogin(ctx, { accountId: user.id, amr: ['pwd'], acr: ACR.password }));
    }
    // Both factors happen inside this one interaction, so no session ever
    // exists with only the password when a second factor is needed.
    const base = { userId: user.id, clientId: client.clientId, origin: 'interaction' as const, binding: details.uid, amr: ['pwd'] };
    if (need === 'enroll') await challenges.beginEnrollment({ ...base, accountName: user.email });
    else await challenges.begin(base);
    seeOther(ctx, `/interaction/${details.uid}`);
  });

  router.post('/two-factor', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login', 'interaction.unexpected_step');
    const challenge = await challenges.findByBinding(details.uid);
    assertThat(challenge, 'mfa.challenge_not_found');
    // People copy codes as "123 456"; the domain itself takes digits only.
    const code = field(ctx, 'code').replace(/[ \u00a0]/g, '');
    const methodId = field(ctx, 'methodId') || undefined;
    try {
      const outcome = await challenges.verify(challenge, { methodId, code });
      return seeOther(ctx, await interactions.finishLogin(ctx, { accountId: outcome.userId, amr: outcome.amr, acr: outcome.acr }));
    } catch (err) {
      if (err instanceof AppError && err.code === 'mfa.invalid_code') {
        return pages.secondFactor(ctx, details, { ...challenge, attempts: challenge.attempts + 1 }, err);
      }
      if (err instanceof AppError && err.code === 'mfa.too_many_attempts') return pages.abortable(ctx, details, err);
      throw err;
    }
  });

  router.post('/consent', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'consent', 'interaction.unexpected_step');
    seeOther(ctx, await interactions.finishConsent(ctx, details));
  });

  router.post('/abort', async (ctx) => {
    await interactions.load(ctx);
    seeOther(ctx, await interactions.abort(ctx, 'access_denied', 'The user cancelled the sign-in.'));
  });

  return router;
}
