/**
 * Every migration, in order. Forward-only: never edit one that has been merged;
 * add a new dated file and list it here.
 */
import type { Knex } from 'knex';
import * as m0001 from './202611230001-create-users.ts';
import * as m0002 from './202611230002-create-factors.ts';
import * as m0003 from './202611230003-create-challenges.ts';
import * as m0004 from './202611230004-create-clients.ts';
import * as m0005 from './202611230005-create-oidc-payloads.ts';
import * as m0006 from './202611230006-create-provider-keys.ts';
import * as m0007 from './202611230007-create-events.ts';
import * as m0008 from './202611230008-create-api-keys.ts';
import * as m0009 from './202611230009-add-challenge-app-state.ts';
import * as m0010 from './202611240010-create-throttles-recovery-codes-otp-codes.ts';
import * as m0011 from './202611240011-create-webauthn-challenges.ts';
import * as m0012 from './202611240012-add-oidc-payload-account.ts';
import * as m0013 from './202611240013-create-devices.ts';
import * as m0014 from './202611240014-create-callbacks-outbox.ts';
import * as m0015 from './202611240015-add-challenge-push.ts';
import * as m0016 from './202611240016-add-enrollment-grace-and-trusted-browsers.ts';

export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export const migrations: Migration[] = [
  { name: '202611230001-create-users', ...m0001 },
  { name: '202611230002-create-factors', ...m0002 },
  { name: '202611230003-create-challenges', ...m0003 },
  { name: '202611230004-create-clients', ...m0004 },
  { name: '202611230005-create-oidc-payloads', ...m0005 },
  { name: '202611230006-create-provider-keys', ...m0006 },
  { name: '202611230007-create-events', ...m0007 },
  { name: '202611230008-create-api-keys', ...m0008 },
  { name: '202611230009-add-challenge-app-state', ...m0009 },
  { name: '202611240010-create-throttles-recovery-codes-otp-codes', ...m0010 },
  { name: '202611240011-create-webauthn-challenges', ...m0011 },
  { name: '202611240012-add-oidc-payload-account', ...m0012 },
  { name: '202611240013-create-devices', ...m0013 },
  { name: '202611240014-create-callbacks-outbox', ...m0014 },
  { name: '202611240015-add-challenge-push', ...m0015 },
  { name: '202611240016-add-enrollment-grace-and-trusted-browsers', ...m0016 },
];
