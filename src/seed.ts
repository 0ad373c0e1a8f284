/**
 * First-start demo data for the embedded default: a demo relying party and a
 * demo user, created once. The password is random and printed once.
 */
import type { ClientService } from './oidc/clients.ts';
import type { UserService } from './users/users.ts';
import { randomString } from './lib/random.ts';

export const DEMO_CLIENT_ID = 'demo';
export const DEMO_EMAIL = 'demo@example.com';

/** @returns the credentials when they were created now, undefined when they already existed. */
export async function seedDemo(deps: { clients: ClientService; users: UserService; demoPort: number }): Promise<{ email: string; password: string; clientId: string } | undefined> {
  if (await deps.clients.find(DEMO_CLIENT_ID)) return undefined;
  const base = `http://localhost:${deps.demoPort}`;
  await deps.clients.create({
    clientId: DEMO_CLIENT_ID, name: 'Twofold demo app', public: true, firstParty: true, mfaPolicy: 'required',
    redirectUris: [`${base}/callback`], postLogoutRedirectUris: [`${base}/`],
  });
  // Readable but strong: 4 groups of 4 from an alphabet without look-alikes (~75 bits).
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const password = [0, 1, 2, 3].map(() => randomString(4, alphabet)).join('-');
  const existing = await deps.users.findByEmail(DEMO_EMAIL);
  if (existing) await deps.users.setPassword(existing.id, password);
  else await deps.users.create({ email: DEMO_EMAIL, name: 'Demo User', password });
  return { email: DEMO_EMAIL, password, clientId: DEMO_CLIENT_ID };
}
