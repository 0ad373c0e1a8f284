import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('provider_keys', (t) => {
    t.string('id', 100).primary();
    // signing (a private JWK) | cookie (a random secret)
    t.string('kind', 20).notNullable();
    t.text('sealed').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('retired_at');
    t.index(['kind']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('provider_keys');
}
