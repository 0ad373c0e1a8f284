import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('challenges', (t) => {
    // SHA-256 of the twoFactorId: a database dump does not hand out live challenges.
    t.string('id', 64).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('client_id', 100).notNullable();
    t.string('origin', 20).notNullable();
    // The interaction uid (hosted and JSON sign-in) or API call that created it.
    t.string('binding', 255);
    t.string('state', 20).notNullable();
    t.text('methods').notNullable();
    // Authentication methods already proven when the challenge was created (RFC 8176 values).
    t.text('amr').notNullable();
    t.string('enrollment_factor_id', 36);
    t.integer('attempts').notNullable().defaultTo(0);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('completed_at');
    t.string('completed_method', 40);
    t.index(['binding']);
    t.index(['user_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('challenges');
}
