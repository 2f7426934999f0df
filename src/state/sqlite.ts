import { chmodSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  CompiledQuery, SelectQueryNode, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult, type TransactionSettings,
} from 'kysely';
import { dirname } from 'node:path';
import { apiError } from '../core/app-error.js';

/** How long a writer waits for another connection's lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/** WAL pages between automatic checkpoints, on every connection that writes (SQLite's default: 1,000). */
export const WAL_AUTOCHECKPOINT_PAGES = 4_000;

/**
 * The SQLite state database, on a thread of its own.
 *
 * better-sqlite3 is synchronous, and every state commit fsyncs (`synchronous = FULL`): on the
 * main thread each write held the event loop for its fsync. Telemetry makes state writes —
 * an implicit deploy per first-seen version (its record, its verification, their statuses),
 * verdicts, the incidents a failed verdict opens — and under ingest load a burst of them froze
 * every OTLP acknowledgement for seconds (`npm run bench -- ingest`: p99 ack 3.7 s). Here one
 * worker thread holds the connection and runs the statements in the order they are posted;
 * the main thread only posts and awaits. Same single connection, same transactions (Kysely's
 * one-connection mutex, as in its own SQLite driver), same durability: a statement's promise
 * resolves after better-sqlite3 returned in the worker, so after the commit's fsync.
 *
 * Pragmas, and why:
 * - `journal_mode = WAL`: readers never block the writer and vice versa, which matters once
 *   the API, detectors and the gateway share one file.
 * - `synchronous = FULL`: in WAL mode NORMAL skips the fsync at commit, so a transaction we
 *   already acknowledged can vanish on power loss or an OS crash; telemetry, which is
 *   write-heavy, lives in DuckDB.
 * - `foreign_keys = ON`: SQLite leaves FK enforcement off per connection unless asked.
 * - `busy_timeout`: another process (e.g. a CLI command) holding the write lock briefly should
 *   make us wait, not fail.
 * - `wal_autocheckpoint`: the same limit as the errors commit worker's connection (see there).
 */
export async function createSqliteDialect(path: string): Promise<Dialect> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const conn = await SqliteThread.open(path);
  return {
    createDriver: () => new ThreadDriver(conn),
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createAdapter: () => new SqliteAdapter(),
    createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
  };
}

