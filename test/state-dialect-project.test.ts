import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTestStateStore, testStateDialect } from '../src/state/dialects.conformance.js';
import pino from 'pino';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer } from '../src/http/server.js';
import { startTestServer, stateUrlFor } from './helpers/server.js';

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

  it.runIf(testStateDialect() === 'postgres')('a second startServer on the same PostgreSQL state is refused while the first holds the active lease', async () => {
    const dirs = [mkdtempSync(join(tmpdir(), 'tightloop-node1-')), mkdtempSync(join(tmpdir(), 'tightloop-node2-'))];
    const stateUrl = await stateUrlFor(dirs[0]);
    const [one, two] = dirs.map((dataDir) => serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl }));
    try {
      const first = await startServer(one, pino({ level: 'silent' }));
      await expect(startServer(two, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'state_in_use' });
      // The refused start released what it opened: once the first node stops, the second starts.
      await first.close();
      const second = await startServer(two, pino({ level: 'silent' }));
      expect((await fetch(`${second.url}/api/health`)).status).toBe(200);
      await second.close();
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
