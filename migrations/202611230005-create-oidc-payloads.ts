import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('oidc_payloads', (t) => {
    t.string('model', 40).notNullable();
    t.string('id', 255).notNullable();
    t.text('payload').notNullable();
    // Lookup keys as real columns so every dialect can index them.
    t.string('grant_id', 255);
    t.string('uid', 255);
    t.string('user_code', 255);
    t.bigInteger('expires_at');
    t.bigInteger('consumed_at');
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['uid']);
    t.index(['user_code']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('oidc_payloads');
}
