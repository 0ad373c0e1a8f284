import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Failure counters, lock-outs and rate windows, in the database so that
  // several nodes count together. One row per key (`mfa:<userId>`, `ip:<ip>`, …).
  await knex.schema.createTable('throttles', (t) => {
    t.string('key', 200).primary();
    // Failures (or hits) in the current window.
    t.integer('count').notNullable().defaultTo(0);
    t.bigInteger('window_start').notNullable();
    // Set while locked; a lock-out ends on its own when this time passes.
    t.bigInteger('locked_until');
    // How many lock-outs so far: each one lasts longer than the last.
    t.integer('level').notNullable().defaultTo(0);
    t.bigInteger('updated_at').notNullable();
    t.index(['updated_at']);
  });

  // One row per recovery code; only a keyed hash is stored.
  await knex.schema.createTable('recovery_codes', (t) => {
    t.string('id', 36).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('hash', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('used_at');
    t.unique(['user_id', 'hash']);
  });

  // Codes sent by SMS or email: keyed hash, single use, short-lived, bound to
  // the challenge (sign-in) or factor (activation) that asked for them.
  await knex.schema.createTable('otp_codes', (t) => {
    t.string('id', 36).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('factor_id', 36).notNullable().references('id').inTable('factors').onDelete('CASCADE');
    // SHA-256 of the twoFactorId, or null for an activation outside a challenge.
    t.string('challenge_id', 64);
    t.string('hash', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    // Set when used or superseded by a resend: either way it is spent.
    t.bigInteger('spent_at');
    t.index(['factor_id']);
    t.index(['challenge_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('otp_codes');
  await knex.schema.dropTable('recovery_codes');
  await knex.schema.dropTable('throttles');
}
