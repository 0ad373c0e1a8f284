/**
 * Every API route, and what they are built from.
 */
import type { Config } from '../../config.ts';
import type { Clock } from '../../lib/clock.ts';
import type { UserService } from '../../users/users.ts';
import type { ClientService } from '../../oidc/clients.ts';
import type { ChallengeService } from '../../mfa/challenges.ts';
import type { SignInService } from '../../mfa/sign-in.ts';
import type { FactorService } from '../../mfa/factors/index.ts';
import type { FactorAdmin } from '../../mfa/factor-admin.ts';
import type { ApiKeyService } from '../../admin/api-keys.ts';
import type { ApiTokenSigner } from '../../oidc/api-token.ts';
import type { FactorsStore } from '../../store/factors.ts';
import type { EventsStore } from '../../store/events.ts';
import type { UsersStore } from '../../store/users.ts';
import type { Db } from '../../store/db.ts';
import type { Sealer } from '../../lib/seal.ts';
import type { ApiRoute } from './route.ts';
import { verificationRoutes } from './verification.ts';
import { userRoutes } from './users.ts';
import { clientRoutes } from './clients.ts';
import { eventRoutes } from './events.ts';
import { factorRoutes } from './factors.ts';
import type { TrustedBrowsers } from '../../mfa/trusted-browsers.ts';

export interface ApiDeps {
  config: Config;
  clock: Clock;
  db: Db;
  sealer: Sealer;
  users: UserService;
  clients: ClientService;
  challenges: ChallengeService;
  signIn: SignInService;
  factorService: FactorService;
  factorAdmin: FactorAdmin;
  apiKeys: ApiKeyService;
  tokens: ApiTokenSigner;
  /** Remembered browsers ("don't ask again on this browser"). */
  trust: TrustedBrowsers;
  /** Ends all of a user's sessions and revokes their tokens. @returns how many sessions ended. */
  endSessions(userId: string, actor: string | null): Promise<number>;
  stores: { users: UsersStore; factors: FactorsStore; events: EventsStore };
}

export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    ...verificationRoutes(deps),
    ...userRoutes(deps),
    ...factorRoutes(deps),
    ...clientRoutes(deps),
    ...eventRoutes(deps),
  ];
}
