import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('clients', (t) => {
    t.string('client_id', 100).primary();
    // OIDC client metadata without the secret.
    t.text('metadata').notNullable();
    // Sealed (oidc-provider must read it back to check client_secret_basic/post).
    t.text('client_secret_sealed');
    // off | optional | required; null follows the global policy.
    t.string('mfa_policy', 20);
    // First-party clients skip the consent page.
    t.boolean('first_party').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('clients');
}
