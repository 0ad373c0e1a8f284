import type { Knex } from 'knex';

/** Push approval state on a challenge: the request a linked device answers. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('challenges', (t) => {
    // Public reference for devices, status calls and callbacks (never the twoFactorId).
    t.string('push_ref', 43);
    // The number the sign-in page shows and the person types on the device.
    t.string('push_number', 8);
    // pending | approved | denied | consumed
    t.string('push_state', 16);
    t.string('push_kind', 16);
    // {header, text, details}
    t.text('push_request');
    // {deviceId, localCheck}
    t.text('push_answer');
    t.bigInteger('push_sent_at');
    t.unique(['push_ref']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('challenges', (t) => {
    t.dropUnique(['push_ref']);
    for (const c of ['push_ref', 'push_number', 'push_state', 'push_kind', 'push_request', 'push_answer', 'push_sent_at']) t.dropColumn(c);
  });
}
