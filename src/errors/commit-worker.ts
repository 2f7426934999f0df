/**
 * Worker thread that commits error events on its own SQLite connection to the state file.
 *
 * better-sqlite3 is synchronous: on the server's connection every group commit (inserts,
 * upserts and the `synchronous = FULL` fsync) blocked the event loop — ~18% of the Sentry
 * ingest server's main thread, fsync included. Here the same transaction (commit.ts) runs
 * while the main thread goes on parsing requests. SQLite's WAL serialises this writer with the
 * server's own (busy_timeout), so both see one consistent database.
 *
 * Sentry events usually arrive as raw item bytes (RawSentryEvent): JSON.parse of the ~50 KB
 * event, mapping and grouping run here too, and only ids and group changes go back.
 *
 * Protocol (worker-committer.ts): `{ id, items, receivedUs }` → `{ id, outcome }` after the
 * commit returned (durable; items that did not parse are listed in `outcome.rejected`), or
 * `{ id, error }`; `{ close: true }` closes the connection.
 */
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { parentPort, workerData } from 'node:worker_threads';
import type { Database } from '../state/index.js';
import { commitBatch, prepareBatch, storedPayloadSync, type EventToCommit } from './commit.js';
import { ErrorEventStore } from './event-store.js';
import { GroupStore } from './groups.js';
import { isRawSentryEvent } from './model.js';
import type { ErrorsTables } from './tables.js';

export interface CommitRequest { id: number; items: EventToCommit[]; receivedUs: number; otelSpanSeq?: number }

const port = parentPort;
if (port === null) throw new Error('commit-worker.ts runs as a worker thread');
const { path } = workerData as { path: string };

// The server's connection (state/sqlite.ts) created the file in WAL mode; this one keeps the
// same guarantees: fsync at every commit, foreign keys, wait (not fail) for the other writer.
const sqlite = new SqliteDatabase(path, { timeout: 5_000, fileMustExist: true });
if (sqlite.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error(`state database ${path} is not in WAL mode`);
sqlite.pragma('synchronous = FULL');
sqlite.pragma('foreign_keys = ON');
sqlite.pragma('busy_timeout = 5000');
const db = new Kysely<Database & ErrorsTables>({ dialect: new SqliteDialect({ database: sqlite }) });
const groups = new GroupStore(db);
const eventStore = new ErrorEventStore(db);

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

port.on('message', (msg: CommitRequest | { close: true }) => {
  if ('close' in msg) {
    void db.destroy().then(() => port.close());
    return;
  }
  const { id, items, receivedUs, otelSpanSeq } = msg;
  try {
    for (const it of items) {
      // Buffers arrive as plain Uint8Arrays; better-sqlite3 binds Buffers only.
      const c = it.event.compressed;
      if (c !== undefined && !Buffer.isBuffer(c.bytes)) c.bytes = asBuffer(c.bytes);
      if (isRawSentryEvent(it.event)) it.event.raw = asBuffer(it.event.raw);
    }
    const batch = prepareBatch(items); // JSON.parse of the raw Sentry items happens here, off the event loop
    const payloads = batch.events.map((e) => storedPayloadSync(e));
    commitBatch(groups, eventStore, batch, payloads, receivedUs, otelSpanSeq).then(
      (outcome) => { port.postMessage({ id, outcome }); },
      (err: unknown) => { port.postMessage({ id, error: String((err as Error)?.message ?? err) }); },
    );
  } catch (err) {
    port.postMessage({ id, error: String((err as Error)?.message ?? err) });
  }
});
