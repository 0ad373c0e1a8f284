/**
 * What can be sent: one template per kind of message, each with the data it
 * needs. Data is checked at send time so templates only ever see values of
 * a known shape.
 */
import { z } from 'zod';

export type Channel = 'email' | 'sms';

/** One-time codes are short, letters and digits only, so templates may print them raw. */
const code = z.string().regex(/^[A-Za-z0-9]{4,12}$/, 'must be 4 to 12 letters or digits');
const minutes = z.number().int().min(1).max(1440);
/** A factor's display name chosen by the person: free text, escaped by the templates. */
const factor = z.string().min(1).max(64);

const DATA = {
  otp: z.object({
    code,
    minutes,
    /** Host for the WebOTP line (`@host #code`) at the end of an SMS, so browsers can fill the code in. */
    domain: z.string().regex(/^[a-z0-9.-]+(:\d{1,5})?$/, 'must be a host name').optional(),
  }),
  'factor-added': z.object({ factor }),
  'factor-removed': z.object({ factor }),
  'account-locked': z.object({ minutes }),
  'push-paused': z.object({ minutes }),
};

export type TemplateName = keyof typeof DATA;
export const TEMPLATE_NAMES = Object.keys(DATA) as TemplateName[];

export type TemplateData = { [K in TemplateName]: z.infer<(typeof DATA)[K]> };

/** A message to one person on one channel; `template` decides the shape of `data`. */
export type Message = {
  [K in TemplateName]: { channel: Channel; to: string; template: K; data: TemplateData[K] };
}[TemplateName];

/**
 * One address, nothing that an address parser could read as a list or a
 * display name (commas, angle brackets, quotes), and no CR/LF.
 */
const EMAIL = /^[^\s@,;:<>"()[\]\\]+@[^\s@,;:<>"()[\]\\]+$/;
const E164 = /^\+[1-9]\d{6,14}$/;

/**
 * Checks a message before anything is rendered or sent; returns its data
 * stripped to the known keys.
 * @throws Error when the address or data is malformed: a programming error, not a delivery failure.
 */
export function checkMessage(message: Message): Record<string, unknown> {
  const { channel, to, template } = message;
  if (channel !== 'email' && channel !== 'sms') throw new Error(`delivery: unknown channel ${String(channel)}`);
  if (channel === 'email' ? !(EMAIL.test(to) && to.length <= 254) : !E164.test(to)) {
    // The address itself stays out of the message: it is personal data.
    throw new Error(`delivery: "to" is not a valid ${channel === 'email' ? 'email address' : 'E.164 phone number'}`);
  }
  const schema = DATA[template];
  if (!schema) throw new Error(`delivery: unknown template ${String(template)}`);
  const parsed = schema.safeParse(message.data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`delivery: invalid data for ${template}: ${problems}`);
  }
  return parsed.data;
}
