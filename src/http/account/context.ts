/**
 * What every part of the security page shares: its dependencies, who is
 * signed in, and the gate in front of sensitive changes (a second factor
 * answered in the last few minutes, never just the session).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ChallengeService } from '../../mfa/challenges.ts';
import type { FactorService } from '../../mfa/factors/index.ts';
import type { FactorAdmin } from '../../mfa/factor-admin.ts';
import type { UserService } from '../../users/users.ts';
import type { User } from '../../store/users.ts';
import type { Factor } from '../../store/factors.ts';
import type { TrustedBrowsers } from '../../mfa/trusted-browsers.ts';
import type { Passkeys } from '../../mfa/passkeys.ts';
import type { Devices } from '../../push/devices.ts';
import type { AppError } from '../../errors.ts';
import { render } from '../render.ts';
import { renderConfirm } from './confirm.ts';

export const ACCOUNT_CLIENT_ID = 'twofold-account';
/** How long a second factor answered on this page keeps sensitive changes open. */
const FRESH_SECONDS = 300;

export interface AccountDeps {
  provider: Provider;
  issuer: string;
  stateKey: string;
  users: UserService;
  challenges: ChallengeService;
  factorService: FactorService;
  /** Removes a factor of this user. @throws AppError factor.not_found */
  removeFactor(userId: string, factorId: string): Promise<void>;
  /** Renames a factor of this user. @throws AppError factor.not_found, request.invalid */
  renameFactor(userId: string, factorId: string, name: string): Promise<void>;
  /** Passkey registration and checks; without it the page offers no passkeys. */
  passkeys?: Passkeys;
  /** Linked devices (push approval); without it the page offers no devices. */
  devices?: Devices;
  /**
   * Email and SMS enrolment and recovery codes, as the management API does
   * them; without it the page offers neither.
   */
  factorAdmin?: Pick<FactorAdmin, 'enrollDelivered' | 'resend' | 'activate' | 'regenerateRecoveryCodes' | 'recoveryCodesLeft'>;
  /** Ends every session of the user, with its tokens. */
  endSessions(userId: string, actor: string | null): Promise<number>;
  /** Browsers remembered for the user ("don't ask again on this browser"); without it the page lists none. */
  trust?: Pick<TrustedBrowsers, 'list' | 'revoke'>;
}

/** The signed-in user, and the binding of this session's confirm challenge. */
export interface Me {
  user: User;
  binding: string;
}

export interface ConfirmOptions {
  error?: AppError | undefined;
  /** The code method to show (a challenge method id); the first code method when absent. */
  methodId?: string | undefined;
  notice?: string | undefined;
}

export interface AccountKit {
  deps: AccountDeps;
  /** The signed-in user, or undefined after answering with a redirect to sign in. */
  signedIn(ctx: Context): Promise<Me | undefined>;
  /** True when this session answered a second factor within the last few minutes. */
  fresh(binding: string): Promise<boolean>;
  activeFactors(userId: string): Promise<Factor[]>;
  /** Adding a way to sign in next to existing ones needs a fresh second factor; the first needs only the session. */
  mayAddFactor(me: Me): Promise<boolean>;
  /** Asks for a second factor before a sensitive change; `next` is where the change continues. */
  confirmPage(ctx: Context, me: Me, next: string, opts?: ConfirmOptions): Promise<void>;
  /** Shows new recovery codes, the only time they are readable. */
  recoveryCodesPage(ctx: Context, codes: string[], next: string): Promise<void>;
}

/** One part of the page: adds its routes to the account router. */
export type AccountRoutes = (router: Router, kit: AccountKit) => void;

/** How the page names a kind of factor. */
export function kindOf(f: Factor): string {
  if (f.type === 'webauthn') return f.settings.deviceType === 'multiDevice' ? 'Passkey' : 'Security key';
  if (f.type === 'email') return 'Email codes';
  if (f.type === 'sms') return 'Text message codes';
  return 'Authenticator app';
}

/** 303 to a page of the account area. */
export function seeOther(ctx: Context, url: string): void {
  ctx.status = 303;
  ctx.redirect(url);
}

export function accountKit(deps: AccountDeps): AccountKit {
  const { provider, challenges, factorService, users } = deps;

  async function activeFactors(userId: string) {
    return (await factorService.listForUser(userId)).filter((f) => f.status === 'ACTIVE');
  }

  const fresh = (binding: string) => challenges.hasFreshSuccess(binding, FRESH_SECONDS);

  return {
    deps,
    fresh,
    activeFactors,

    async signedIn(ctx) {
      const session = await provider.Session.get(ctx);
      const user = session.accountId ? await users.findById(session.accountId) : undefined;
      if (!user || user.status !== 'ACTIVE') {
        seeOther(ctx, '/account/login');
        return undefined;
      }
      return { user, binding: `account:${session.uid}` };
    },

    async mayAddFactor(me) {
      // A linked push device is a second factor too: only a user with neither adds one on the session alone.
      const hasAny = (await activeFactors(me.user.id)).length > 0 || Boolean(deps.devices && await deps.devices.hasActive(me.user.id));
      return !hasAny || fresh(me.binding);
    },

    confirmPage: (ctx, me, next, opts = {}) => renderConfirm(ctx, deps, me, next, opts),

    async recoveryCodesPage(ctx, codes, next) {
      await render(ctx, 'account/recovery-codes', { title: 'Save your recovery codes', codes, next });
    },
  };
}
