/**
 * The interaction policy: upstream's login and consent prompts, plus a
 * `mfa_required` check on the login prompt. A session that lacks the second
 * factor this request needs is sent back through login (step-up), and
 * `prompt=none` fails with `login_required` instead of slipping through.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { MfaPolicy } from '../config.ts';
import { levelNeeded, requestedLevel, secondFactorRequirement, type Requirement } from '../mfa/policy.ts';
import { ACR, acrLevel } from '../mfa/amr.ts';

export interface PolicyDeps {
  globalPolicy: MfaPolicy;
  hasActiveFactor(userId: string): Promise<boolean>;
  /**
   * How long a sign-in counts for each level, in seconds (null: as long as
   * the session): a request needing that level from an older sign-in asks
   * for the second factor again.
   */
  freshness?: { mfa: number | null; phr: number | null };
  /** Milliseconds since the epoch. */
  now?: () => number;
  /** True when this browser is remembered for the user and the client may honour that. */
  trustedBrowser?: (ctx: KoaContextWithOIDC, userId: string, client: { firstParty: boolean }) => Promise<boolean>;
  /** True when the user skipped enrolment (grace) in the sign-in made at `loginMs`: that sign-in is not asked again. */
  skippedEnrollmentAt?: (userId: string, loginMs: number) => Promise<boolean>;
}

interface AcrParams {
  acr_values?: unknown;
  claims?: unknown;
}

/** acr values a request asked for: `acr_values`, and `claims.id_token.acr` value(s). */
export function requestedAcrs(params: AcrParams): string[] {
  const out: string[] = [];
  if (typeof params.acr_values === 'string') out.push(...params.acr_values.split(' ').filter(Boolean));
  let claims: unknown = params.claims;
  if (typeof claims === 'string') {
    try { claims = JSON.parse(claims); } catch { claims = undefined; }
  }
  const acr = (claims as { id_token?: { acr?: { value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  if (typeof acr?.value === 'string') out.push(acr.value);
  if (Array.isArray(acr?.values)) out.push(...acr.values.filter((v): v is string => typeof v === 'string'));
  return out;
}

/** The client's own MFA policy, or the global one. */
export function clientPolicy(metadata: Record<string, unknown>, globalPolicy: MfaPolicy): MfaPolicy {
  const p = metadata.twofold_mfa_policy;
  return p === 'off' || p === 'optional' || p === 'required' ? p : globalPolicy;
}

/** What this authorization request needs from this user beyond the password. */
export async function requirementFor(
  deps: PolicyDeps,
  input: { params: AcrParams; clientMetadata: Record<string, unknown>; userId: string },
): Promise<Requirement> {
  return secondFactorRequirement({
    policy: clientPolicy(input.clientMetadata, deps.globalPolicy),
    requestedAcrs: requestedAcrs(input.params),
    hasActiveFactor: await deps.hasActiveFactor(input.userId),
  });
}

export function createInteractionPolicy(deps: PolicyDeps) {
  const { Check, base } = interactionPolicy;
  const policy = base();
  policy.get('login')!.checks.add(new Check(
    'mfa_required',
    'a second factor is required',
    async (ctx: KoaContextWithOIDC) => {
      const { session, client, params } = ctx.oidc;
      if (!session?.accountId || !client) return Check.NO_NEED_TO_PROMPT;
      // Compare levels, not "has a second factor": a session signed in with a
      // code is asked for a passkey when the request needs phishing resistance.
      const needed = levelNeeded({
        policy: clientPolicy(client.metadata(), deps.globalPolicy),
        requestedAcrs: requestedAcrs(params ?? {}),
        hasActiveFactor: await deps.hasActiveFactor(session.accountId),
      });
      if (acrLevel(String(session.acr ?? '')) < needed) {
        // Enrolment skipped under grace in this very sign-in: only the policy
        // asked, so the password is enough this time. A requested level has no grace.
        // So does a remembered browser.
        if (requestedLevel(requestedAcrs(params ?? {})) >= acrLevel(ACR.mfa)) return Check.REQUEST_PROMPT;
        const graced = (deps.skippedEnrollmentAt && await deps.skippedEnrollmentAt(session.accountId, Number(session.loginTs ?? 0) * 1000))
          || (deps.trustedBrowser && await deps.trustedBrowser(ctx, session.accountId, { firstParty: client.metadata().twofold_first_party === true }));
        return graced ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
      }
      const limit = needed >= acrLevel(ACR.phr) ? deps.freshness?.phr : needed >= acrLevel(ACR.mfa) ? deps.freshness?.mfa : null;
      const age = (deps.now ?? Date.now)() / 1000 - Number(session.loginTs ?? 0);
      return limit != null && age > limit ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
    },
  ));
  return policy;
}
