/**
 * The `delivery` settings: how one-time codes and security notices reach a
 * person (email and SMS), and where the message templates live.
 */
import { z } from 'zod';

const WHSEC = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The HMAC key behind a `whsec_<base64>` secret, or null when it is not one. */
export function webhookKey(secret: string): Buffer | null {
  const match = WHSEC.exec(secret);
  return match ? Buffer.from(match[1]!, 'base64') : null;
}

/** A signed webhook target: https (http only to this machine) and a `whsec_` secret. */
export const webhookSchema = z.object({
  // A webhook body carries the one-time code: plain http only to this machine.
  url: z.url({ protocol: /^https?$/ }).refine((u) => {
    const url = new URL(u);
    return url.protocol === 'https:' || LOOPBACK.has(url.hostname);
  }, 'must be https (http only for localhost)'),
  // Standard Webhooks: whsec_ + base64 of 24 to 64 random bytes.
  secret: z.string().refine((s) => {
    const key = webhookKey(s);
    return key !== null && key.length >= 24 && key.length <= 64;
  }, 'must be whsec_ followed by the base64 of 24 to 64 random bytes'),
});

const smtpSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** true: TLS from the first byte (port 465); false: plain, upgraded by STARTTLS when offered. */
  secure: z.boolean(),
  user: z.string().min(1).nullable().optional(),
  password: z.string().nullable().optional(),
  /** Refuse to send when the server does not offer STARTTLS (with secure: false). */
  requireTLS: z.boolean().optional(),
}).refine((s) => !s.user || Boolean(s.password), { message: 'is required when user is set', path: ['password'] });

/** A display name and address; no CR/LF (header injection). */
const fromAddress = z.string().regex(/^[^\r\n]*[^\s@<>]+@[^\s@<>]+>?$/, 'must be an address such as "Twofold <no-reply@example.com>"');

export const deliverySchema = z.object({
  email: z.object({
    transport: z.enum(['console', 'smtp', 'webhook']),
    from: fromAddress,
    smtp: smtpSchema.optional(),
    webhook: webhookSchema.optional(),
  }),
  sms: z.object({
    transport: z.enum(['console', 'webhook']),
    webhook: webhookSchema.optional(),
  }),
  /** The product name the templates show ("Your Twofold code is …"). */
  product: z.string().min(1).max(40).default('Twofold'),
  /** Message templates, relative to the project root unless absolute. */
  templatesDir: z.string().min(1).default('templates'),
}).superRefine((d, ctx) => {
  const needs = (section: 'email' | 'sms', transport: 'smtp' | 'webhook') => {
    const settings = section === 'email' ? d.email[transport] : transport === 'webhook' ? d.sms.webhook : undefined;
    if (d[section].transport === transport && settings === undefined) {
      ctx.addIssue({ code: 'custom', path: [section, transport], message: `is required when ${section}.transport is "${transport}"` });
    }
  };
  needs('email', 'smtp');
  needs('email', 'webhook');
  needs('sms', 'webhook');
});

export type DeliveryConfig = z.infer<typeof deliverySchema>;

/** Development default: both channels write to the log (see createDelivery). */
export const DEFAULT_DELIVERY = {
  email: { transport: 'console', from: 'Twofold <no-reply@localhost>' },
  sms: { transport: 'console' },
  product: 'Twofold',
  templatesDir: 'templates',
} as const satisfies DeliveryConfig;
