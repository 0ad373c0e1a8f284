/**
 * The only module that reads or finishes oidc-provider interactions. Doors
 * (HTML pages, JSON) call these and never touch the provider's API directly.
 */
import type Provider from 'oidc-provider';
import type { Context } from 'koa';
import { AppError, assertThat } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Reasons that mean "ask for the password", not just for a missing factor. */
const FULL_LOGIN_REASONS = new Set(['no_session', 'max_age', 'login_prompt', 'id_token_hint', 'claims_id_token_sub_value']);

export interface LoginResult {
  accountId: string;
  amr: string[];
  acr: string;
}

/** `clock` dates each login (`loginTs`, hence `auth_time` and the session's lifetimes) on the same clock as the rest of the app. */
export function createInteractions(provider: Provider, clock: Clock = systemClock) {
  return {
    /**
     * The interaction bound to this browser (by its cookie), checked against
     * the uid in the path.
     * @throws AppError interaction.expired
     */
    async load(ctx: Context): Promise<InteractionDetails> {
      const details = await provider.interactionDetails(ctx.req, ctx.res).catch((err: unknown) => {
        throw new AppError('interaction.expired', { cause: err });
      });
      assertThat(details.uid === ctx.params.uid, 'interaction.expired');
      return details;
    },

    /**
     * True when the session already has a signed-in user and the login prompt
     * only asks for more factors (step-up): ask for the missing factor, not
     * the password, and keep the same account.
     */
    isStepUp(details: InteractionDetails): boolean {
      return details.prompt.name === 'login' && Boolean(details.session?.accountId)
        && !details.prompt.reasons.some((r) => FULL_LOGIN_REASONS.has(r));
    },

    async client(details: InteractionDetails) {
      const client = await provider.Client.find(String(details.params.client_id));
      assertThat(client, 'interaction.expired');
      return client;
    },

    /** Finishes the login prompt. @returns where the browser goes next. */
    async finishLogin(ctx: Context, login: LoginResult): Promise<string> {
      return provider.interactionResult(ctx.req, ctx.res, { login: { ...login, remember: true, ts: Math.floor(clock.now() / 1000) } }, { mergeWithLastSubmission: false });
    },

    /** Grants what the consent prompt asked for. @returns where the browser goes next. */
    async finishConsent(ctx: Context, details: InteractionDetails): Promise<string> {
      const accountId = details.session?.accountId;
      assertThat(accountId, 'interaction.unexpected_step');
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
      assertThat(grant, 'interaction.expired');
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return provider.interactionResult(ctx.req, ctx.res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    },

    /** Ends the interaction with an OAuth error sent to the relying party. */
    async abort(ctx: Context, error: 'access_denied' | 'unmet_authentication_requirements', description: string): Promise<string> {
      return provider.interactionResult(ctx.req, ctx.res, { error, error_description: description }, { mergeWithLastSubmission: false });
    },
  };
}

export type Interactions = ReturnType<typeof createInteractions>;
