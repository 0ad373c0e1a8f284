/** oidc-provider's view of a user: the claims it may put in tokens and userinfo. */
import type { FindAccount } from 'oidc-provider';
import type { UserService } from '../users/users.ts';

export function findAccountWith(users: UserService): FindAccount {
  return async (_ctx, sub) => {
    const user = await users.findById(sub);
    // A suspended user's tokens stop yielding claims at once.
    if (!user || user.status !== 'ACTIVE') return undefined;
    return {
      accountId: user.id,
      async claims() {
        return {
          sub: user.id,
          email: user.email,
          // Twofold does not verify addresses yet; say so rather than guess.
          email_verified: false,
          ...(user.name ? { name: user.name } : {}),
        };
      },
    };
  };
}
