import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.string('id', 36).primary();
    // Normalised (trimmed, lower-cased) so uniqueness holds on every dialect.
    t.string('email', 320).notNullable().unique();
    t.string('name', 200);
    t.string('phone', 32);
    t.text('password_hash');
    t.string('status', 20).notNullable().defaultTo('ACTIVE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
