import type { Knex } from 'knex';

/**
 * The account a session, grant or token belongs to, as a real column, so all
 * of a user's sessions and tokens can be ended at once ("sign out
 * everywhere", an admin ending a user's sessions).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.string('account_id', 255);
    t.index(['account_id']);
  });
  const accountId = knex.client.config.client === 'sqlite3'
    ? "json_extract(payload, '$.accountId')"
    : "(payload::json ->> 'accountId')";
  await knex.raw(`update oidc_payloads set account_id = ${accountId} where account_id is null`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.dropIndex(['account_id']);
    t.dropColumn('account_id');
  });
}
