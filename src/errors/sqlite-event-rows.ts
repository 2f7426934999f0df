/**
 * SqliteEventRows: the commit worker's writer of errors_events rows — one prepared INSERT run
 * per row on the worker's better-sqlite3 connection, inside the commit's (Kysely) transaction
 * on that same connection. Same rows as ErrorEventStore.insert (eventRow); it skips compiling a
 * multi-row statement of 18 parameters per row and preparing it anew for every commit, which
 * was most of the Kysely overhead on this path.
 */
import type SqliteDatabase from 'better-sqlite3';
import type { EventRowWriter } from './commit.js';
import { eventRow, type EventToStore } from './event-store.js';
import type { ErrorsEventsTable } from './tables.js';

const COLUMNS: readonly (keyof ErrorsEventsTable)[] = [
  'event_id', 'project_id', 'group_id', 'time_us', 'received_us', 'service', 'release', 'environment', 'level', 'trace_id',
  'span_id', 'title', 'user_json', 'tags_json', 'request_json', 'source', 'payload_encoding', 'payload',
];

export class SqliteEventRows implements EventRowWriter {
  private readonly stmt: SqliteDatabase.Statement;

  constructor(sqlite: SqliteDatabase.Database) {
    this.stmt = sqlite.prepare(`INSERT INTO errors_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`);
  }

  /** Runs in the caller's transaction: the connection is the one the transaction holds. */
  insert(_tx: unknown, rows: EventToStore[]): Promise<void> {
    for (const r of rows) this.stmt.run(eventRow(r));
    return Promise.resolve();
  }
}
