/**
 * The short-lived JWT the verification API hands back (`token`): signed with
 * the provider's own key, so an app verifies it against `jwks_uri`.
 */
import { SignJWT, importJWK, type JWK } from 'jose';
import type { Clock } from '../lib/clock.ts';
import { randomToken } from '../lib/random.ts';

/** At most five minutes, per the verification API's contract. */
export const API_TOKEN_TTL_SECONDS = 300;

export type ApiTokenSigner = ReturnType<typeof createApiTokenSigner>;

export function createApiTokenSigner(deps: { issuer: string; jwk: JWK; clock: Clock }) {
  const key = importJWK(deps.jwk, 'RS256');
  return {
    /** @returns a compact JWS with iss, sub, aud, auth_time, amr, acr, iat, exp, jti. */
    async sign(claims: { sub: string; aud: string; amr: string[]; acr: string; authTime: number }): Promise<string> {
      const now = Math.floor(deps.clock.now() / 1000);
      return new SignJWT({ auth_time: claims.authTime, amr: claims.amr, acr: claims.acr })
        .setProtectedHeader({ alg: 'RS256', kid: deps.jwk.kid!, typ: 'JWT' })
        .setIssuer(deps.issuer).setSubject(claims.sub).setAudience(claims.aud)
        .setIssuedAt(now).setExpirationTime(now + API_TOKEN_TTL_SECONDS).setJti(randomToken(16))
        .sign(await key);
    },
  };
}
