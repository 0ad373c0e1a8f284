/**
 * The four doors onto a user's second factor, opened and answered the way an
 * attacker would use them: the hosted pages (a form post, sent even when the
 * page shows no form), the JSON interaction API, the verification API and the
 * management API's factor verify. Every answer is read into one Verdict, so
 * a test asks the same question of every door.
 */
import { expect } from 'chai';
import { SignIn, REDIRECT_URI, createUser, giveAuthenticator, totpNow, type TestClient } from './oidc-flow.ts';
import { alertText, decodeEntities } from './agent.ts';
import type { TestServer } from './server.ts';
import { generateTotp } from '../../src/mfa/factors/totp.ts';

export type DoorName = 'hosted' | 'json' | 'api' | 'management';

/** What a door said about an answer, whatever its dialect (page, JSON, Okta). */
export type Outcome = 'accepted' | 'invalid' | 'locked' | 'too_many_attempts' | 'not_found' | 'rate_limited' | 'other';

export interface Verdict {
  door: DoorName;
  status: number;
  outcome: Outcome;
  /** Seconds, when the door said how long to wait (hosted pages say minutes). */
  retryAfter: number | null;
  body: string;
}

export interface Door {
  name: DoorName;
  answer(code: string, methodId?: string): Promise<Verdict>;
}

export interface Victim {
  id: string;
  email: string;
  password: string;
  secret: string;
  factorId: string;
}

export const PASSWORD = 'correct horse battery staple';

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

const ERROR_OUTCOMES: Record<string, Outcome> = {
  'mfa.invalid_code': 'invalid',
  'mfa.locked': 'locked',
  'mfa.too_many_attempts': 'too_many_attempts',
  'mfa.challenge_not_found': 'not_found',
  'request.rate_limited': 'rate_limited',
};

function parse(text: string): Record<string, any> {
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    return {};
  }
}

function fromJson(door: DoorName, status: number, text: string): Verdict {
  const body = parse(text);
  const retryAfter = typeof body.details?.retryAfter === 'number' ? body.details.retryAfter as number : null;
  if (status === 200) return { door, status, outcome: 'accepted', retryAfter, body: text };
  // Okta's wrong-code answer (management API).
  if (status === 403 && body.errorCode === 'E0000068') return { door, status, outcome: 'invalid', retryAfter, body: text };
  return { door, status, outcome: ERROR_OUTCOMES[String(body.error)] ?? 'other', retryAfter, body: text };
}

function fromPage(status: number, location: string | null, html: string): Verdict {
  const alert = alertText(html) ?? '';
  const minutes = /Try again in (\d+) minute/.exec(alert)?.[1];
  const retryAfter = minutes ? Number(minutes) * 60 : null;
  let outcome: Outcome = 'other';
  if (location?.startsWith(REDIRECT_URI) && new URL(location).searchParams.has('code')) outcome = 'accepted';
  // The interstitials a person reads after a right answer before going on.
  else if (status === 200 && /<h1>(Recovery code used|Save your recovery codes)<\/h1>/.test(html)) outcome = 'accepted';
  else if (status === 400 && (alert === 'That code is not correct. Check your authenticator app and try again.'
    || alert === 'That recovery code is not correct or was already used.')) outcome = 'invalid';
  else if (status === 429 && /is locked for this account/.test(alert)) outcome = 'locked';
  else if (status === 429 && html.includes('<h1>Sign-in stopped</h1>')) outcome = 'too_many_attempts';
  else if (status === 429 && /Too many requests/.test(html)) outcome = 'rate_limited';
  else if (status === 404) outcome = 'not_found';
  return { door: 'hosted', status, outcome, retryAfter, body: html };
}

/** A 6-digit code that no time step in the accepted window (±1 step) matches. */
export async function wrongCode(server: TestServer, secret: string): Promise<string> {
  const settings = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
  const valid = await Promise.all([-30_000, 0, 30_000].map((d) => generateTotp({ secret, settings, nowMs: server.clock.now() + d })));
  for (let n = 0; ; n += 1) {
    const code = String(n * 111_111 % 1_000_000).padStart(6, '0');
    if (!valid.includes(code)) return code;
  }
}

/** The user's audit events of the given types, oldest first. */
export async function eventsOf(server: TestServer, userId: string, ...types: string[]): Promise<Array<{ id: number; type: string; ip: string | null; details: Record<string, unknown> }>> {
  const rows = await server.db('events').where({ user_id: userId }).whereIn('type', types).orderBy('id');
  return rows.map((r: { id: number | string; type: string; ip: string | null; details: string }) => ({
    id: Number(r.id), type: r.type, ip: r.ip, details: JSON.parse(r.details) as Record<string, unknown>,
  }));
}

/** How many answers had each outcome, e.g. `{ invalid: 3, locked: 47 }`. */
export function tally(verdicts: Verdict[]): Partial<Record<Outcome, number>> {
  const counts: Partial<Record<Outcome, number>> = {};
  for (const v of verdicts) counts[v.outcome] = (counts[v.outcome] ?? 0) + 1;
  return counts;
}

export type Doors = ReturnType<typeof createDoors>;

/**
 * @param adminKey an API key with factors:read and factors:write (management door, lock-out state)
 */
