import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('factors', (t) => {
    t.string('id', 36).primary();
    t.string('user_id', 36).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('type', 40).notNullable();
    t.string('status', 30).notNullable();
    t.string('name', 100).notNullable();
    // AES-256-GCM sealed, with the factor id as authenticated context.
    t.text('secret_sealed');
    t.text('settings').notNullable();
    // TOTP replay guard: the last time step accepted for this factor.
    t.bigInteger('last_time_step');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.bigInteger('last_used_at');
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('factors');
}
