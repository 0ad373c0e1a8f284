import { expect } from 'chai';
import { levelNeeded, requestsPhishingResistant, secondFactorRequirement, requestsSecondFactor } from '../../src/mfa/policy.ts';
import { ACR, acrFor, amrAfterSecondFactor } from '../../src/mfa/amr.ts';
import { requestedAcrs, clientPolicy } from '../../src/oidc/policy.ts';

describe('MFA policy', () => {
  const cases: Array<[string, Parameters<typeof secondFactorRequirement>[0], string]> = [
    ['off, with a factor', { policy: 'off', requestedAcrs: [], hasActiveFactor: true }, 'none'],
    ['off, RP asks for mfa, no factor', { policy: 'off', requestedAcrs: [ACR.mfa], hasActiveFactor: false }, 'enroll'],
    ['optional, no factor', { policy: 'optional', requestedAcrs: [], hasActiveFactor: false }, 'none'],
    ['optional, with a factor', { policy: 'optional', requestedAcrs: [], hasActiveFactor: true }, 'verify'],
    ['optional, RP asks for mfa, no factor', { policy: 'optional', requestedAcrs: [ACR.mfa], hasActiveFactor: false }, 'enroll'],
    ['required, no factor', { policy: 'required', requestedAcrs: [], hasActiveFactor: false }, 'enroll'],
    ['required, with a factor', { policy: 'required', requestedAcrs: [ACR.password], hasActiveFactor: true }, 'verify'],
  ];
  for (const [name, input, expected] of cases) {
    it(`${name} → ${expected}`, () => expect(secondFactorRequirement(input)).to.equal(expected));
  }

  it('treats acr_values as a preference list: password among them means the password suffices', () => {
    expect(requestsSecondFactor([ACR.mfa])).to.equal(true);
    expect(requestsSecondFactor([ACR.mfa, ACR.password])).to.equal(false);
    expect(requestsSecondFactor(['urn:unknown'])).to.equal(false);
    expect(requestsSecondFactor([])).to.equal(false);
  });

  it('asks for a passkey only when every requested level is phishing-resistant', () => {
    expect(requestsPhishingResistant([ACR.phr])).to.equal(true);
    expect(requestsPhishingResistant([ACR.phr, ACR.mfa])).to.equal(false);
    expect(requestsPhishingResistant([ACR.mfa])).to.equal(false);
    expect(requestsPhishingResistant(['urn:unknown', ACR.phr])).to.equal(false);
  });

  it('needs the higher of the client policy and the requested level', () => {
    expect(levelNeeded({ policy: 'off', requestedAcrs: [], hasActiveFactor: true })).to.equal(0);
    expect(levelNeeded({ policy: 'optional', requestedAcrs: [], hasActiveFactor: true })).to.equal(1);
    expect(levelNeeded({ policy: 'optional', requestedAcrs: [], hasActiveFactor: false })).to.equal(0);
    expect(levelNeeded({ policy: 'required', requestedAcrs: [ACR.password], hasActiveFactor: false })).to.equal(1);
    expect(levelNeeded({ policy: 'off', requestedAcrs: [ACR.phr], hasActiveFactor: false })).to.equal(2);
    expect(levelNeeded({ policy: 'required', requestedAcrs: [ACR.phr], hasActiveFactor: true })).to.equal(2);
  });

  it('reads acr requests from acr_values and from the claims parameter', () => {
    expect(requestedAcrs({ acr_values: `${ACR.mfa}  ${ACR.password}` })).to.deep.equal([ACR.mfa, ACR.password]);
    expect(requestedAcrs({ claims: JSON.stringify({ id_token: { acr: { essential: true, value: ACR.mfa } } }) })).to.deep.equal([ACR.mfa]);
    expect(requestedAcrs({ claims: { id_token: { acr: { values: [ACR.mfa, 7] } } } })).to.deep.equal([ACR.mfa]);
    expect(requestedAcrs({ claims: '{not json' })).to.deep.equal([]);
  });

  it('uses the client policy when set and valid, else the global one', () => {
    expect(clientPolicy({ twofold_mfa_policy: 'required' }, 'optional')).to.equal('required');
    expect(clientPolicy({}, 'off')).to.equal('off');
    expect(clientPolicy({ twofold_mfa_policy: 'bogus' }, 'optional')).to.equal('optional');
  });
});

describe('amr and acr', () => {
  it('adds the method and mfa in RFC 8176 order', () => {
    expect(amrAfterSecondFactor(['pwd'], ['otp'])).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(amrAfterSecondFactor(['mfa', 'otp', 'pwd'], ['otp'])).to.deep.equal(['pwd', 'otp', 'mfa']);
  });
  it('does not claim mfa when Twofold proved only the second factor', () => {
    expect(amrAfterSecondFactor([], ['otp'])).to.deep.equal(['otp']);
  });
  it('maps amr to the acr level reached', () => {
    expect(acrFor(['pwd'])).to.equal(ACR.password);
    expect(acrFor(['pwd', 'otp', 'mfa'])).to.equal(ACR.mfa);
  });
});
