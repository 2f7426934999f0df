import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer } from './helpers/server.js';

/**
 * Files tightloop writes in its data directory (state db, DuckDB files, errors store, ingest
 * log, admin token, gateway key and TLS files, with their WALs) are readable by the owner only,
 * also when the operator created the directory beforehand with the usual 0755 and the umask
 * is the usual 022.
 */

const parent = mkdtempSync(join(tmpdir(), 'tightloop-modes-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : e.isSymbolicLink() ? [] : [p];
  });
}

describe('data directory permissions', () => {
  it('a pre-existing 0755 directory becomes 0700 and no file in it is readable by group or others', async () => {
    const dataDir = join(parent, 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    // Left by an older version or by hand: loosened, then tightened at start (owner bits kept).
    mkdirSync(join(dataDir, 'actions'), { mode: 0o755 });
    writeFileSync(join(dataDir, 'actions', 'restart.sh'), '#!/bin/sh\n', { mode: 0o755 });
    chmodSync(join(dataDir, 'actions', 'restart.sh'), 0o755);
    const old = process.umask(0o022);
    const server = await startTestServer({ dataDir });
    try {
      const res = await fetch(`${server.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'hello' } }] }] }] }) });
      expect(res.status).toBe(200);
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      const paths = walk(dataDir);
      expect(paths.length).toBeGreaterThan(3);
      const loose = paths.filter((p) => (statSync(p).mode & 0o077) !== 0).map((p) => `${p} ${(statSync(p).mode & 0o777).toString(8)}`);
      expect(loose).toEqual([]);
      expect(statSync(join(dataDir, 'actions', 'restart.sh')).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(old);
      await server.close();
    }
  });
});
