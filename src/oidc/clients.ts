/**
 * OIDC clients live in our `clients` table; the provider reads them through
 * the adapter and never writes them.
 *
 * oidc-provider keeps no stale copy: `Client.find` asks the adapter on every
 * request and caches built clients by a hash of the metadata it got back
 * (lib/models/client.js, an LRU of 100), so an update or a deletion takes
 * effect on the next request without any invalidation here.
 *
 * Longer than ~300 lines: callback registration (URL check, whsec_ secret,
 * rotation, re-enable) is part of the client it configures.
 */
import type { ClientsStore, ClientRecord, ClientChanges } from '../store/clients.ts';
import type { EventsStore } from '../store/events.ts';
import type { Db } from '../store/db.ts';
import type { Sealer } from '../lib/seal.ts';
import type { MfaPolicy } from '../config.ts';
import { isUniqueViolation } from '../store/db.ts';
import { randomToken } from '../lib/random.ts';
import { AppError } from '../errors.ts';
import { assertPublicUrl, UnsafeUrlError, type UrlPolicy } from '../lib/network.ts';
import { callbackSecretContext, newCallbackSecret } from '../delivery/callbacks.ts';

export interface NewClient {
  clientId?: string;
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /** Public clients (SPAs, native apps) have no secret and must use PKCE. */
  public: boolean;
  firstParty: boolean;
  mfaPolicy: MfaPolicy | null;
  /** Where challenge outcomes are POSTed; setting one generates its signing secret. */
  callbackUrl?: string | null;
  /** May also use the client_credentials grant (machine-to-machine; confidential clients only). */
  clientCredentials?: boolean;
}

/** What an update may change; absent means unchanged. Public/confidential is fixed at creation. */
export interface ClientUpdate {
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  firstParty?: boolean;
  mfaPolicy?: MfaPolicy | null;
  /** null removes the callback and its secret; a first URL generates a secret, a new URL keeps it. */
  callbackUrl?: string | null;
}

export type CallbackStatus = 'active' | 'disabled';

/** Who changed a client, for the audit trail. */
export interface ClientAuditContext {
  actor?: string;
  ip?: string;
}

/** A client as people and APIs see it: never the secret or its sealed form. */
export interface ClientView {
  clientId: string;
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  public: boolean;
  firstParty: boolean;
  mfaPolicy: MfaPolicy | null;
  clientCredentials: boolean;
  callbackUrl: string | null;
  /** null when the client has no callback URL. */
  callbackStatus: CallbackStatus | null;
  callbackDisabledAt: number | null;
  createdAt: number;
  updatedAt: number;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,100}$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const MAX_NAME = 200;

/** A scheme with a dot is a private-use (reverse domain) scheme: a native app (RFC 8252 §7.1). */
const isPrivateUse = (url: URL) => url.protocol.slice(0, -1).includes('.');

/**
 * Redirect URIs must be absolute; plain http only for loopback (RFC 8252).
 * A native client (one with any private-use scheme) may not use https on
 * loopback, which oidc-provider refuses for native clients.
 */
function assertRedirectUri(uri: string, field: string, native: boolean): void {
  let url: URL;
  try { url = new URL(uri); } catch { throw new AppError('request.invalid', { message: `${uri} is not an absolute URL.`, details: { field } }); }
  const loopback = LOOPBACK.has(url.hostname);
  const scheme = url.protocol.slice(0, -1);
  const allowed = (scheme === 'https' && !(native && loopback)) || (scheme === 'http' && loopback) || isPrivateUse(url);
  if (uri.includes('#') || !allowed) {
    throw new AppError('request.invalid', {
      message: `${uri} is not an allowed redirect URI (https, loopback http, or a private-use scheme; no fragment; no https on loopback next to a private-use scheme).`,
      details: { field },
    });
  }
}

/**
 * The provider metadata for a client's editable fields, validated so that
 * oidc-provider accepts it when it loads the client: a client it refuses
 * could never sign anyone in.
 * @throws AppError request.invalid naming the field
 */
