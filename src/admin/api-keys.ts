/**
 * API keys for the management and verification APIs: `tfk_<prefix>_<secret>`,
 * shown once, stored as a SHA-256 hash, scoped and revocable.
 */
import type { ApiKeysStore, ApiKeyRecord } from '../store/api-keys.ts';
import type { EventsStore } from '../store/events.ts';
import { randomString, randomToken, uuid } from '../lib/random.ts';
import { safeEqual, sha256 } from '../lib/hash.ts';
import { AppError } from '../errors.ts';

export const SCOPES = [
  'users:read', 'users:write', 'factors:read', 'factors:write',
  'clients:read', 'clients:write', 'events:read', 'login',
] as const;
export type Scope = (typeof SCOPES)[number];

const KEY = /^tfk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

export function createApiKeyService(deps: { keys: ApiKeysStore; events: EventsStore }) {
  const { keys, events } = deps;
  return {
    /**
     * @returns the record and the key itself, which is never shown again.
     * @throws AppError request.invalid for an unknown scope or a missing name
     */
    async create(input: { name: string; scopes: string[] }): Promise<{ key: string; record: ApiKeyRecord }> {
      const unknown = input.scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0 || input.scopes.length === 0) {
        throw new AppError('request.invalid', { message: `Scopes must be some of: ${SCOPES.join(', ')}.`, details: { field: 'scopes', unknown } });
      }
      if (!input.name.trim()) throw new AppError('request.invalid', { message: 'A key needs a name.', details: { field: 'name' } });
      const prefix = randomString(12, 'abcdefghijklmnopqrstuvwxyz0123456789');
      const key = `tfk_${prefix}_${randomToken(32)}`;
      const record = await keys.insert({ id: uuid(), prefix, name: input.name.trim(), hash: sha256(key), scopes: [...new Set(input.scopes)] });
      await events.record({ type: 'api_key.created', details: { keyId: record.id, prefix, scopes: record.scopes } });
      return { key, record };
    },

    /**
     * The live key a presented secret belongs to. Unknown, malformed and
     * revoked keys are all just "no key" (undefined).
     */
    async authenticate(presented: string): Promise<ApiKeyRecord | undefined> {
      const m = KEY.exec(presented);
      if (!m) return undefined;
      const record = await keys.findByPrefix(m[1]!);
      if (!record || record.revokedAt !== null || !safeEqual(record.hash, sha256(presented))) return undefined;
      await keys.touch(record.id);
      return record;
    },

    list: () => keys.list(),

    /** @throws AppError request.not_found */
    async revoke(idOrPrefix: string): Promise<void> {
      if (!(await keys.revoke(idOrPrefix))) throw new AppError('request.not_found', { message: 'No such active API key.' });
      await events.record({ type: 'api_key.revoked', details: { key: idOrPrefix } });
    },
  };
}
