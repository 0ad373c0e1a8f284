/**
 * OIDC clients live in our `clients` table; the provider reads them through
 * the adapter and never writes them.
 */
import type { ClientsStore, ClientRecord } from '../store/clients.ts';
import type { EventsStore } from '../store/events.ts';
import type { Sealer } from '../lib/seal.ts';
import type { MfaPolicy } from '../config.ts';
import { isUniqueViolation } from '../store/db.ts';
import { randomToken } from '../lib/random.ts';
import { AppError } from '../errors.ts';

export interface NewClient {
  clientId?: string;
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /** Public clients (SPAs, native apps) have no secret and must use PKCE. */
  public: boolean;
  firstParty: boolean;
  mfaPolicy: MfaPolicy | null;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,100}$/;

/** Redirect URIs must be absolute; plain http only for loopback (RFC 8252). */
function assertRedirectUri(uri: string, field: string): void {
  let url: URL;
  try { url = new URL(uri); } catch { throw new AppError('request.invalid', { message: `${uri} is not an absolute URL.`, details: { field } }); }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  const scheme = url.protocol.slice(0, -1);
  const allowed = scheme === 'https' || (scheme === 'http' && loopback) || scheme.includes('.');
  if (url.hash || !allowed) {
    throw new AppError('request.invalid', { message: `${uri} is not an allowed redirect URI (https, loopback http, or a private-use scheme; no fragment).`, details: { field } });
  }
}

export type ClientService = ReturnType<typeof createClientService>;

export function createClientService(deps: { clients: ClientsStore; events: EventsStore; sealer: Sealer }) {
  const { clients, events, sealer } = deps;
  const context = (id: string) => `client:${id}`;
  return {
    /**
     * @returns the record and, for confidential clients, the secret (shown once).
     * @throws AppError request.invalid, client.id_taken
     */
    async create(input: NewClient): Promise<{ client: ClientRecord; clientSecret: string | null }> {
      const clientId = input.clientId ?? randomToken(16);
      if (!CLIENT_ID.test(clientId)) throw new AppError('request.invalid', { message: 'A client id is 1–100 letters, digits, dots, dashes, underscores or tildes.', details: { field: 'clientId' } });
      if (input.redirectUris.length === 0) throw new AppError('request.invalid', { message: 'At least one redirect URI is needed.', details: { field: 'redirectUris' } });
      input.redirectUris.forEach((u) => assertRedirectUri(u, 'redirectUris'));
      (input.postLogoutRedirectUris ?? []).forEach((u) => assertRedirectUri(u, 'postLogoutRedirectUris'));
      const clientSecret = input.public ? null : randomToken(32);
      const metadata = {
        client_name: input.name,
        redirect_uris: input.redirectUris,
        post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: input.public ? 'none' : 'client_secret_basic',
      };
      try {
        const client = await clients.insert({
          clientId, metadata, clientSecretSealed: clientSecret ? sealer.seal(clientSecret, context(clientId)) : null,
          mfaPolicy: input.mfaPolicy, firstParty: input.firstParty,
        });
        await events.record({ type: 'client.created', clientId });
        return { client, clientSecret };
      } catch (err) {
        if (isUniqueViolation(err)) throw new AppError('client.id_taken');
        throw err;
      }
    },

    /** The metadata oidc-provider loads, secret and Twofold's own fields included. */
    async providerMetadata(clientId: string): Promise<Record<string, unknown> | undefined> {
      const c = await clients.find(clientId);
      if (!c) return undefined;
      return {
        ...c.metadata,
        client_id: c.clientId,
        ...(c.clientSecretSealed ? { client_secret: sealer.openString(c.clientSecretSealed, context(c.clientId)) } : {}),
        ...(c.mfaPolicy ? { twofold_mfa_policy: c.mfaPolicy } : {}),
        twofold_first_party: c.firstParty,
      };
    },

    find: (clientId: string) => clients.find(clientId),
    list: () => clients.list(),

    /** @throws AppError client.not_found */
    async delete(clientId: string): Promise<void> {
      if (!(await clients.delete(clientId))) throw new AppError('client.not_found');
      await events.record({ type: 'client.deleted', clientId });
    },
  };
}
