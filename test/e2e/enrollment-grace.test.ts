/**
 * Enrolment grace under the `required` policy: a user without a second factor
 * may put off setting one up a configured number of times, then must enrol;
 * a request that asks for a second-factor level never has grace.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SignIn, createUser, registerClient, type TestClient } from '../helpers/oidc-flow.ts';
import { ACR } from '../../src/mfa/amr.ts';

describe('enrolment grace', () => {
  let server: TestServer;
  let required: TestClient;

  before(async () => {
    server = await startServer({ overrides: { mfa: { enrollmentGrace: { skips: 2, until: null } } } });
    required = await registerClient(server, { mfaPolicy: 'required' });
  });
  after(() => server.close());
  afterEach(() => expect(server.errors).to.deep.equal([]));

  async function toEnrolment(email: string, params: Record<string, string> = {}) {
    const flow = new SignIn(server, required);
    await flow.start(params);
    await flow.password(email);
    expect(flow.page.html).to.include('Set up two-step verification');
    return flow;
  }

  it('lets a user put off enrolment twice, with the password alone, then requires it', async () => {
    const user = await createUser(server, 'later@example.com');
    for (const left of [2, 1]) {
      const flow = await toEnrolment('later@example.com');
      expect(flow.page.html).to.include(`You can put this off ${left} more ${left === 1 ? 'time' : 'times'}`);
      flow.page = await flow.agent.submit(flow.page, '/skip-enrollment', {});
      const { claims } = await flow.finish();
      expect(claims.sub).to.equal(user.id);
      expect(claims.amr).to.deep.equal(['pwd']);
      expect(claims.acr).to.equal(ACR.password);
    }
    const third = await toEnrolment('later@example.com');
    expect(third.page.html).not.to.include('Not now');
    // Posting the skip anyway is refused.
    const action = /action="([^"]+)\/two-factor"/.exec(third.page.html)![1]!;
    const forced = await third.agent.request('POST', `${action}/skip-enrollment`, { _csrf: /name="_csrf" value="([^"]+)"/.exec(third.page.html)![1]! });
    expect(forced.status).to.equal(403);
    const { events } = await server.app.stores.events.page({ userId: user.id, type: 'mfa.enrollment_skipped', limit: 10 });
    expect(events).to.have.length(2);
  });

  it('never offers grace when the request asks for the mfa level', async () => {
    await createUser(server, 'asks-mfa@example.com');
    const flow = await toEnrolment('asks-mfa@example.com', { acr_values: ACR.mfa });
    expect(flow.page.html).not.to.include('Not now');
  });

  it('graces only the sign-in that skipped: an older password-only session is still asked (found by review)', async () => {
    await createUser(server, 'older-session@example.com');
    const off = await registerClient(server, { mfaPolicy: 'off' });
    const older = new SignIn(server, off);
    await older.start();
    await older.password('older-session@example.com');
    await older.finish();
    server.clock.advance(60_000);

    const skipper = await toEnrolment('older-session@example.com');
    skipper.page = await skipper.agent.submit(skipper.page, '/skip-enrollment', {});
    await skipper.finish();

    const silent = new SignIn(server, required, older.agent);
    const back = new URL((await silent.start({ prompt: 'none' })).location!);
    // Not let through silently: the session needs an interaction (enrolment) first.
    expect(back.searchParams.get('error')).to.equal('interaction_required');
    expect(back.searchParams.has('code')).to.equal(false);
  });
});
