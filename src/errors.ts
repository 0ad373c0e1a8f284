/**
 * Typed, coded errors. Every error a person or a client can see has a stable
 * code from this closed list, an HTTP status and a message a person understands.
 */

const CODES = {
  'request.invalid': [400, 'The request is not valid.'],
  'request.csrf': [403, 'This form has expired. Go back and try again.'],
  'request.not_found': [404, 'There is nothing here.'],
  'request.too_large': [413, 'The request is too large.'],
  'auth.invalid_credentials': [401, 'The email address or password is not correct.'],
  'auth.login_failed': [404, 'The user was not found or the password was incorrect.'],
  'auth.api_key_required': [401, 'This API needs an API key: Authorization: Bearer <key>.'],
  'auth.api_key_invalid': [401, 'The API key is not valid or has been revoked.'],
  'auth.scope_missing': [403, 'The API key does not have the scope this call needs.'],
  'interaction.expired': [400, 'This sign-in has expired or was already finished. Start again from the app you were signing in to.'],
  'interaction.unexpected_step': [400, 'This step of the sign-in is not expected now. Start again from the app you were signing in to.'],
  'mfa.challenge_not_found': [404, 'This second-factor check has expired or was already used. Start again.'],
  'mfa.invalid_code': [400, 'That code is not correct. Check your authenticator app and try again.'],
  'mfa.too_many_attempts': [429, 'Too many wrong codes. Start the sign-in again.'],
  'mfa.locked': [429, 'Too many wrong answers: two-step verification is locked for this account for a while. Try again later, or ask your administrator to unlock it.'],
  'mfa.send_limited': [429, 'Too many codes were sent. Wait a while before asking for another, or use another way to verify.'],
  'delivery.failed': [503, 'The code could not be sent.'],
  'push.request_not_found': [404, 'This approval request has expired, was answered already, or does not exist.'],
  'push.pending': [409, 'Waiting for you to approve the request on your device.'],
  'push.denied': [403, 'The request was denied on your device. Choose another way to verify, or send a new request.'],
  'push.not_sent': [400, 'No approval request was sent for this sign-in yet.'],
  'push.paused': [429, 'Approval requests to your devices are paused after several were denied. Use another way to verify.'],
  'push.limited': [429, 'Too many approval requests. Wait a while, or use another way to verify.'],
  // The device protocol (docs/device-protocol.md).
  'device.unauthorized': [401, 'This device is not linked, or its request could not be verified.'],
  'device.link_code_invalid': [400, 'That linking code is not valid: it may have expired or been used. Make a new one on your security page.'],
  'device.key_in_use': [409, 'This key is already linked. Make a new key pair and link again.'],
  'request.rate_limited': [429, 'Too many requests. Wait a moment and try again.'],
  'auth.throttled': [429, 'Too many sign-in attempts. Wait a moment and try again.'],
  'mfa.method_not_available': [400, 'That method is not available for this sign-in.'],
  'mfa.level_unavailable': [403, 'This app asks for a passkey or security key, and none is set up for this account. Add one on your security page, then try again.'],
  'mfa.enrollment_required': [403, 'A second factor must be set up first.'],
  'factor.not_found': [404, 'No such factor.'],
  'user.not_found': [404, 'No such user.'],
  'user.suspended': [403, 'This user is suspended.'],
  'user.email_taken': [409, 'A user with that email address already exists.'],
  'client.not_found': [404, 'No such client.'],
  'client.id_taken': [409, 'A client with that id already exists.'],
  'server.error': [500, 'Something went wrong on our side. Try again in a moment.'],
  // Management API: users and events.
  'user.already_in_state': [409, 'The user is already in that state.'],
  // Management API: factors.
  'factor.already_enrolled': [409, 'The user already has a factor of this type.'],
  'factor.not_pending': [400, 'The factor is not waiting for activation.'],
  'factor.not_active': [400, 'The factor is not active.'],
  'factor.type_unsupported': [400, 'That factor type is not supported.'],
  // Management API: clients.
  'client.no_secret': [400, 'This client is public: it has no secret to rotate.'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof CODES;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: { message?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    const [status, message] = CODES[code];
    super(options.message ?? message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.details = options.details;
  }
}

/** @throws AppError with `code` when `condition` is falsy. */
export function assertThat(condition: unknown, code: ErrorCode, details?: Record<string, unknown>): asserts condition {
  if (!condition) throw new AppError(code, details ? { details } : {});
}

export function defaultMessage(code: ErrorCode): string {
  return CODES[code][1];
}
