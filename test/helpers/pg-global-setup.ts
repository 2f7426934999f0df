import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_DIR_ENV, stopSharedCluster } from '../../src/state/pg-cluster.conformance.js';

/**
 * vitest global setup: a directory for the run's shared test PostgreSQL. Nothing starts here;
 * the first test file that needs PostgreSQL starts it (src/state/pg-cluster.conformance.ts), so
 * a run without state suites pays nothing. The teardown stops it.
 */
export default function setup(): (() => Promise<void>) | undefined {
  // Each vitest project runs the global setup; the first one's directory serves them all.
  if (process.env[SHARED_DIR_ENV] !== undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-pg-run-'));
  // When run as root the server runs as the 'postgres' user, which must be able to enter here.
  chmodSync(dir, 0o755);
  process.env[SHARED_DIR_ENV] = dir;
  return async () => {
    await stopSharedCluster(dir);
  };
}
