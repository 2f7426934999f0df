import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTestStateStore, testStateDialect } from '../src/state/dialects.conformance.js';
import { startTestServer } from './helpers/server.js';

/**
 * The harness itself: in the `postgres` vitest project (STATE_SUITES), servers and stores really
 * keep their state in PostgreSQL, not in a SQLite file beside them; in `sqlite`, the reverse.
 */
describe(`state suites on ${testStateDialect()}`, () => {
  it('a test server keeps its state where the project says', async () => {
    const server = await startTestServer();
    try {
      expect((await server.api('/api/users')).status).toBe(200);
      if (testStateDialect() === 'postgres') {
        expect(server.stateUrl).toMatch(/^postgres:\/\/.+\/t_\d+_/);
        expect(existsSync(join(server.dataDir, 'state.db'))).toBe(false);
      } else {
        expect(server.stateUrl).toBeUndefined();
        expect(existsSync(join(server.dataDir, 'state.db'))).toBe(true);
      }
    } finally {
      await server.close();
    }
  });

  it('a test store is on the project dialect, never a SQLite file in the postgres project', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-dialect-'));
    const store = await openTestStateStore({ path: join(dir, 'state.db') });
    expect(store.dialect).toBe(testStateDialect());
    const probe = testStateDialect() === 'postgres' ? sql<{ v: string }>`select version() as v` : sql<{ v: string }>`select sqlite_version() as v`;
    expect((await probe.execute(store.db)).rows[0].v).toMatch(testStateDialect() === 'postgres' ? /^PostgreSQL/ : /^3\./);
    await store.close();
    expect(existsSync(join(dir, 'state.db'))).toBe(testStateDialect() === 'sqlite');
    rmSync(dir, { recursive: true, force: true });
  });
});
