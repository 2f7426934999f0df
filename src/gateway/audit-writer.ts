import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { sql, type Kysely } from 'kysely';
import type { AuditTable } from './schema.js';

/**
 * The audit chain's commits on a thread of their own, for a SQLite state database.
 *
 * better-sqlite3 is synchronous: a commit on the main thread holds the event loop for its fsync
 * (`synchronous = FULL`), so while one group of audit records became durable no session's
 * bytes moved at all — under pgbench's TPC-B the gateway ran at ~0.2× a bare relay. Here a
 * worker thread holds a second connection to the same file (WAL: the main connection keeps
 * reading, and writes other tables between the worker's commits, both with a busy timeout) and
 * commits each batch in one transaction; the batch's promise resolves only after that commit
 * returned, so "durable before effect" is unchanged. While it commits, the relay keeps serving
 * every session, and the records appended meanwhile form the next group.
 */

export interface AuditBatchWriter {
  /** Resolves once the rows are committed (rejects if they are not: the caller fails closed). */
  write(rows: readonly AuditTable[]): Promise<void>;
  close(): Promise<void>;
  /** The thread is gone (crashed, exited): nothing more can be written through it. */
  readonly broken: boolean;
}

const BUSY_TIMEOUT_MS = 5_000;

/** CommonJS, run with `eval`: opens the file, then commits each posted batch in one transaction. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { timeout: workerData.busyMs });
if (db.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error('the state database is not in WAL mode');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = ' + workerData.busyMs);
const insert = db.prepare('insert into gateway_audit (seq, id, at, kind, actor, resource, session_id, data, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
const write = db.transaction((rows) => {
  for (const r of rows) insert.run(r.seq, r.id, r.at, r.kind, r.actor, r.resource, r.session_id, r.data, r.prev_hash, r.hash);
});
parentPort.on('message', (m) => {
  if (m.close) {
    db.close();
    parentPort.postMessage({ closed: true });
    return;
  }
  try {
    write.immediate(m.rows);
    parentPort.postMessage({ id: m.id });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
});
parentPort.postMessage({ ready: true });
`;

/** The file behind a SQLite Kysely instance; undefined for PostgreSQL or an in-memory database. */
export async function sqliteFile(db: Kysely<never>): Promise<string | undefined> {
  try {
    const rows = (await sql<{ name: string; file: string }>`pragma database_list`.execute(db)).rows;
    const main = rows.find((r) => r.name === 'main');
    return main !== undefined && main.file !== '' ? main.file : undefined;
  } catch {
    return undefined; // not SQLite
  }
}

/** Starts the writer thread on `path`; rejects if it cannot open the database there. */
export async function startSqliteAuditWriter(path: string): Promise<AuditBatchWriter> {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, { eval: true, workerData: { module, path, busyMs: BUSY_TIMEOUT_MS } });
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  let next = 1;
  let failed: Error | undefined;
  let onClosed: (() => void) | undefined;
  const fail = (err: Error): void => {
    failed ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    worker.unref();
  };
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    worker.once('error', onError);
    worker.once('message', () => {
      worker.off('error', onError);
      resolve();
    });
  });
  worker.on('message', (m: { id?: number; error?: string; closed?: boolean }) => {
    if (m.closed === true) {
      onClosed?.();
      return;
    }
    const p = m.id === undefined ? undefined : pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id ?? 0);
    // The thread keeps the process alive only while a commit is outstanding.
    if (pending.size === 0) worker.unref();
    if (m.error === undefined) p.resolve();
    else p.reject(new Error(m.error));
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => fail(new Error(`audit writer thread exited (${code})`)));
  worker.unref();
  return {
    get broken() {
      return failed !== undefined;
    },
    write(rows) {
      if (failed !== undefined) return Promise.reject(failed);
      const id = next++;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, rows });
      });
    },
    async close() {
      if (failed !== undefined) return;
      worker.ref();
      await new Promise<void>((resolve) => {
        onClosed = resolve;
        worker.postMessage({ close: true });
      });
      await worker.terminate();
    },
  };
}
