import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.string('id', 36).primary();
    // The visible part of the key (`tfk_<prefix>_…`), for lookup and for people to tell keys apart.
    t.string('prefix', 16).notNullable().unique();
    t.string('name', 100).notNullable();
    // SHA-256 of the whole key: keys are 256-bit random, so a slow hash buys nothing.
    t.string('hash', 64).notNullable();
    t.text('scopes').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_used_at');
    t.bigInteger('revoked_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
