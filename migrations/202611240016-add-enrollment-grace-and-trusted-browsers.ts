import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Enrolment grace: how often the user skipped setting up a second factor, and when last.
  await knex.schema.alterTable('users', (t) => {
    t.integer('enrollment_skips').notNullable().defaultTo(0);
    t.bigInteger('enrollment_skipped_at');
  });
  // "Remember this browser": a server-side record per browser and user; the
  // browser holds only a random token, stored here as its SHA-256.
  await knex.schema.createTable('trusted_browsers', (t) => {
    t.string('id', 64).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    // What the person sees on the security page (browser and system, from the User-Agent).
    t.string('label', 100).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('last_used_at');
    t.bigInteger('revoked_at');
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('trusted_browsers');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('enrollment_skipped_at');
    t.dropColumn('enrollment_skips');
  });
}
