/** Response shapes shared by several API routes. */
import { z } from 'zod';
import type { User } from '../../store/users.ts';

export const UserBody = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  status: z.enum(['ACTIVE', 'SUSPENDED']),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** A user as APIs show it: never the password hash. */
export function userBody(u: User): z.infer<typeof UserBody> {
  return {
    id: u.id, email: u.email, name: u.name, status: u.status,
    createdAt: new Date(u.createdAt).toISOString(), updatedAt: new Date(u.updatedAt).toISOString(),
  };
}

export const MethodBody = z.object({
  id: z.string(),
  method: z.string(),
  authenticator: z.object({ algorithm: z.string(), codeLength: z.number(), timeStep: z.number() }).optional(),
  enrollment: z.object({ secret: z.string(), uri: z.string() }).optional(),
  email: z.string().optional(),
  mobilePhone: z.string().optional(),
  /** Passkeys: options for navigator.credentials.get(); send the result as `credential`. */
  webauthn: z.object({ options: z.unknown() }).optional(),
});

export const PendingBody = z.object({ twoFactorId: z.string(), methods: z.array(MethodBody) });
