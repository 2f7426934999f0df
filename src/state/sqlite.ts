import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { SqliteDialect } from 'kysely';
import { AppError } from '../core/app-error.js';

/** How long a writer waits for another connection's lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens the SQLite file and returns a Kysely dialect over it.
 *
 * Pragmas, and why:
 * - `journal_mode = WAL`: readers never block the writer and vice versa, which matters once
 *   the API, detectors and the gateway share one file.
 * - `synchronous = FULL`: in WAL mode NORMAL skips the fsync at commit, so a transaction we
 *   already acknowledged can vanish on power loss or an OS crash. State writes (tokens, grants,
 *   audit entries, deploy records) are small and rare, so paying one fsync per commit to keep
 *   every acknowledged write is cheap; telemetry, which is write-heavy, lives in DuckDB.
 * - `foreign_keys = ON`: SQLite leaves FK enforcement off per connection unless asked.
 * - `busy_timeout`: another process (e.g. a CLI command) holding the write lock briefly should
 *   make us wait, not fail.
 */
export function createSqliteDialect(path: string): SqliteDialect {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });

  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  } catch (cause) {
    throw new AppError('state_open_failed', 500, `cannot open SQLite state database`, {
      cause,
      context: { path },
    });
  }
  try {
    // Owner only: the state holds token hashes, grants and the audit trail. SQLite creates the
    // -wal and -shm files with the database file's permissions, so this covers them too.
    if (path !== ':memory:') chmodSync(path, 0o600);
    const mode = sqlite.pragma('journal_mode = WAL', { simple: true });
    // An in-memory database reports "memory"; anything else on a file means WAL is unavailable
    // (e.g. a network file system) and we would silently lose concurrency and durability.
    if (path !== ':memory:' && mode !== 'wal') {
      throw new AppError('state_open_failed', 500, 'SQLite refused WAL journal mode', {
        context: { path, journalMode: mode },
      });
    }
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  } catch (err) {
    sqlite.close();
    throw err;
  }
  return new SqliteDialect({ database: sqlite });
}
