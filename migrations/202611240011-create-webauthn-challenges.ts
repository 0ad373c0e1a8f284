import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Passkey challenges, kept server-side: one row per ceremony, spent once.
  await knex.schema.createTable('webauthn_challenges', (t) => {
    t.string('id', 36).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    // 'register' (security page) or 'authenticate' (a second-factor challenge).
    t.string('purpose', 20).notNullable();
    // What the ceremony belongs to: the second-factor challenge's id (a hash of
    // its twoFactorId), or the account page session for a registration.
    t.string('binding', 255).notNullable();
    // base64url, as sent to the browser in the options.
    t.text('challenge').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    // Set when used or superseded by newer options: either way it is spent.
    t.bigInteger('used_at');
    t.index(['binding']);
    t.index(['user_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webauthn_challenges');
}
