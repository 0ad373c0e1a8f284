/**
 * One set of flow helpers for every end-to-end test: openid-client is the
 * relying party (discovery, PKCE, code exchange, ID token validation) and an
 * Agent fills the hosted pages.
 */
import * as oidc from 'openid-client';
import { expect } from 'chai';
import { Agent, decodeEntities, type Page } from './agent.ts';
import type { TestServer } from './server.ts';
import { generateTotp } from '../../src/mfa/factors/totp.ts';
import type { TotpSettings } from '../../src/mfa/factors/totp.ts';
import type { MfaPolicy } from '../../src/config.ts';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

export interface TestClient {
  clientId: string;
  secret: string | null;
  config: oidc.Configuration;
}

let clientCounter = 0;

/** Registers a client through Twofold's own service and discovers the provider as an RP would. */
export async function registerClient(server: TestServer, options: { mfaPolicy?: MfaPolicy | null; firstParty?: boolean; public?: boolean; clientCredentials?: boolean } = {}): Promise<TestClient> {
  clientCounter += 1;
  const { client, clientSecret } = await server.app.services.clients.create({
    clientId: `client-${clientCounter}`, name: `Test app ${clientCounter}`, redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: ['http://127.0.0.1:9/'], public: options.public ?? false,
    firstParty: options.firstParty ?? true, mfaPolicy: options.mfaPolicy ?? null, clientCredentials: options.clientCredentials ?? false,
  });
  const auth = clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None();
  const config = await oidc.discovery(new URL(server.origin), client.clientId, clientSecret ?? undefined, auth, { execute: [oidc.allowInsecureRequests] });
  return { clientId: client.clientId, secret: clientSecret, config };
}

export async function createUser(server: TestServer, email: string, password = 'correct horse battery staple') {
  return server.app.services.users.create({ email, name: email.split('@')[0], password });
}

/** Enrols and activates an authenticator for a user, as an admin would. @returns its base32 secret. */
export async function giveAuthenticator(server: TestServer, userId: string, settings?: Partial<TotpSettings>): Promise<{ secret: string; factorId: string; settings: TotpSettings }> {
  const { factor, secret } = await server.app.services.factorService.enrollTotp({ userId, accountName: 'test', settings });
  // Activation through the same guarded write sign-in uses; step 0 is never a real step.
  await server.app.stores.factors.acceptTimeStep(factor.id, 0, true);
  return { secret, factorId: factor.id, settings: server.app.services.factorService.settingsOf(factor) };
}

export async function totpNow(server: TestServer, secret: string, settings: TotpSettings = { algorithm: 'SHA1', digits: 6, period: 30 }): Promise<string> {
  return generateTotp({ secret, settings, nowMs: server.clock.now() });
}

/** One authorization request, carried through the hosted pages by an Agent. */
export class SignIn {
  readonly agent: Agent;
  readonly verifier = oidc.randomPKCECodeVerifier();
  readonly state = oidc.randomState();
  readonly nonce = oidc.randomNonce();
  page!: Page;

  constructor(readonly server: TestServer, readonly client: TestClient, agent?: Agent) {
    this.agent = agent ?? new Agent(server.origin);
  }

  async authorizationUrl(params: Record<string, string> = {}): Promise<URL> {
    return oidc.buildAuthorizationUrl(this.client.config, {
      redirect_uri: REDIRECT_URI, scope: 'openid email profile', state: this.state, nonce: this.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(this.verifier), code_challenge_method: 'S256', ...params,
    });
  }

  /** GET /auth and follow to the first page (or the redirect back to the RP). */
  async start(params: Record<string, string> = {}): Promise<Page> {
    this.page = await this.agent.get((await this.authorizationUrl(params)).href);
    return this.page;
  }

  async password(email: string, password = 'correct horse battery staple'): Promise<Page> {
    this.page = await this.agent.submit(this.page, '/login', { email, password });
    return this.page;
  }

  /** Recovery codes the last enrolment showed (the page a person reads and then continues from). */
  recoveryCodes: string[] = [];

  async code(code: string, methodId?: string): Promise<Page> {
    this.page = await this.agent.submit(this.page, '/two-factor', { code, ...(methodId ? { methodId } : {}) });
    if (this.page.status === 200 && this.page.html.includes('Save your recovery codes')) {
      this.recoveryCodes = [...this.page.html.matchAll(/<li><code>([0-9A-Z-]+)<\/code><\/li>/g)].map((m) => m[1]!);
      this.page = await this.continue();
    }
    return this.page;
  }

  /** Follows the "continue" button of an interstitial page (recovery codes) as a person would. */
  async continue(): Promise<Page> {
    const href = /<a class="button" href="([^"]+)"/.exec(this.page.html)?.[1];
    expect(href, 'a continue button').to.be.a('string');
    this.page = await this.agent.get(decodeEntities(href!));
    return this.page;
  }

  /** True when the last response sends the browser back to the relying party. */
  get returned(): boolean {
    return Boolean(this.page.location?.startsWith(REDIRECT_URI));
  }

  /** Exchanges the code as the RP and validates the ID token. @returns the ID token claims. */
  async finish() {
    expect(this.page.location, `expected a redirect to the RP, got ${this.page.status}: ${this.page.html.slice(0, 500)}`).to.be.a('string');
    const tokens = await oidc.authorizationCodeGrant(this.client.config, new URL(this.page.location!), {
      pkceCodeVerifier: this.verifier, expectedState: this.state, expectedNonce: this.nonce,
    });
    return { tokens, claims: tokens.claims()! };
  }
}
