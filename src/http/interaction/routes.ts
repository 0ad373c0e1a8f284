/**
 * The sign-in interaction, for browsers (HTML forms) and first-party apps
 * (JSON, same paths: send `Content-Type: application/json` or
 * `Accept: application/json`). One router switches on the prompt and re-checks
 * it on every POST; each handler parses, calls the domain and answers.
 *
 * JSON answers: `200 {redirectTo}` when the step finished the interaction,
 * `242 {twoFactorId, methods}` while a second factor is pending.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { AppError, assertThat } from '../../errors.ts';
import type { Interactions, InteractionDetails } from '../../oidc/interaction.ts';
import { clientPolicy, requestedAcrs, type PolicyDeps } from '../../oidc/policy.ts';
import type { SignInService, SignInContext } from '../../mfa/sign-in.ts';
import type { ChallengeService, Challenge, ChallengeOutcome } from '../../mfa/challenges.ts';
import { RECOVERY_CODES_LOW } from '../../mfa/recovery-codes.ts';
import type { TrustedBrowsers } from '../../mfa/trusted-browsers.ts';
import type { Passkeys } from '../../mfa/passkeys.ts';
import type { UserService } from '../../users/users.ts';
import { wantsJson } from '../middleware/error-handler.ts';
import { credentialField, field, typedCode } from '../form.ts';
import type { createPages } from './pages.ts';

export interface InteractionDeps {
  interactions: Interactions;
  signIn: SignInService;
  challenges: ChallengeService;
  users: UserService;
  policy: PolicyDeps;
  pages: ReturnType<typeof createPages>;
  /** "Remember this browser"; without it the box is not offered. */
  trust?: TrustedBrowsers;
  /** Passkeys; without them enrolment offers only an authenticator app. */
  passkeys?: Passkeys;
}

/** What a passkey registration during a sign-in's enrolment is bound to. */
export const enrollBinding = (uid: string) => `enroll:${uid}`;

/** The cookie that names a remembered browser (a random token; the record is server-side). */
export const TRUST_COOKIE = 'twofold_trust';

/** Errors a person can act on from the same page (send again, wait, pick another way). */
const RETRY_ON_PAGE = new Set<string>(['mfa.send_limited', 'delivery.failed', 'push.pending', 'push.denied', 'push.not_sent', 'push.paused', 'push.limited']);

