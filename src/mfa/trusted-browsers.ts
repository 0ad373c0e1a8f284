/**
 * "Remember this browser": after a second factor, a person may let this
 * browser skip the second factor for this account for a number of days. The
 * trust is a server-side record the person sees and revokes on the security
 * page (an admin through the API). A remembered browser signs in with the
 * password alone and the ID token says so (`amr` ["pwd"], acr password): it
 * never satisfies a request for a second-factor level, and never claims a
 * factor that was not used.
 */
import type { TrustedBrowsersStore, TrustedBrowser } from '../store/trusted-browsers.ts';
import type { EventsStore } from '../store/events.ts';
import type { Clock } from '../lib/clock.ts';
import { randomToken } from '../lib/random.ts';
import { sha256 } from '../lib/hash.ts';

export interface TrustPolicy {
  /** How long a browser is remembered (0: never offered). */
  days: number;
  /** Which clients may offer it. */
  allowFor: 'none' | 'first-party' | 'all';
}

export type TrustedBrowsers = ReturnType<typeof createTrustedBrowsers>;

/** "Firefox on Linux" from a User-Agent; never the whole header. */
export function browserLabel(userAgent: string): string {
  const browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox' : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome'
    : /Safari\//.test(userAgent) ? 'Safari' : 'A browser';
  const system = /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS' : /Windows/.test(userAgent) ? 'Windows'
    : /Mac OS X/.test(userAgent) ? 'macOS' : /Linux/.test(userAgent) ? 'Linux' : 'an unknown system';
  return `${browser} on ${system}`;
}

export function createTrustedBrowsers(deps: { store: TrustedBrowsersStore; events: EventsStore; clock: Clock; policy: TrustPolicy }) {
  const { store, clock, policy } = deps;
  return {
    policy,

    /** Whether a client may offer "remember this browser". */
    allowedFor(client: { firstParty: boolean }): boolean {
      if (policy.days <= 0) return false;
      return policy.allowFor === 'all' || (policy.allowFor === 'first-party' && client.firstParty);
    },

    /** Remembers this browser for the user. @returns the token for the browser's cookie, and its lifetime. */
    async remember(userId: string, userAgent: string): Promise<{ token: string; maxAgeMs: number }> {
      const token = randomToken(32);
      const maxAgeMs = policy.days * 86_400_000;
      await store.insert({ id: sha256(token), userId, label: browserLabel(userAgent), expiresAt: clock.now() + maxAgeMs });
      await deps.events.record({ type: 'trusted_browser.added', userId, details: { days: policy.days } });
      return { token, maxAgeMs };
    },

    /** True when the token names a live trust of this user (and records the use). */
    async isTrusted(userId: string, token: string | undefined): Promise<boolean> {
      if (!token || token.length > 100) return false;
      return (await store.use(sha256(token), userId)) !== undefined;
    },

    list: (userId: string): Promise<TrustedBrowser[]> => store.listLive(userId),

    async revoke(userId: string, id: string, actor: string | null): Promise<boolean> {
      const ok = await store.revoke(userId, id);
      if (ok) await deps.events.record({ type: 'trusted_browser.revoked', userId, details: actor ? { actor } : {} });
      return ok;
    },

    async revokeAll(userId: string, actor: string | null): Promise<number> {
      const n = await store.revokeAll(userId);
      if (n > 0) await deps.events.record({ type: 'trusted_browser.revoked', userId, details: { count: n, ...(actor ? { actor } : {}) } });
      return n;
    },
  };
}