function metadataOf(f: { name: string; redirectUris: string[]; postLogoutRedirectUris: string[]; public: boolean; clientCredentials?: boolean | undefined }): Record<string, unknown> {
  if (f.clientCredentials && f.public) {
    throw new AppError('request.invalid', { message: 'Only a confidential client (with a secret) may use client credentials.', details: { field: 'clientCredentials' } });
  }
  const name = f.name.normalize('NFC').trim();
  if (name.length === 0 || name.length > MAX_NAME) {
    throw new AppError('request.invalid', { message: `A client name is 1–${MAX_NAME} characters.`, details: { field: 'name' } });
  }
  if (f.redirectUris.length === 0) throw new AppError('request.invalid', { message: 'At least one redirect URI is needed.', details: { field: 'redirectUris' } });
  // oidc-provider accepts private-use schemes only from native clients (client_schema.js redirectUris()).
  const native = [...f.redirectUris, ...f.postLogoutRedirectUris].some((u) => URL.canParse(u) && isPrivateUse(new URL(u)));
  f.redirectUris.forEach((u) => assertRedirectUri(u, 'redirectUris', native));
  f.postLogoutRedirectUris.forEach((u) => assertRedirectUri(u, 'postLogoutRedirectUris', native));
  return {
    client_name: name,
    application_type: native ? 'native' : 'web',
    redirect_uris: [...new Set(f.redirectUris)],
    post_logout_redirect_uris: [...new Set(f.postLogoutRedirectUris)],
    grant_types: ['authorization_code', 'refresh_token', ...(f.clientCredentials ? ['client_credentials'] : [])],
    response_types: ['code'],
    token_endpoint_auth_method: f.public ? 'none' : 'client_secret_basic',
  };
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The public view of a stored client. */
export function clientView(c: ClientRecord): ClientView {
  return {
    clientId: c.clientId,
    name: String(c.metadata.client_name ?? ''),
    redirectUris: strings(c.metadata.redirect_uris),
    postLogoutRedirectUris: strings(c.metadata.post_logout_redirect_uris),
    public: c.metadata.token_endpoint_auth_method === 'none',
    firstParty: c.firstParty,
    mfaPolicy: c.mfaPolicy,
    clientCredentials: strings(c.metadata.grant_types).includes('client_credentials'),
    callbackUrl: c.callbackUrl,
    callbackStatus: c.callbackUrl === null ? null : c.callbackDisabledAt === null ? 'active' : 'disabled',
    callbackDisabledAt: c.callbackUrl === null ? null : c.callbackDisabledAt,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
}

export type ClientService = ReturnType<typeof createClientService>;

export interface ClientServiceDeps {
  clients: ClientsStore;
  events: EventsStore;
  sealer: Sealer;
  /**
   * How callback URLs are checked. Absent: the production rule (https to
   * public addresses only); development and tests allow loopback http.
   */
  callbackUrls?: UrlPolicy;
}

export function createClientService(deps: ClientServiceDeps) {
  const { clients, events, sealer } = deps;
  const urlPolicy: UrlPolicy = deps.callbackUrls ?? { allowLoopbackHttp: false };
  const context = (id: string) => `client:${id}`;

  /**
   * https to a host whose every address is public (loopback http when the
   * policy allows). Checked here and again at each delivery.
   * @returns the URL as given; null stays null
   * @throws AppError request.invalid naming callbackUrl
   */
  async function checkCallbackUrl(url: string | null): Promise<string | null> {
    if (url === null) return null;
    try {
      await assertPublicUrl(url, urlPolicy);
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new AppError('request.invalid', { message: `Callback URL: ${err.message}`, details: { field: 'callbackUrl' } });
      throw err;
    }
    return url;
  }

  /** The callback columns that set `url` (checked; undefined: unchanged) on the client as it is. */
  function callbackChanges(current: ClientRecord, url: string | null | undefined): { changes: ClientChanges; secret: string | null } {
    if (url === undefined) return { changes: {}, secret: null };
    if (url === null) return { changes: { callbackUrl: null, callbackSecretSealed: null, callbackDisabledAt: null, callbackFailures: 0 }, secret: null };
    // A new URL for the same receiver keeps its secret, and its status: re-enabling is explicit.
    if (current.callbackUrl !== null && current.callbackSecretSealed !== null) return { changes: { callbackUrl: url }, secret: null };
    const secret = newCallbackSecret();
    const callbackSecretSealed = sealer.seal(secret, callbackSecretContext(current.clientId));
    return { changes: { callbackUrl: url, callbackSecretSealed, callbackDisabledAt: null, callbackFailures: 0 }, secret };
  }

  /** @throws AppError request.invalid (naming callbackUrl) for a client without a callback URL. */
  const noCallback = () => new AppError('request.invalid', { message: 'This client has no callback URL.', details: { field: 'callbackUrl' } });

  /** Records an event about `clientId` inside `trx`. Never a secret in `details`. */
  function audit(trx: Db, type: 'client.created' | 'client.updated' | 'client.deleted', clientId: string, ctx: ClientAuditContext, details: Record<string, unknown> = {}) {
    return events.record({ type, clientId, ip: ctx.ip ?? null, details: { ...details, ...(ctx.actor ? { actor: ctx.actor } : {}) } }, trx);
  }

  /** @throws AppError client.not_found */
  async function get(clientId: string): Promise<ClientRecord> {
    const client = await clients.find(clientId);
    if (!client) throw new AppError('client.not_found');
    return client;
  }

  return {
    /**
     * @returns the record and, for confidential clients, the secret; with a
     *   callback URL, its signing secret (each shown once).
     * @throws AppError request.invalid (naming the field), client.id_taken
     */
    async create(input: NewClient, ctx: ClientAuditContext = {}): Promise<{ client: ClientRecord; clientSecret: string | null; callbackSecret: string | null }> {
      const clientId = input.clientId ?? randomToken(16);
      if (!CLIENT_ID.test(clientId)) throw new AppError('request.invalid', { message: 'A client id is 1–100 letters, digits, dots, dashes, underscores or tildes.', details: { field: 'clientId' } });
      const metadata = metadataOf({ ...input, postLogoutRedirectUris: input.postLogoutRedirectUris ?? [] });
      const callbackUrl = await checkCallbackUrl(input.callbackUrl ?? null);
      const clientSecret = input.public ? null : randomToken(32);
      const callbackSecret = callbackUrl ? newCallbackSecret() : null;
      try {
        const client = await clients.transaction(async (trx) => {
          const inserted = await clients.insert({
            clientId, metadata, clientSecretSealed: clientSecret ? sealer.seal(clientSecret, context(clientId)) : null,
            mfaPolicy: input.mfaPolicy, firstParty: input.firstParty,
            callbackUrl, callbackSecretSealed: callbackSecret ? sealer.seal(callbackSecret, callbackSecretContext(clientId)) : null,
          }, trx);
          await audit(trx, 'client.created', clientId, ctx);
          return inserted;
        });
        return { client, clientSecret, callbackSecret };
      } catch (err) {
        if (isUniqueViolation(err)) throw new AppError('client.id_taken');
        throw err;
      }
    },

    /**
     * Changes the given fields, validated as on creation against the client
     * as it will be. The provider sees the change on its next request.
     * @returns the client and, when the patch gave it its first callback
     *   URL, the new callback secret (shown once; otherwise null).
     * @throws AppError client.not_found, request.invalid (naming the field)
     */
    async update(clientId: string, patch: ClientUpdate, ctx: ClientAuditContext = {}): Promise<{ client: ClientRecord; callbackSecret: string | null }> {
      // Resolved before the transaction: no DNS wait while holding the row lock.
      const callbackUrl = patch.callbackUrl === undefined ? undefined : await checkCallbackUrl(patch.callbackUrl);
      return clients.transaction(async (trx) => {
        const current = await clients.findForUpdate(clientId, trx);
        if (!current) throw new AppError('client.not_found');
        const view = clientView(current);
        const metadata = metadataOf({
          name: patch.name ?? view.name, public: view.public, clientCredentials: view.clientCredentials,
          redirectUris: patch.redirectUris ?? view.redirectUris,
          postLogoutRedirectUris: patch.postLogoutRedirectUris ?? view.postLogoutRedirectUris,
        });
        const callback = callbackChanges(current, callbackUrl);
        const updated = await clients.update(clientId, {
          metadata: { ...current.metadata, ...metadata },
          ...(patch.firstParty !== undefined ? { firstParty: patch.firstParty } : {}),
          ...(patch.mfaPolicy !== undefined ? { mfaPolicy: patch.mfaPolicy } : {}),
          ...callback.changes,
        }, { trx });
        await audit(trx, 'client.updated', clientId, ctx, { changed: Object.keys(patch).filter((k) => patch[k as keyof ClientUpdate] !== undefined).sort() });
        return { client: updated!, callbackSecret: callback.secret };
      });
    },

    /**
     * Replaces the callback signing secret. Every attempt from now on is
     * signed with the new one, retries of older events included, so the
     * receiver should accept both secrets while it switches over.
     * @returns the new secret (shown once).
     * @throws AppError client.not_found, request.invalid (no callback URL)
     */
    async rotateCallbackSecret(clientId: string, ctx: ClientAuditContext = {}): Promise<string> {
      const secret = newCallbackSecret();
      const rotated = await clients.transaction(async (trx) => {
        const updated = await clients.update(clientId, { callbackSecretSealed: sealer.seal(secret, callbackSecretContext(clientId)) }, { ifCallback: true, trx });
        if (updated) await audit(trx, 'client.updated', clientId, ctx, { changed: ['callbackSecret'] });
        return updated !== undefined;
      });
      if (!rotated) {
        await get(clientId);
        throw noCallback();
      }
      return secret;
    },

    /**
     * Re-enables a callback that delivery disabled, with a fresh failure
     * count. Events given up on while it was disabled are not resent.
     * Idempotent for an active callback.
     * @throws AppError client.not_found, request.invalid (no callback URL)
     */
    async enableCallback(clientId: string, ctx: ClientAuditContext = {}): Promise<ClientRecord> {
      const enabled = await clients.transaction(async (trx) => {
        const updated = await clients.update(clientId, { callbackDisabledAt: null, callbackFailures: 0 }, { ifCallback: true, trx });
        if (updated) await audit(trx, 'client.updated', clientId, ctx, { changed: ['callbackStatus'] });
        return updated;
      });
      if (!enabled) {
        await get(clientId);
        throw noCallback();
      }
      return enabled;
    },

    /**
     * Replaces a confidential client's secret; the old one stops working at
     * once (no overlap), so the caller deploys the new one first.
     * @returns the new secret (shown once).
     * @throws AppError client.not_found, client.no_secret
     */
    async rotateSecret(clientId: string, ctx: ClientAuditContext = {}): Promise<string> {
      const clientSecret = randomToken(32);
      const rotated = await clients.transaction(async (trx) => {
        // Conditional on having a secret: a public client must not gain one.
        const updated = await clients.update(clientId, { clientSecretSealed: sealer.seal(clientSecret, context(clientId)) }, { ifConfidential: true, trx });
        if (updated) await audit(trx, 'client.updated', clientId, ctx, { changed: ['secret'] });
        return updated !== undefined;
      });
      if (!rotated) {
        await get(clientId);
        throw new AppError('client.no_secret');
      }
      return clientSecret;
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
    get,
    list: () => clients.list(),

    /**
     * Deletes the client with every grant and token issued to it, so a later
     * client with the same id starts from nothing.
     * @throws AppError client.not_found
     */
    async delete(clientId: string, ctx: ClientAuditContext = {}): Promise<void> {
      const deleted = await clients.transaction(async (trx) => {
        if (!(await clients.delete(clientId, trx))) return false;
        await audit(trx, 'client.deleted', clientId, ctx);
        return true;
      });
      if (!deleted) throw new AppError('client.not_found');
    },
  };
}