export function interactionRouter(deps: InteractionDeps): Router {
  const { interactions, signIn, challenges, users, pages } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  /** Form posts are answered 303 See Other (a reload never re-posts); JSON gets the URL. */
  function finished(ctx: Context, redirectTo: string): void {
    if (wantsJson(ctx)) {
      ctx.body = { redirectTo };
      return;
    }
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  async function pending(ctx: Context, twoFactorId: string, challenge: Challenge): Promise<void> {
    const user = await users.findById(challenge.userId);
    ctx.status = 242;
    ctx.body = { twoFactorId, methods: await challenges.describe(challenge, user?.email ?? '', { passkeyOptions: true }) };
  }

  async function signInContext(ctx: Context, details: InteractionDetails): Promise<SignInContext> {
    const client = await interactions.client(details);
    const trusted = deps.trust;
    const token = ctx.cookies.get(TRUST_COOKIE);
    return {
      clientId: client.clientId, policy: clientPolicy(client.metadata(), deps.policy.globalPolicy),
      requestedAcrs: requestedAcrs(details.params), origin: 'interaction', binding: details.uid, ip: ctx.ip,
      ...(trusted && token && trusted.allowedFor({ firstParty: client.metadata().twofold_first_party === true })
        ? { trustedBrowser: (userId: string) => trusted.isTrusted(userId, token) } : {}),
    };
  }

  /** Remembers this browser when the person ticked the box and the client may offer it. */
  async function rememberIfAsked(ctx: Context, details: InteractionDetails, userId: string): Promise<void> {
    if (!deps.trust || field(ctx, 'remember') !== 'on') return;
    const client = await interactions.client(details);
    if (!deps.trust.allowedFor({ firstParty: client.metadata().twofold_first_party === true })) return;
    const { token, maxAgeMs } = await deps.trust.remember(userId, ctx.get('User-Agent'));
    ctx.cookies.set(TRUST_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: maxAgeMs, overwrite: true, signed: false });
  }

  /**
   * Runs a step that may find the requested level out of reach (a passkey
   * asked for, none set up): the relying party then gets OIDC's
   * `unmet_authentication_requirements`, never a token of a lower level.
   * @returns the step's result, or undefined when the interaction was ended.
   */
  async function unlessUnmet<T>(ctx: Context, step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'mfa.level_unavailable')) throw err;
      finished(ctx, await interactions.abort(ctx, 'unmet_authentication_requirements', err.message));
      return undefined;
    }
  }

  /**
   * The challenge a step answers: JSON clients name it (twoFactorId); a
   * page's is the one bound to this interaction. Either way it must belong
   * to this interaction.
   * @throws AppError mfa.challenge_not_found
   */
  async function challengeOf(ctx: Context, details: InteractionDetails): Promise<Challenge> {
    const challenge = wantsJson(ctx)
      ? await challenges.find(field(ctx, 'twoFactorId'), details.uid)
      : await challenges.findByBinding(details.uid);
    assertThat(challenge, 'mfa.challenge_not_found');
    return challenge;
  }

  /** The method a person picked from "other ways to verify" (`?method=`). */
  function chosenMethod(ctx: Context): string | undefined {
    const m = ctx.query.method;
    return typeof m === 'string' && m.length <= 64 ? m : undefined;
  }

  /**
   * The second factor is done: finish the login. A page shows the new
   * recovery codes (first factor just turned on) or warns that few are left
   * before going on; a JSON client gets them in the answer.
   */
  async function secondFactorDone(ctx: Context, details: InteractionDetails, outcome: ChallengeOutcome): Promise<void> {
    await rememberIfAsked(ctx, details, outcome.userId);
    await signIn.completed({ userId: outcome.userId, clientId: outcome.clientId, amr: outcome.amr, ip: ctx.ip });
    const redirectTo = await interactions.finishLogin(ctx, { accountId: outcome.userId, amr: outcome.amr, acr: outcome.acr });
    if (wantsJson(ctx)) {
      ctx.body = {
        redirectTo,
        ...(outcome.recoveryCodes ? { recoveryCodes: outcome.recoveryCodes } : {}),
        ...(outcome.remainingRecoveryCodes !== null ? { remainingRecoveryCodes: outcome.remainingRecoveryCodes } : {}),
      };
      return;
    }
    if (outcome.recoveryCodes) return pages.recoveryCodes(ctx, details, outcome.recoveryCodes, redirectTo);
    if (outcome.remainingRecoveryCodes !== null && outcome.remainingRecoveryCodes <= RECOVERY_CODES_LOW) {
      return pages.recoveryCodesLow(ctx, details, outcome.remainingRecoveryCodes, redirectTo);
    }
    finished(ctx, redirectTo);
  }

  /** A step-up: the session's user and amr, asking only for the missing factor. */
  async function startStepUp(ctx: Context, details: InteractionDetails) {
    const session = details.session!;
    return signIn.secondFactorStep(session.accountId, session.amr ?? ['pwd'], { ...(await signInContext(ctx, details)), allowEnrollment: true });
  }

  router.get('/', async (ctx) => {
    const details = await interactions.load(ctx);
    const json = wantsJson(ctx);
    if (details.prompt.name === 'consent') {
      if (json) ctx.body = { uid: details.uid, prompt: 'consent', details: details.prompt.details };
      else await pages.consent(ctx, details);
      return;
    }
    assertThat(details.prompt.name === 'login', 'interaction.unexpected_step');
    if (interactions.isStepUp(details)) {
      // A JSON client gets a fresh twoFactorId; a page reuses the live challenge.
      const live = json ? undefined : await challenges.findByBinding(details.uid);
      if (live) return pages.secondFactor(ctx, details, live, { methodId: chosenMethod(ctx) });
      const step = await unlessUnmet(ctx, () => startStepUp(ctx, details));
      if (!step) return;
      return json ? pending(ctx, step.twoFactorId, step.challenge) : pages.secondFactor(ctx, details, step.challenge);
    }
    if (json) {
      ctx.body = { uid: details.uid, prompt: 'login' };
      return;
    }
    const live = await challenges.findByBinding(details.uid);
    return live ? pages.secondFactor(ctx, details, live, { methodId: chosenMethod(ctx) }) : pages.password(ctx, details);
  });

  router.post('/login', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login' && !interactions.isStepUp(details), 'interaction.unexpected_step');
    const email = field(ctx, 'email', 'loginId');
    let step;
    try {
      step = await unlessUnmet(ctx, async () => signIn.passwordStep(email, field(ctx, 'password'), await signInContext(ctx, details)));
      if (!step) return;
    } catch (err) {
      if (err instanceof AppError && (err.code === 'auth.invalid_credentials' || err.code === 'auth.throttled') && !wantsJson(ctx)) {
        return pages.password(ctx, details, { error: err, email });
      }
      throw err;
    }
    if (step.kind === 'complete') {
      await signIn.completed({ userId: step.user.id, clientId: String(details.params.client_id), amr: step.amr, ip: ctx.ip });
      return finished(ctx, await interactions.finishLogin(ctx, { accountId: step.user.id, amr: step.amr, acr: step.acr }));
    }
    // Both factors happen inside this one interaction, so no session ever
    // exists with only the password when a second factor is needed.
    if (wantsJson(ctx)) return pending(ctx, step.twoFactorId, step.challenge);
    ctx.status = 303;
    ctx.redirect(`/interaction/${details.uid}`);
  });

  router.post('/two-factor', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login', 'interaction.unexpected_step');
    const json = wantsJson(ctx);
    const challenge = await challengeOf(ctx, details);
    const methodId = field(ctx, 'methodId') || undefined;
    let outcome;
    try {
      outcome = await challenges.verify(challenge, { methodId, code: typedCode(ctx), credential: credentialField(ctx) });
    } catch (err) {
      if (json || !(err instanceof AppError)) throw err;
      if (err.code === 'mfa.invalid_code' || err.code === 'mfa.locked' || RETRY_ON_PAGE.has(err.code)) {
        return pages.secondFactor(ctx, details, { ...challenge, attempts: challenge.attempts + 1 }, { error: err, methodId });
      }
      if (err.code === 'mfa.too_many_attempts') return pages.abortable(ctx, details, err);
      throw err;
    }
    return secondFactorDone(ctx, details, outcome);
  });

  // Enrolment with a passkey instead of an authenticator app: registering it
  // is the second factor of this sign-in.
  router.post('/enroll-passkey', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login' && deps.passkeys, 'interaction.unexpected_step');
    const challenge = await challenges.findByBinding(details.uid);
    assertThat(challenge?.enrollmentFactorId, 'interaction.unexpected_step');
    const user = await users.findById(challenge.userId);
    assertThat(user, 'mfa.challenge_not_found');
    let registered;
    try {
      registered = await deps.passkeys.register(user, enrollBinding(details.uid), credentialField(ctx), field(ctx, 'name'));
    } catch (err) {
      if (wantsJson(ctx) || !(err instanceof AppError) || !['request.invalid', 'mfa.challenge_not_found', 'factor.already_enrolled'].includes(err.code)) throw err;
      return pages.secondFactor(ctx, details, challenge, { error: err });
    }
    const outcome = await challenges.completeEnrollmentWithPasskey(challenge, registered.factor, registered.recoveryCodes);
    return secondFactorDone(ctx, details, outcome);
  });

  // Puts off enrolment (grace under the `required` policy): the password alone, this time.
  router.post('/skip-enrollment', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login', 'interaction.unexpected_step');
    const challenge = await challenges.findByBinding(details.uid);
    assertThat(challenge, 'interaction.unexpected_step');
    finished(ctx, await interactions.finishLogin(ctx, await signIn.skipEnrollment(challenge, requestedAcrs(details.params), ctx.ip)));
  });

  // Sends (or resends) the code of an email or SMS method.
  router.post('/send', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'login', 'interaction.unexpected_step');
    const json = wantsJson(ctx);
    const challenge = await challengeOf(ctx, details);
    const methodId = field(ctx, 'methodId') || undefined;
    let sent;
    try {
      sent = await challenges.sendCode(challenge, methodId);
    } catch (err) {
      if (json || !(err instanceof AppError) || !RETRY_ON_PAGE.has(err.code)) throw err;
      return pages.secondFactor(ctx, details, challenge, { error: err, methodId });
    }
    if (json) {
      // A first-party app shows the number to type on the device itself.
      ctx.body = sent.push ? { pushRef: sent.push.ref, number: sent.push.number } : {};
      return;
    }
    return pages.secondFactor(ctx, details, challenge, {
      methodId, notice: sent.push ? undefined : 'Code sent. It works for a few minutes; asking for a new one voids it.',
    });
  });

  // The state of this sign-in's push request, for the page's script.
  router.get('/push-status', async (ctx) => {
    const details = await interactions.load(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { state: await challenges.pushProgress(await challenges.findByBinding(details.uid)) };
  });

  router.post('/consent', async (ctx) => {
    const details = await interactions.load(ctx);
    assertThat(details.prompt.name === 'consent', 'interaction.unexpected_step');
    finished(ctx, await interactions.finishConsent(ctx, details));
  });

  router.post('/abort', async (ctx) => {
    await interactions.load(ctx);
    finished(ctx, await interactions.abort(ctx, 'access_denied', 'The user cancelled the sign-in.'));
  });

  return router;
}
