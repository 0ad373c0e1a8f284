import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Linked authenticator devices (push approval). Only the device's public
  // key is stored: every device call is signed with the private key, which
  // never leaves the device, so nothing here lets anyone act as a device.
  await knex.schema.createTable('devices', (t) => {
    t.string('id', 36).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('name', 100).notNullable();
    // The public JWK {kty: 'EC', crv: 'P-256', x, y}, never a private part.
    t.text('public_key_jwk').notNullable();
    // RFC 7638 thumbprint: one key links one device, once.
    t.string('key_thumbprint', 64).notNullable().unique();
    // ACTIVE, or UNLINKED (kept for the audit trail; it authenticates nothing).
    t.string('status', 20).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_seen_at');
    t.bigInteger('unlinked_at');
    t.index(['user_id']);
  });

  // Single-use linking codes shown on the security page; only a SHA-256 of
  // the code is stored (the code has 80 bits, so a plain hash suffices).
  await knex.schema.createTable('device_linking_codes', (t) => {
    t.string('id', 64).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at');
    t.index(['user_id']);
    t.index(['expires_at']);
  });

  // Nonces of signed device requests, kept while their timestamp is still
  // acceptable: a second insert of the same pair is a replay.
  await knex.schema.createTable('device_request_nonces', (t) => {
    t.string('device_id', 36).notNullable().references('id').inTable('devices').onDelete('CASCADE');
    t.string('nonce', 64).notNullable();
    t.bigInteger('expires_at').notNullable();
    t.primary(['device_id', 'nonce']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('device_request_nonces');
  await knex.schema.dropTable('device_linking_codes');
  await knex.schema.dropTable('devices');
}
