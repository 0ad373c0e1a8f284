/**
 * What the device side (linked authenticators) needs from the challenge side
 * for push approval. The challenge module implements it; the device routes
 * use it. No HTTP here.
 */

/** What a linked device shows the person for one pending approval. */
export interface PushRequestView {
  /** The challenge's public reference (never the twoFactorId). */
  ref: string;
  header: string;
  text: string;
  /** Optional key/value details (e.g. amount and payee of a transaction). */
  details: Record<string, string>;
  /** The local check the device must do: none, its PIN, or biometrics. */
  kind: 'simple' | 'pin' | 'biometric';
  /** The app the person is signing in to. */
  clientName: string;
  /** Digits of the number the person must type from the sign-in page. */
  numberLength: number;
  createdAt: number;
  expiresAt: number;
}

/** A device's signed answer, once its signature has been checked. */
export interface PushAnswer {
  decision: 'approve' | 'deny';
  /** The number the person typed on the device (required to approve). */
  number?: string | undefined;
  /** The local check the device did before answering. */
  localCheck?: 'pin' | 'biometric' | null | undefined;
}

export interface PushRequests {
  /** Pending approvals for the user, newest first. */
  pendingFor(userId: string): Promise<PushRequestView[]>;
  /**
   * Records a device's answer to one of its user's pending requests.
   * @returns the request's new state.
   * @throws AppError push.request_not_found (unknown, expired, answered, or
   *   another user's), request.invalid (an approval without the number or
   *   without the local check the request asks for)
   */
  answer(input: { ref: string; deviceId: string; userId: string; answer: PushAnswer }): Promise<'approved' | 'denied'>;
  /** Calls `onChange` when the user's pending requests change; returns an unsubscribe function. */
  subscribe(userId: string, onChange: () => void): () => void;
}
