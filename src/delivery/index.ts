/**
 * Sends one-time codes and security notices by email and SMS, through the
 * transport the `delivery` settings choose per channel:
 *
 * - `console` (development default): the rendered message goes to the log.
 * - `smtp` (email): a mail server, through nodemailer.
 * - `webhook` (email, SMS): a signed JSON POST to a gateway (see webhook.ts).
 *
 * A failed hand-over throws DeliveryError, so the caller can say "try again"
 * and leave its state as it was.
 */
import path from 'node:path';
import { systemClock, type Clock } from '../lib/clock.ts';
import { createLogger } from '../lib/log.ts';
import type { DeliveryConfig } from './config.ts';
import { DeliveryError } from './errors.ts';
import { checkMessage, type Channel, type Message } from './messages.ts';
import { createSmtpSender } from './smtp.ts';
import { createTemplates, type Rendered } from './templates.ts';
import { postWebhook, type WebhookTarget } from './webhook.ts';

export { deliverySchema, DEFAULT_DELIVERY, type DeliveryConfig } from './config.ts';
export { DeliveryError } from './errors.ts';
export type { Channel, Message, TemplateData, TemplateName } from './messages.ts';
export { signWebhook } from './webhook.ts';

export interface DeliveryLogger {
  info(obj: object, msg: string): void;
}

export interface Delivery {
  /**
   * Renders and sends one message.
   * @throws DeliveryError when the transport fails (down, refused, non-2xx, timeout).
   * @throws Error when the message is malformed or a template is missing (a bug or a bad deployment).
   */
  send(message: Message): Promise<void>;
  /** Closes the SMTP transport, if any. */
  close(): Promise<void>;
}

export interface DeliveryDeps {
  config: DeliveryConfig;
  /** Where the console transport writes; a default Twofold logger when absent. */
  logger?: DeliveryLogger;
  /** Resolves a relative `templatesDir`. */
  rootDir: string;
  fetch?: typeof fetch;
  clock?: Clock;
  /** Per-attempt limit for a webhook POST and each SMTP stage; 5 s by default. */
  timeoutMs?: number;
}

/** @throws Error when a selected transport has no settings (config not validated by deliverySchema). */
export function createDelivery(deps: DeliveryDeps): Delivery {
  const { config, rootDir } = deps;
  const fetchFn = deps.fetch ?? fetch;
  const clock = deps.clock ?? systemClock;
  const timeoutMs = deps.timeoutMs ?? 5000;
  const logger = deps.logger ?? createLogger();
  const templates = createTemplates(path.resolve(rootDir, config.templatesDir), config.product);

  /** Hands one rendered message to a transport; any failure here is a DeliveryError. */
  type Send = (message: Message, rendered: Rendered) => Promise<void>;

  const toConsole: Send = async ({ channel, to }, { subject, text }) => {
    // Development only: the log *is* the deliverer here, so this is the one
    // place a code may be logged. The body goes under `text`, a key the
    // log's redaction leaves alone, so the developer can read the code.
    logger.info({ channel, to, subject, text }, 'delivery (console)');
  };
  const toWebhook = (channel: Channel, target: WebhookTarget | undefined): Send => {
    if (!target) throw new Error(`delivery: ${channel}.webhook is required when ${channel}.transport is "webhook"`);
    return ({ template, to }, rendered) =>
      postWebhook(target, { type: channel, template, to, ...rendered }, { fetch: fetchFn, now: clock.now(), timeoutMs });
  };

  let closeSmtp = (): void => {};
  const toSmtp = (settings: DeliveryConfig['email']['smtp']): Send => {
    if (!settings) throw new Error('delivery: email.smtp is required when email.transport is "smtp"');
    const sender = createSmtpSender(settings, config.email.from, timeoutMs);
    closeSmtp = () => sender.close();
    return ({ to }, { subject, text }) => sender.send({ to, subject: subject ?? '', text });
  };

  const { email, sms } = config;
  const senders: Record<Channel, Send> = {
    email: email.transport === 'console' ? toConsole
      : email.transport === 'webhook' ? toWebhook('email', email.webhook)
      : toSmtp(email.smtp),
    sms: sms.transport === 'console' ? toConsole : toWebhook('sms', sms.webhook),
  };

  return {
    async send(message) {
      const data = checkMessage(message);
      const rendered = await templates.render(message.channel, message.template, data);
      try {
        await senders[message.channel](message, rendered);
      } catch (cause) {
        throw new DeliveryError(message.channel, config[message.channel].transport, cause);
      }
    },
    async close() {
      closeSmtp();
    },
  };
}