export function createDoors(server: TestServer, client: TestClient, adminKey: string) {
  let victims = 0;
  let keys = 0;

  async function post(path: string, body: unknown, apiKey: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`${server.origin}${path}`, {
      method: 'POST', headers: { ...JSON_HEADERS, authorization: `Bearer ${apiKey}` }, body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }

  /**
   * A key of its own for each verification-API door: a challenge is bound to
   * the key that started it, and a new one voids the key's earlier ones.
   */
  async function loginKey(): Promise<string> {
    keys += 1;
    return (await server.app.services.apiKeys.create({ name: `attacked-app-${keys}`, scopes: ['login'] })).key;
  }

  return {
    loginKey,

    /** A user with a password and an active authenticator app. */
    async victim(prefix = 'victim'): Promise<Victim> {
      victims += 1;
      const email = `${prefix}-${victims}@example.com`;
      const user = await createUser(server, email, PASSWORD);
      const { secret, factorId } = await giveAuthenticator(server, user.id);
      return { id: user.id, email, password: PASSWORD, secret, factorId };
    },

    right: (v: Victim) => totpNow(server, v.secret),
    wrong: (v: Victim) => wrongCode(server, v.secret),

    /**
     * A sign-in on the hosted pages, past the password. Answers are posted to
     * the interaction's two-factor endpoint with the page's CSRF token, also
     * when the page (locked) shows no code form.
     */
    async hosted(v: Victim): Promise<Door & { flow: SignIn; uidPath: string }> {
      const flow = new SignIn(server, client);
      await flow.start();
      const page = await flow.password(v.email, v.password);
      expect(page.status, `the second-factor page: ${alertText(page.html) ?? page.html.slice(0, 300)}`).to.be.oneOf([200, 429]);
      expect(page.html).to.include('<h1>Two-step verification</h1>');
      const uidPath = new URL(page.url).pathname;
      const csrf = decodeEntities(/name="_csrf" value="([^"]+)"/.exec(page.html)![1]!);
      return {
        name: 'hosted', flow, uidPath,
        async answer(code, methodId) {
          const sent = await flow.agent.request('POST', `${uidPath}/two-factor`, { _csrf: csrf, code, ...(methodId ? { methodId } : {}) });
          const last = await flow.agent.follow(sent);
          return fromPage(last.status, last.location, last.html);
        },
      };
    },

    /** A first-party app's own screens on the JSON interaction API, past the password (242). */
    async json(v: Victim): Promise<Door & { flow: SignIn; uidPath: string; twoFactorId: string }> {
      const flow = new SignIn(server, client);
      const uidPath = new URL((await flow.start()).url).pathname;
      const pwd = await flow.agent.request('POST', `${uidPath}/login`, JSON.stringify({ loginId: v.email, password: v.password }), JSON_HEADERS);
      expect(pwd.status, pwd.html).to.equal(242);
      const { twoFactorId } = parse(pwd.html) as { twoFactorId: string };
      return {
        name: 'json', flow, uidPath, twoFactorId,
        async answer(code, methodId) {
          const res = await flow.agent.request('POST', `${uidPath}/two-factor`, JSON.stringify({ twoFactorId, code, ...(methodId ? { methodId } : {}) }), JSON_HEADERS);
          return fromJson('json', res.status, res.html);
        },
      };
    },

    /**
     * The verification API: a challenge begun by `/api/login` (password) or
     * `/api/two-factor/start` (the app vouches for the first factor).
     */
    async api(v: Victim, via: 'login' | 'start' = 'login', apiKey?: string): Promise<Door & { twoFactorId: string; apiKey: string }> {
      const key = apiKey ?? await loginKey();
      const begun = via === 'login'
        ? await post('/api/login', { loginId: v.email, password: v.password, applicationId: client.clientId }, key)
        : await post('/api/two-factor/start', { userId: v.id, applicationId: client.clientId }, key);
      expect(begun.status, begun.text).to.equal(via === 'login' ? 242 : 200);
      const { twoFactorId } = parse(begun.text) as { twoFactorId: string };
      return {
        name: 'api', twoFactorId, apiKey: key,
        async answer(code, methodId) {
          const res = await post('/api/two-factor/login', { twoFactorId, code, ...(methodId ? { methodId } : {}) }, key);
          return fromJson('api', res.status, res.text);
        },
      };
    },

    /** The management API's factor verify (Okta's shape): no challenge, just the factor. */
    management(v: Victim): Door {
      return {
        name: 'management',
        async answer(code) {
          const res = await post(`/api/v1/users/${v.id}/factors/${v.factorId}/verify`, { passCode: code }, adminKey);
          return fromJson('management', res.status, res.text);
        },
      };
    },

    /** One door of each kind, opened for the user. */
    async everyDoor(v: Victim): Promise<Door[]> {
      return [await this.hosted(v), await this.json(v), await this.api(v), this.management(v)];
    },

    /** The lock-out state as the management API reports it. */
    async lockout(v: Victim): Promise<{ locked: boolean; lockedUntil: string | null; failures: number }> {
      const res = await fetch(`${server.origin}/api/v1/users/${v.id}/lockout`, { headers: { authorization: `Bearer ${adminKey}` } });
      expect(res.status).to.equal(200);
      return await res.json() as { locked: boolean; lockedUntil: string | null; failures: number };
    },
  };
}
