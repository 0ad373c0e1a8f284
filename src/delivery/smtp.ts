/** SMTP transport (email only), one nodemailer transport per process. */
import nodemailer from 'nodemailer';
import type { DeliveryConfig } from './config.ts';

type SmtpSettings = NonNullable<DeliveryConfig['email']['smtp']>;

export interface SmtpSender {
  /** @throws Error when the server is unreachable, too slow or refuses the message. */
  send(mail: { to: string; subject: string; text: string }): Promise<void>;
  close(): void;
}

/** `timeoutMs` bounds each stage (connect, greeting, every reply), not the whole send. */
export function createSmtpSender(smtp: SmtpSettings, from: string, timeoutMs: number): SmtpSender {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.requireTLS ?? false,
    ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    // Our messages never attach files or URLs; refuse them should a template ever try.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return {
    async send({ to, subject, text }) {
      // An address object, not a string: nodemailer then parses no list out of it.
      await transport.sendMail({ from, to: { name: '', address: to }, subject, text });
    },
    close() {
      transport.close();
    },
  };
}