/** CommonJS, run with `eval`: opens the file, then runs each posted statement in order. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { chmodSync } = require('node:fs');
const Database = require(workerData.module);
const errorOf = (err) => ({ message: String((err && err.message) || err), code: err && err.code, name: err && err.name });
function open() {
  const db = new Database(workerData.path, { timeout: workerData.busyMs });
  try {
    // Owner only: the state holds token hashes, grants and the audit trail. SQLite creates the
    // -wal and -shm files with the database file's permissions, so this covers them too.
    if (workerData.path !== ':memory:') chmodSync(workerData.path, 0o600);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (workerData.path !== ':memory:' && mode !== 'wal') {
      db.close();
      return { journalMode: mode };
    }
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = ' + workerData.busyMs);
    db.pragma('wal_autocheckpoint = ' + workerData.walPages);
  } catch (err) {
    db.close();
    throw err;
  }
  return { db };
}
let opened;
try {
  opened = open();
} catch (err) {
  opened = { error: errorOf(err) };
}
if (opened.db === undefined) {
  parentPort.postMessage({ failed: opened.error, journalMode: opened.journalMode });
} else {
  const db = opened.db;
  const cache = new Map();
  const bind = (ps) => ps.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
  parentPort.on('message', (m) => {
    if (m.close) {
      db.close();
      parentPort.postMessage({ closed: true });
      return;
    }
    try {
      let st = cache.get(m.sql);
      if (st === undefined) {
        st = db.prepare(m.sql);
        if (cache.size >= 500) cache.clear();
        cache.set(m.sql, st);
      }
      if (st.reader) {
        parentPort.postMessage({ id: m.id, rows: st.all(bind(m.params)) });
      } else {
        const r = st.run(bind(m.params));
        parentPort.postMessage({ id: m.id, changes: r.changes, lastInsertRowid: r.lastInsertRowid });
      }
    } catch (err) {
      parentPort.postMessage({ id: m.id, error: errorOf(err) });
    }
  });
  parentPort.postMessage({ ready: true });
}
`;

interface WireError { message: string; code?: string; name?: string }
type FromWorker =
  | { ready: true } | { failed?: WireError; journalMode?: string } | { closed: true }
  | { id: number; rows?: Record<string, unknown>[]; changes?: number; lastInsertRowid?: number | bigint; error?: WireError };
interface Pending { resolve: (r: QueryResult<unknown>) => void; reject: (e: unknown) => void }

/** The worker holding the connection. Statements run one at a time, in posting order. */
export class SqliteThread {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken: Error | undefined;
  private onClosed: (() => void) | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.fail(apiError('state_unavailable', `the SQLite state thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      this.fail(apiError('state_unavailable', `the SQLite state thread exited (${code})`));
      this.onClosed?.();
    });
    // Idle, the thread does not keep the process alive; a statement in flight does.
    worker.unref();
  }

  static async open(path: string): Promise<SqliteThread> {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER, { eval: true, workerData: { module, path, busyMs: SQLITE_BUSY_TIMEOUT_MS, walPages: WAL_AUTOCHECKPOINT_PAGES } });
    const first = await new Promise<FromWorker>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (m: FromWorker) => { worker.off('error', reject); resolve(m); });
    }).catch((cause: unknown) => ({ failed: { message: (cause as Error).message } }));
    if (!('ready' in first)) {
      await worker.terminate();
      const f = first as { failed?: WireError; journalMode?: string };
      // An in-memory database reports "memory"; anything else on a file means WAL is unavailable
      // (e.g. a network file system) and we would silently lose concurrency and durability.
      if (f.journalMode !== undefined) {
        throw apiError('state_open_failed', 'SQLite refused WAL journal mode', { context: { path, journalMode: f.journalMode } });
      }
      throw apiError('state_open_failed', 'cannot open SQLite state database', {
        cause: Object.assign(new Error(f.failed?.message ?? 'unknown'), { code: f.failed?.code }), context: { path },
      });
    }
    if (path !== ':memory:') chmodSync(path, 0o600);
    return new SqliteThread(worker);
  }

  run(sql: string, params: readonly unknown[]): Promise<QueryResult<unknown>> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, sql, params });
    });
  }

  async close(): Promise<void> {
    if (this.broken !== undefined) return;
    this.worker.ref();
    await new Promise<void>((resolve) => {
      this.onClosed = resolve;
      this.worker.postMessage({ close: true });
    });
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    if ('closed' in m) {
      this.broken = apiError('state_unavailable', 'the state database is closed');
      this.onClosed?.();
      return;
    }
    if (!('id' in m)) return;
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.error !== undefined) {
      // The same error shape as in-thread better-sqlite3: message, name and `code` (SQLITE_*).
      p.reject(Object.assign(new Error(m.error.message), { name: m.error.name ?? 'SqliteError', code: m.error.code }));
      return;
    }
    if (m.rows !== undefined) {
      p.resolve({ rows: m.rows.map(asBuffers) });
      return;
    }
    p.resolve({
      numAffectedRows: m.changes === undefined ? undefined : BigInt(m.changes),
      insertId: m.lastInsertRowid === undefined ? undefined : BigInt(m.lastInsertRowid),
      rows: [],
    });
  }

  private fail(err: Error): void {
    this.broken ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.worker.unref();
  }
}

/** Blobs come back from the thread as Uint8Array (structured clone); readers expect Buffers. */
function asBuffers(row: Record<string, unknown>): Record<string, unknown> {
  for (const k in row) {
    const v = row[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return row;
}

class ThreadConnection implements DatabaseConnection {
  constructor(private readonly thread: SqliteThread) {}

  executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    return this.thread.run(q.sql, q.parameters) as Promise<QueryResult<R>>;
  }

  async *streamQuery<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(q.query)) throw new Error('the SQLite state driver streams only select queries');
    const { rows } = await this.executeQuery<R>(q);
    for (const row of rows) yield { rows: [row] };
  }
}

/** Kysely's driver contract over the thread: one connection, held by one caller at a time. */
class ThreadDriver implements Driver {
  private readonly connection: ThreadConnection;
  private lock: Promise<void> | undefined;
  private unlock: (() => void) | undefined;

  constructor(private readonly thread: SqliteThread) {
    this.connection = new ThreadConnection(thread);
  }

  async init(): Promise<void> { /* opened by createSqliteDialect */ }

  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.lock !== undefined) await this.lock;
    this.lock = new Promise((resolve) => { this.unlock = resolve; });
    return this.connection;
  }

  /**
   * `begin immediate`: the write lock from the start. Other connections write the same file (the
   * errors commit worker, the gateway audit writer); a deferred transaction that read first and
   * then writes cannot wait for their lock (SQLite fails the upgrade with SQLITE_BUSY at once,
   * busy timeout or not), whereas taking the lock at `begin` waits up to the busy timeout.
   */
  async beginTransaction(c: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await c.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw('rollback'));
  }

  releaseConnection(): Promise<void> {
    const unlock = this.unlock;
    this.lock = undefined;
    this.unlock = undefined;
    unlock?.();
    return Promise.resolve();
  }

  async destroy(): Promise<void> {
    await this.thread.close();
  }
}
