import type { Channel } from './messages.ts';

/**
 * A message could not be handed to the mail server or the gateway (down,
 * refused, non-2xx answer, timeout). Worth trying again; the caller should
 * leave state as it was (no half-done enrolment).
 *
 * The message names only the channel and transport, never the recipient,
 * the code or a secret; the original error is the `cause`, for the log.
 */
export class DeliveryError extends Error {
  readonly channel: Channel;
  readonly transport: string;

  constructor(channel: Channel, transport: string, cause: unknown) {
    super(`${channel === 'sms' ? 'The text message' : 'The email'} could not be sent (${transport}).`, { cause });
    this.name = 'DeliveryError';
    this.channel = channel;
    this.transport = transport;
  }
}
