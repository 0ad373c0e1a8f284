import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('events', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('at').notNullable();
    t.string('type', 60).notNullable();
    t.string('user_id', 36);
    t.string('client_id', 100);
    t.string('ip', 64);
    t.text('details').notNullable();
    t.index(['at']);
    t.index(['user_id']);
    t.index(['type']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('events');
}
