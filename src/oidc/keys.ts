/**
 * Signing keys and cookie keys, generated on first start and kept sealed in
 * the database so restarts and other nodes keep sessions and tokens valid.
 */
import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import type { ProviderKeysStore, KeyKind } from '../store/provider-keys.ts';
import type { Sealer } from '../lib/seal.ts';
import { randomToken } from '../lib/random.ts';

export interface ProviderKeys {
  /** Private JWKs; the first one signs. */
  jwks: { keys: JWK[] };
  /** Cookie signing secrets; the first one signs, all verify. */
  cookieKeys: string[];
}

async function newSigningKey(): Promise<{ id: string; secret: string }> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { id: kid, secret: JSON.stringify({ ...jwk, kid, alg: 'RS256', use: 'sig' }) };
}

async function newCookieKey(): Promise<{ id: string; secret: string }> {
  const secret = randomToken(32);
  return { id: `cookie-${randomToken(8)}`, secret };
}

async function ensure(store: ProviderKeysStore, sealer: Sealer, kind: KeyKind, make: () => Promise<{ id: string; secret: string }>): Promise<string[]> {
  let rows = await store.listActive(kind);
  if (rows.length === 0) {
    const k = await make();
    await store.insert({ id: k.id, kind, sealed: sealer.seal(k.secret, `provider_key:${k.id}`) });
    // Re-read: when several nodes start at once each may add a key; all of
    // them then agree on the same ordered set.
    rows = await store.listActive(kind);
  }
  return rows.map((r) => sealer.openString(r.sealed, `provider_key:${r.id}`));
}

/** Loads the provider's keys, creating them the first time. */
export async function loadProviderKeys(store: ProviderKeysStore, sealer: Sealer): Promise<ProviderKeys> {
  const signing = await ensure(store, sealer, 'signing', newSigningKey);
  const cookieKeys = await ensure(store, sealer, 'cookie', newCookieKey);
  return { jwks: { keys: signing.map((s) => JSON.parse(s) as JWK) }, cookieKeys };
}
