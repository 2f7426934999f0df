/**
 * The data directory holds secrets (admin token, gateway hash key, TLS key) and everyone's
 * telemetry, errors and audit records. Files made by libraries (SQLite, DuckDB and their WALs)
 * get the process umask's mode, typically 0644, and a data directory the operator created
 * beforehand is typically 0755. So at start the directory is made 0700 and every file and
 * folder in it loses its group and other permission bits (owner bits, e.g. an action script's
 * execute bit, are kept). What is created later lives inside the 0700 directory.
 */
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Tightened { path: string; from: number; to: number }

/** Removes group/other bits from `dir` and everything under it (symlinks are not followed). */
export function tightenDataDir(dir: string): Tightened[] {
  const changed: Tightened[] = [];
  const visit = (path: string): void => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined || st.isSymbolicLink()) return;
    const mode = st.mode & 0o7777;
    if ((mode & 0o077) !== 0) {
      chmodSync(path, mode & ~0o077);
      changed.push({ path, from: mode, to: mode & ~0o077 });
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return changed;
}
