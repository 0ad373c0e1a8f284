import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('applies environment overrides on top of the files', () => {
    const c = loadConfig({ env: { TWOFOLD_ENV: 'development', PORT: '4000', MFA_POLICY: 'required', DATABASE_URL: 'postgres://u:p@127.0.0.1/db' } });
    expect(c.port).to.equal(4000);
    expect(c.mfa.policy).to.equal('required');
    expect(c.database.url).to.equal('postgres://u:p@127.0.0.1/db');
    expect(c.ttl.session).to.equal(43200);
  });

  it('fails fast and names every bad key', () => {
    const load = () => loadConfig({ env: { TWOFOLD_ENV: 'development', MFA_POLICY: 'sometimes' }, overrides: { ttl: { interaction: 3600 } } });
    expect(load).to.throw(/mfa\.policy: /);
    expect(load).to.throw(/ttl\.interaction: an interaction lives at most 10 minutes/);
  });

  it('refuses production without a seal key or with an http issuer', () => {
    expect(() => loadConfig({ env: { TWOFOLD_ENV: 'production', ISSUER: 'https://id.example.com' } })).to.throw(/SEAL_KEY is required/);
    expect(() => loadConfig({ env: { TWOFOLD_ENV: 'production', SEAL_KEY: 'x', ISSUER: 'http://id.example.com' } })).to.throw(/must be https/);
  });
});
