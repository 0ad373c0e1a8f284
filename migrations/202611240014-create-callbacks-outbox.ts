import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    // Where challenge outcomes are POSTed; null: the client has no callback.
    t.string('callback_url', 2000);
    // whsec_ signing secret, sealed (we must read it to sign).
    t.text('callback_secret_sealed');
    // Set when delivery gave up on the endpoint; cleared by a re-enable.
    t.bigInteger('callback_disabled_at');
    // Consecutive events given up on.
    t.integer('callback_failures').notNullable().defaultTo(0);
  });
  await knex.schema.createTable('callback_outbox', (t) => {
    t.bigIncrements('id').primary();
    t.string('client_id', 100).notNullable().references('client_id').inTable('clients').onDelete('CASCADE');
    // The webhook-id: the same on every attempt, so receivers can drop duplicates.
    t.string('event_id', 64).notNullable().unique();
    t.string('type', 40).notNullable();
    // The JSON body, fixed at enqueue time (never a secret, code or twoFactorId).
    t.text('payload').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    // When the row is due; null once delivered or given up. A claimed row
    // holds a lease here, so a node that dies mid-delivery is retried.
    t.bigInteger('next_attempt_at');
    t.bigInteger('delivered_at');
    // Short reason for the last failure (a status or an error code), no secrets.
    t.string('last_error', 200);
    t.bigInteger('created_at').notNullable();
    t.index(['next_attempt_at']);
    t.index(['client_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('callback_outbox');
  await knex.schema.alterTable('clients', (t) => {
    t.dropColumns('callback_url', 'callback_secret_sealed', 'callback_disabled_at', 'callback_failures');
  });
}
