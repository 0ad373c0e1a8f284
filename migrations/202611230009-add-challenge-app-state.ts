import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('challenges', (t) => {
    // The calling app's own `state`, echoed back when the challenge completes.
    t.text('app_state');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('challenges', (t) => {
    t.dropColumn('app_state');
  });
}
