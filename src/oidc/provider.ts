/**
 * The oidc-provider instance. Options that differ from upstream defaults are
 * commented with the reason.
 */
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import type { ProviderKeys } from './keys.ts';
import type { UserService } from '../users/users.ts';
import { ACR_VALUES } from '../mfa/amr.ts';
import { createInteractionPolicy, type PolicyDeps } from './policy.ts';
import { findAccountWith } from './account.ts';
import type { Clock } from '../lib/clock.ts';

export interface ProviderDeps extends PolicyDeps {
  config: Config;
  clock: Clock;
  keys: ProviderKeys;
  adapter: NonNullable<Configuration['adapter']>;
  users: UserService;
  /** Renders Twofold's HTML error page for errors raised on OIDC endpoints. */
  renderError: NonNullable<Configuration['renderError']>;
  logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void>;
  postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void>;
}

/** Twofold's own client metadata, validated by the provider like standard fields. */
export const EXTRA_CLIENT_METADATA = ['twofold_mfa_policy', 'twofold_first_party'] as const;

export function createProvider(deps: ProviderDeps): Provider {
  const { config } = deps;
  const ttl = config.ttl;

  const configuration: Configuration = {
    adapter: deps.adapter,
    findAccount: findAccountWith(deps.users),
    jwks: deps.keys.jwks as Configuration['jwks'],
    cookies: {
      keys: deps.keys.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    // amr and acr on every ID token (not only when a `claims` request asks),
    // so relying parties always learn how the user proved who they are.
    claims: {
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    acrValues: ACR_VALUES,
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    extraClientMetadata: {
      properties: [...EXTRA_CLIENT_METADATA],
      validator(_ctx, key, value) {
        if (key === 'twofold_mfa_policy' && value !== undefined && !['off', 'optional', 'required'].includes(value as string)) {
          throw new Error('twofold_mfa_policy must be off, optional or required');
        }
      },
    },
    // Upstream requires PKCE only for public clients; we require it for every
    // client (OAuth 2.0 Security BCP), which also blocks code injection.
    pkce: { required: () => true },
    features: {
      // The development login pages accept any user: never on.
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      // Machine-to-machine tokens, for clients created with clientCredentials.
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      claimsParameter: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: deps.logoutSource,
        postLogoutSuccessSource: deps.postLogoutSuccessSource,
      },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: createInteractionPolicy(deps),
    },
    // Explicit lifetimes (seconds); upstream warns on each use of a default.
    ttl: {
      Interaction: ttl.interaction,
      // Absolute, not sliding: a session ends ttl.session after its last
      // sign-in however busy it is (upstream re-arms the full TTL on every save).
      // Idle too: a session unused for ttl.sessionIdle ends (each use re-arms
      // it, never past the absolute end).
      Session: (_ctx, session) => {
        const loginTs = (session as { loginTs?: number }).loginTs;
        if (!loginTs) return Math.min(ttl.session, ttl.sessionIdle);
        const absolute = Math.floor(loginTs + ttl.session - deps.clock.now() / 1000);
        return Math.max(1, Math.min(absolute, ttl.sessionIdle));
      },
      Grant: ttl.grant,
      AuthorizationCode: ttl.authorizationCode,
      AccessToken: ttl.accessToken,
      IdToken: ttl.idToken,
      RefreshToken: ttl.refreshToken,
      ClientCredentials: ttl.accessToken,
    },
    // First-party clients get their grant without a consent page; third-party
    // clients keep what the user consented to and are asked for the rest.
    async loadExistingGrant(ctx) {
      const { client, session, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      // A consent just given arrives as the interaction result; later requests find it on the session.
      const grantId = (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? session.grantIdFor(client.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (client.metadata().twofold_first_party !== true) return existing;
      const grant = existing ?? new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params?.scope ?? 'openid'));
      const claims = [...Object.keys(ctx.oidc.claims?.id_token ?? {}), ...Object.keys(ctx.oidc.claims?.userinfo ?? {})];
      if (claims.length > 0) grant.addOIDCClaims(claims);
      await grant.save();
      return grant;
    },
    renderError: deps.renderError,
  };

  const provider = new Provider(config.issuer, configuration);
  // Behind a TLS-terminating load balancer, trust its X-Forwarded-* headers.
  provider.proxy = config.proxy;
  // Only the last X-Forwarded-For hop is ours; earlier ones are whatever the client sent.
  provider.maxIpsCount = 1;
  return provider;
}
