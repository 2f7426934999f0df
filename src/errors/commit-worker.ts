/**
 * Worker thread that commits error events on its own SQLite connection to the state file.
 *
 * better-sqlite3 is synchronous: on the server's connection every group commit (inserts,
 * upserts and the fsync) blocked the event loop — ~18% of the Sentry ingest server's main
 * thread, fsync included. Here the same transaction (commit.ts) runs while the main thread goes
 * on parsing requests. SQLite's WAL serialises this writer with the server's own (busy_timeout),
 * so both see one consistent database.
 *
 * Sentry events arrive as raw item bytes (RawSentryEvent): JSON.parse of the ~50 KB event,
 * mapping and grouping run here too, and only ids and group changes go back.
 *
 * Durability without blocking this thread on the fsync: the connection runs
 * `synchronous = NORMAL` (in WAL mode a commit then writes its frames to the -wal file without
 * syncing it) and, after each commit, the -wal file is fdatasync'ed on libuv's thread pool.
 * Only when that returns is the batch reported committed — the same guarantee as
 * `synchronous = FULL`: its frames are on disk, or, had a checkpoint copied them into the
 * database file in between, that checkpoint synced the database file before the WAL could be
 * reused. Meanwhile this thread already writes the next batch (the fsync was ~5 ms of every
 * commit, a fifth of this thread's time under load).
 *
 * Protocol (worker-committer.ts): a CommitRequest → `{ id, written: true }` once the
 * transaction is written (the next batch may come), then `{ id, outcome }` once durable (items
 * that did not parse are listed in `outcome.rejected`), or `{ id, error }`; `{ close: true }`
 * waits for pending flushes and closes the connection.
 */
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { closeSync, fdatasync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Database } from '../state/index.js';
import { commitBatch, prepareBatch, storedPayloadSync, type CommitOutcome, type EventToCommit } from './commit.js';
import { GroupStore } from './groups.js';
import { isRawSentryEvent } from './model.js';
import { SqliteEventRows } from './sqlite-event-rows.js';
import { WAL_AUTOCHECKPOINT_PAGES } from '../state/sqlite.js';
import type { ErrorsTables } from './tables.js';
import { packOutcome, unpackRequest, type CommitRequest } from './worker-wire.js';

const port = parentPort;
if (port === null) throw new Error('commit-worker.ts runs as a worker thread');
const { path } = workerData as { path: string };

// The server's connection (state/sqlite.ts) created the file in WAL mode. This one keeps its
// guarantees (see above for NORMAL + our own fsync), foreign keys, and waits for the other writer.
const sqlite = new SqliteDatabase(path, { timeout: 5_000, fileMustExist: true });
if (sqlite.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error(`state database ${path} is not in WAL mode`);
sqlite.pragma('synchronous = NORMAL');
sqlite.pragma('foreign_keys = ON');
sqlite.pragma('busy_timeout = 5000');
// A checkpoint every 4,000 WAL pages (16 MB) instead of SQLite's 1,000: each copies a page once
// however often it changed since the last one, and the random-key index pages of errors_events
// change again and again (about a fifth less SQLite time per event). The other connections to
// the file (state/sqlite.ts, the audit writer) run their checkpoints on threads of their own,
// so none of them blocks the event loop.
sqlite.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
// Kysely prepares every query it runs; a commit's group queries repeat the same few texts (they
// differ by row count), so their prepared statements are kept (statement preparation was ~4%
// of this thread).
const statements = new Map<string, SqliteDatabase.Statement>();
const cached = {
  prepare(sqlText: string): SqliteDatabase.Statement {
    // Kysely opens a transaction with a deferred `begin`; this file has other writers (the state
    // thread, the gateway audit writer), and a deferred transaction that reads before it writes
    // fails with SQLITE_BUSY instead of waiting for their lock. `begin immediate` waits.
    const text = sqlText === 'begin' ? 'begin immediate' : sqlText;
    let st = statements.get(text);
    if (st === undefined) {
      if (statements.size >= 256) statements.clear();
      statements.set(text, st = sqlite.prepare(text));
    }
    return st;
  },
  close(): void { sqlite.close(); },
};
const db = new Kysely<Database & ErrorsTables>({ dialect: new SqliteDialect({ database: cached }) });
const groups = new GroupStore(db);
const rows = new SqliteEventRows(sqlite);

/** The -wal file, opened after the first commit (it exists once written); fsync needs no write access. */
let walFd: number | undefined;
function flushWal(): Promise<void> {
  walFd ??= openSync(`${path}-wal`, 'r');
  const fd = walFd;
  return new Promise((resolve, reject) => { fdatasync(fd, (err) => { if (err === null) resolve(); else reject(err); }); });
}

/** Outcomes are reported in commit order, so group events (new, regressed) keep their order. */
let reported: Promise<void> = Promise.resolve();

function errorText(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

async function commit(id: number, items: EventToCommit[], receivedUs: number, otelSpanSeq: number | undefined): Promise<void> {
  const batch = prepareBatch(items); // JSON.parse of the raw Sentry items happens here, off the event loop
  const payloads = batch.events.map((e) => storedPayloadSync(e));
  const outcome: CommitOutcome = await commitBatch(groups, rows, batch, payloads, receivedUs, otelSpanSeq);
  port!.postMessage({ id, written: true });
  const flushed = flushWal();
  const previous = reported;
  reported = (async () => {
    try {
      await flushed;
      await previous;
      port!.postMessage({ id, outcome: packOutcome(outcome) });
    } catch (err) {
      port!.postMessage({ id, error: errorText(err) });
    }
  })();
}

port.on('message', (msg: CommitRequest | { close: true }) => {
  if ('close' in msg) {
    void reported.then(() => db.destroy()).then(() => {
      if (walFd !== undefined) closeSync(walFd);
      port.close();
    });
    return;
  }
  const { id, receivedUs, otelSpanSeq } = msg;
  let items: EventToCommit[];
  try {
    items = unpackRequest(msg);
    for (const it of items) {
      // OTel events arrive structured-cloned: their Buffers as plain Uint8Arrays, which
      // better-sqlite3 does not bind.
      const c = it.event.compressed;
      const b: Uint8Array | undefined = c?.bytes;
      if (c !== undefined && b !== undefined && !Buffer.isBuffer(b)) c.bytes = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      if (isRawSentryEvent(it.event) && !Buffer.isBuffer(it.event.raw)) {
        const r = it.event.raw;
        it.event.raw = Buffer.from(r.buffer, r.byteOffset, r.byteLength);
      }
    }
  } catch (err) {
    port.postMessage({ id, error: errorText(err) });
    return;
  }
  commit(id, items, receivedUs, otelSpanSeq).catch((err: unknown) => { port.postMessage({ id, error: errorText(err) }); });
});
