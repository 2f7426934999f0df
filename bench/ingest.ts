/**
 * `npm run bench -- ingest [--duration 60] [--connections 8] [--traces 250] [--against BIN --rounds 2]`
 * `npm run bench -- ingest --store clickhouse [--nodes 2] [--against BIN] [--rounds 1] [--rate SPANS_PER_S]`
 *
 * Starts tightloop in a child process and sends, over keep-alive HTTP connections, OTLP/protobuf
 * trace requests of `4 × traces` spans, each followed by a log request of `traces` records (one
 * per 4 spans), for `--duration` seconds. Every request is fresh: new trace and span ids, times
 * of the last second, new user ids, order numbers and URLs (bench/_ingest-load.ts: templates of
 * 50 services × 20 operations × 3 versions patched in place, so the generator costs ~1 µs per
 * span). 5% of spans are errors with an exception event.
 *
 * After the clock stops it waits until every acknowledged span is queryable (a trace lookup
 * loads whatever the server accepted and had not loaded yet), checks a sample of acknowledged
 * traces through the API (their 4 spans and their log record), stops the server, opens its DuckDB
 * file and counts the stored spans and logs: they must equal the acknowledged counts, else the
 * run exits 1. Reports the acknowledged rate (spans acknowledged / sending time) beside the
 * sustained rate (spans acknowledged / (sending time + time until all of them are queryable)),
 * server CPU per span (all threads, and the main thread), the server's minor page faults per span
 * and the generator's CPU per span.
 *
 * `--store clickhouse`: each round runs this build on DuckDB and then on ClickHouse (the chdb test
 * engine, test/clickhouse-engine, started here; a fresh database per run), with `--nodes N`
 * servers ingesting into that one database at once (connections spread over them; each node's
 * last trace is looked up on another node). The stored rows are counted in the engine: total and
 * per node (`node` column) must equal what was acknowledged, and no span (trace + span id) or log
 * may be stored twice. tightloop's CPU (its server processes, all threads) and the engine's are
 * reported apart, with `cpu_over_duckdb` = tightloop's CPU per acknowledged span into ClickHouse
 * over into DuckDB (whose server process includes its embedded engine). With `--against BIN`,
 * that build also runs on ClickHouse in each round. `--rate N` offers N spans/s in all (paced per
 * connection) instead of as many as are acknowledged: at equal load the fixed work of a server
 * (state writes for new versions, deploy verifications, timers) weighs the same in each store's
 * CPU per span, which it does not when one store acknowledges a third of the other's spans.
 *
 * `--against BIN`: also runs another build's `bin/tightloop` under the same load, alternating
 * runs, and prints the ratio — the comparison that holds on a machine shared with other work.
 * Each server runs with the Node flags of its bin's shebang line plus `BENCH_NODE_ARGS` /
 * `BENCH_AGAINST_NODE_ARGS`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { decodeTraces } from '../src/otlp/index.js';
import { arg, cpuSeconds, freePort, minorFaults, percentile } from './_util.js';
import { fresh, makeTemplate, OPERATIONS, SERVICES, VERSIONS, type Template } from './_ingest-load.js';
import { engineRows, startBenchEngine, type BenchEngine } from './_clickhouse-engine.js';

const DURATION = arg('duration', 60);
const CONNECTIONS = arg('connections', 8);
const TRACES = arg('traces', 250);
let PORT = arg('port', 0);
const TEMPLATES = arg('templates', 12);
/** Spans per second offered in all (0: as fast as acknowledged). Equal load makes CPU per span comparable across stores. */
const RATE = arg('rate', 0);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const againstAt = process.argv.indexOf('--against');
const AGAINST = againstAt === -1 ? undefined : process.argv[againstAt + 1];
const ROUNDS = arg('rounds', process.argv.includes('--store') ? 1 : 2);
const storeAt = process.argv.indexOf('--store');
const STORE = storeAt === -1 ? 'duckdb' : process.argv[storeAt + 1];
if (STORE !== 'duckdb' && STORE !== 'clickhouse') throw new Error('--store duckdb|clickhouse');

interface Posted { status: number; rejected: number }

/** POST one body; `rejected` from an Export*ServiceResponse's partial_success (field 1 → 1). */
function post(agent: Agent, port: number, path: string, body: Uint8Array): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, rejected: res.statusCode === 200 ? partialRejected(Buffer.concat(parts)) : 0 }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function varintAt(b: Buffer, at: number): [number, number] {
  let v = 0, mul = 1;
  for (;;) {
    const x = b[at++];
    v += (x & 0x7f) * mul;
    mul *= 128;
    if (x < 0x80) return [v, at];
  }
}

function partialRejected(b: Buffer): number {
  if (b.length === 0 || b[0] !== 0x0a) return 0;
  const [len, at] = varintAt(b, 1);
  for (let p = at; p < at + len;) {
    const [tag, q] = varintAt(b, p);
    if (tag === 0x08) return varintAt(b, q)[0];
    if ((tag & 7) !== 2) return 0;
    const [l, r] = varintAt(b, q);
    p = r + l;
  }
  return 0;
}

async function waitHealthy(port: number): Promise<void> {
  // 120 s: at load average ~20 on 2 cores a server took 18–19 s to answer /api/health, and a
  // 30 s limit ended alternating runs half-way.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) return;
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

interface RunResult {
  label: string; nodes: number;
  rate: number; sustained: number; visibilityMs: number; p99: number; cpuUsPerSpan: number; mainUsPerSpan: number; faultsPerSpan: number; engineUsPerSpan: number; clientUsPerSpan: number;
  ackedSpans: number; ackedLogs: number; storedSpans: number; storedLogs: number; duplicates: number; perNodeOk: boolean; sampleBad: number; refused: number;
}

/** The Node flags a bin's shebang line gives (`#!/usr/bin/env -S node --flag`): the server runs as users start it. */
function shebangFlags(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0];
  const m = /^#!.*\bnode((?: +--?[\w-]+(?:=\S+)?)*) *$/.exec(first);
  return m === null ? [] : m[1].split(' ').filter((x) => x !== '');
}

/** Node flags for a server child from an environment variable (space-separated). */
function nodeArgs(envName: string): string[] {
  return (process.env[envName] ?? '').split(' ').filter((x) => x !== '');
}

async function api<T>(s: Server, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${s.port}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

async function countStored(dataDir: string): Promise<{ spans: number; logs: number }> {
  const db = await DuckDBInstance.create(join(dataDir, 'telemetry.duckdb'), { access_mode: 'READ_ONLY' });
  const con = await db.connect();
  try {
    const row = (await con.runAndReadAll('SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM logs) AS logs')).getRowObjectsJS()[0];
    return { spans: Number(row.spans), logs: Number(row.logs) };
  } finally {
    con.closeSync();
    db.closeSync();
  }
}

/** Where the servers of a run store telemetry: each its own DuckDB, or one ClickHouse database shared by `nodes` servers. */
type Target = { kind: 'duckdb' } | { kind: 'clickhouse'; engine: BenchEngine; database: string; nodes: number };

interface Server { proc: ChildProcess; dataDir: string; port: number; exited: Promise<number | null>; token: string; stopped: boolean }

async function startServer(bin: string, flags: string[], target: Target, port: number): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-'));
  const telemetry = target.kind === 'clickhouse' ? ['--telemetry', target.engine.url(target.database)] : [];
  const proc = spawn(process.execPath, [...shebangFlags(bin), ...flags, bin, 'up', '--data-dir', dataDir, '--port', String(port), '--gateway-port', '0',
    '--log-level', 'warn', ...telemetry], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  try {
    await waitHealthy(port);
  } catch (e) {
    proc.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return { proc, dataDir, port, exited, token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), stopped: false };
}

async function stopServer(s: Server): Promise<void> {
  if (s.stopped) return;
  s.stopped = true;
  s.proc.kill('SIGTERM');
  const code = await s.exited;
  if (code !== 0) throw new Error(`server exited ${code} on SIGTERM`);
}

/** Spans and logs stored, and how many of them are second copies (a span id or a log's trace id stored twice). */
async function countClickHouse(engine: BenchEngine, database: string): Promise<{ spans: number; logs: number; duplicates: number; perNode: Map<string, number> }> {
  const [c] = await engineRows<{ spans: number; logs: number; dup_spans: number; dup_logs: number }>(engine.http, database,
    `SELECT (SELECT count() FROM spans) AS spans, (SELECT count() FROM logs) AS logs,
      (SELECT count() - uniqExact(trace_id, span_id) FROM spans) AS dup_spans, (SELECT count() - uniqExact(trace_id) FROM logs) AS dup_logs`);
  const nodes = await engineRows<{ node: string; n: number }>(engine.http, database, 'SELECT node, count() AS n FROM spans GROUP BY node ORDER BY node');
  return { spans: Number(c.spans), logs: Number(c.logs), duplicates: Number(c.dup_spans) + Number(c.dup_logs), perNode: new Map(nodes.map((r) => [r.node, Number(r.n)])) };
}

async function run(bin: string, templates: Template[], flags: string[], target: Target): Promise<RunResult> {
  const nodes = target.kind === 'clickhouse' ? target.nodes : 1;
  const servers: Server[] = [];
  const engineCpu = (): number => (target.kind === 'clickhouse' ? cpuSeconds(target.engine.child.pid) : 0);
  try {
    for (let n = 0; n < nodes; n++) servers.push(await startServer(bin, flags, target, n === 0 ? PORT : await freePort()));
    const agents = servers.map(() => new Agent({ keepAlive: true, maxSockets: Math.ceil(CONNECTIONS / nodes) }));
    const latencies: number[] = [];
    const ackedPerNode = servers.map(() => 0);
    let ackedSpans = 0, ackedLogs = 0, refused = 0, next = 0;
    /** A reservoir of acknowledged trace ids (with their log acknowledged too) to check afterwards. */
    const sample: string[] = [];
    let seen = 0;
    const lastTrace = servers.map(() => '');
    const serverCpu = (main = false): number => servers.reduce((x, s) => x + cpuSeconds(s.proc.pid, main), 0);
    const client0 = process.cpuUsage();
    const cpu0 = serverCpu();
    const main0 = serverCpu(true);
    const serverFaults = (): number => servers.reduce((x, s) => x + minorFaults(s.proc.pid), 0);
    const faults0 = serverFaults();
    const engine0 = engineCpu();
    const start = performance.now();
    const end = start + DURATION * 1000;
    // Progress every 5 s: a rate that sags mid-run shows here, not in the mean.
    let lastAcked = 0;
    const progress = setInterval(() => {
      console.log(`  ${((performance.now() - start) / 1000).toFixed(0).padStart(4)} s: ${Math.round((ackedSpans - lastAcked) / 5)} spans/s acknowledged`);
      lastAcked = ackedSpans;
    }, 5000);
    await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
      const n = c % nodes, port = servers[n].port, agent = agents[n];
      let due = performance.now();
      while (performance.now() < end) {
        if (RATE > 0) {
          // Each connection offers its share of --rate: the next request is due one interval after the last one was.
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          due = Math.max(due, performance.now() - 1000) + (templates[0].spanCount * CONNECTIONS * 1000) / RATE;
        }
        const t = templates[next++ % templates.length];
        const req = fresh(t, Date.now());
        const t0 = performance.now();
        const tr = await post(agent, port, '/v1/traces', req.traces);
        if (tr.status === 429 || tr.status === 503) {
          refused++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (tr.status !== 200) throw new Error(`traces: unexpected status ${tr.status}`);
        latencies.push(performance.now() - t0);
        ackedSpans += t.spanCount - tr.rejected;
        ackedPerNode[n] += t.spanCount - tr.rejected;
        const lg = await post(agent, port, '/v1/logs', req.logs);
        if (lg.status === 429 || lg.status === 503) { refused++; continue; }
        if (lg.status !== 200) throw new Error(`logs: unexpected status ${lg.status}`);
        ackedLogs += t.logCount - lg.rejected;
        if (tr.rejected > 0 || lg.rejected > 0) continue;
        const id = req.ids.subarray(0, 16).toString('hex');
        lastTrace[n] = id;
        seen++;
        if (sample.length < 200) sample.push(id);
        else if (Math.random() * seen < 200) sample[Math.floor(Math.random() * 200)] = id;
      }
    }));
    clearInterval(progress);
    const sent = performance.now();
    const elapsed = (sent - start) / 1000;
    const client = process.cpuUsage(client0);
    for (const a of agents) a.destroy();

    // Until every acknowledged span is queryable (on DuckDB a trace lookup first loads all accepted
    // rows); with several nodes, each node's last trace is looked up on another node.
    let visibilityMs = NaN;
    for (let n = 0; n < nodes; n++) {
      const via = servers[(n + 1) % nodes];
      for (;;) {
        const r = await api<{ spans?: unknown[]; logs?: unknown[] }>(via, `/api/traces/${lastTrace[n]}`);
        if (r.status === 200 && r.body.spans?.length === 4) { visibilityMs = performance.now() - sent; break; }
        if (performance.now() - sent > 120_000) throw new Error(`acknowledged trace ${lastTrace[n]} not queryable after 120 s (status ${r.status})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const cpuUsPerSpan = ((serverCpu() - cpu0) * 1e6) / Math.max(1, ackedSpans);
    const mainUsPerSpan = ((serverCpu(true) - main0) * 1e6) / Math.max(1, ackedSpans);
    const faultsPerSpan = (serverFaults() - faults0) / Math.max(1, ackedSpans);
    const engineUsPerSpan = ((engineCpu() - engine0) * 1e6) / Math.max(1, ackedSpans);
    let sampleBad = 0;
    for (const id of sample) {
      const r = await api<{ spans?: unknown[]; logs?: unknown[] }>(servers[0], `/api/traces/${id}`);
      if (r.status !== 200 || r.body.spans?.length !== 4 || r.body.logs?.length !== 1) sampleBad++;
    }

    for (const s of servers) await stopServer(s);
    let stored: { spans: number; logs: number; duplicates: number };
    let perNodeOk = true;
    if (target.kind === 'clickhouse') {
      const c = await countClickHouse(target.engine, target.database);
      stored = c;
      // Each node's stored spans (`node` column) against what that node acknowledged.
      const perNode = [...c.perNode.values()].sort((a, b) => a - b), acked = [...ackedPerNode].sort((a, b) => a - b);
      perNodeOk = perNode.join() === acked.join();
      console.log(`stored per node: ${perNode.join(', ')} spans (acknowledged per node: ${acked.join(', ')}); second copies: ${c.duplicates}`);
    } else {
      stored = { ...await countStored(servers[0].dataDir), duplicates: 0 };
    }

    latencies.sort((a, b) => a - b);
    const rate = ackedSpans / elapsed;
    const sustained = ackedSpans / (elapsed + visibilityMs / 1000);
    const clientUsPerSpan = (client.user + client.system) / Math.max(1, ackedSpans);
    const label = target.kind === 'clickhouse' ? `clickhouse (${nodes} node${nodes > 1 ? 's' : ''} on one chdb engine)` : 'duckdb';
    console.log(`[${label}] acknowledged ${ackedSpans} spans + ${ackedLogs} logs in ${elapsed.toFixed(1)} s over ${CONNECTIONS} connections; refused ${refused} requests`);
    console.log(`all queryable ${(visibilityMs / 1000).toFixed(2)} s after the last acknowledgement; sample of ${sample.length} traces checked through the API: ${sampleBad} wrong`);
    console.log(`stored after shutdown: ${stored.spans} spans, ${stored.logs} logs (acknowledged ${ackedSpans}, ${ackedLogs})`);
    console.log(`ack latency ms (traces): p50 ${percentile(latencies, 0.5).toFixed(1)} p99 ${percentile(latencies, 0.99).toFixed(1)}`);
    console.log(`tightloop CPU: ${cpuUsPerSpan.toFixed(1)} µs per span (all threads of the server process${nodes > 1 ? 'es' : ''}, logs included, until all visible), `
      + `main thread ${mainUsPerSpan.toFixed(1)} µs${target.kind === 'clickhouse' ? `; ClickHouse engine ${engineUsPerSpan.toFixed(1)} µs` : ' (DuckDB runs inside the server process)'}; `
      + `load generator ${clientUsPerSpan.toFixed(1)} µs; server minor page faults ${faultsPerSpan.toFixed(3)} per span`);
    return {
      label, rate, sustained, visibilityMs, p99: percentile(latencies, 0.99), cpuUsPerSpan, mainUsPerSpan, faultsPerSpan, engineUsPerSpan, clientUsPerSpan,
      ackedSpans, ackedLogs, storedSpans: stored.spans, storedLogs: stored.logs, duplicates: stored.duplicates, perNodeOk, sampleBad, refused, nodes,
    };
  } finally {
    for (const s of servers) {
      if (!s.stopped) {
        s.proc.kill('SIGTERM');
        await s.exited;
      }
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  }
}

const FAILED = 'FAILED: the stored count differs from the acknowledged count (or a sampled trace is incomplete, or a row was stored twice)';
const equal = (r: RunResult): boolean => r.storedSpans === r.ackedSpans && r.storedLogs === r.ackedLogs && r.sampleBad === 0 && r.duplicates === 0 && r.perNodeOk;

const fmt = (r: RunResult): string => [
  `spans_per_s=${Math.round(r.rate)}`, `sustained_spans_per_s=${Math.round(r.sustained)}`, `visible_after_ms=${Math.round(r.visibilityMs)}`,
  `stored_equals_acked=${equal(r) ? 1 : 0}`, `acked_spans=${r.ackedSpans}`, `stored_spans=${r.storedSpans}`, `acked_logs=${r.ackedLogs}`, `stored_logs=${r.storedLogs}`,
  `p99_ack_ms=${r.p99.toFixed(1)}`, `server_cpu_us_per_span=${r.cpuUsPerSpan.toFixed(1)}`, `main_thread_us_per_span=${r.mainUsPerSpan.toFixed(1)}`,
  `server_faults_per_span=${r.faultsPerSpan.toFixed(3)}`,
  `client_cpu_us_per_span=${r.clientUsPerSpan.toFixed(1)}`, `refused=${r.refused}`,
].join(' ');

const mean = (rs: RunResult[], k: 'rate' | 'sustained' | 'cpuUsPerSpan' | 'mainUsPerSpan' | 'faultsPerSpan' | 'engineUsPerSpan' | 'p99'): number => rs.reduce((x, y) => x + y[k], 0) / rs.length;

/**
 * `--store clickhouse`: per round, this build on DuckDB, this build on ClickHouse (`--nodes`
 * servers ingesting at once into one database of one chdb engine) and, with `--against BIN`,
 * that build on ClickHouse; a fresh database per run. tightloop's CPU (the server processes)
 * and the engine's are measured apart.
 */
async function clickHouseRuns(templates: Template[]): Promise<boolean> {
  const nodes = Math.max(1, arg('nodes', 1));
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-bench-ch-'));
  const engine = await startBenchEngine(dir);
  let db = 0;
  const ch = (): Target => ({ kind: 'clickhouse', engine, database: `ingest_${++db}`, nodes });
  try {
    const duck: RunResult[] = [], mine: RunResult[] = [], theirs: RunResult[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      duck.push(await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS'), { kind: 'duckdb' }));
      mine.push(await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS'), ch()));
      if (AGAINST !== undefined) theirs.push(await run(AGAINST, templates, nodeArgs(process.env.BENCH_AGAINST_NODE_ARGS === undefined ? 'BENCH_NODE_ARGS' : 'BENCH_AGAINST_NODE_ARGS'), ch()));
    }
    const all = [...duck, ...mine, ...theirs];
    const ok = all.every(equal);
    if (!ok) console.error(FAILED);
    const fields = [`store=clickhouse`, `nodes=${nodes}`, `rounds=${ROUNDS}`, `stored_equals_acked=${ok ? 1 : 0}`,
      `duplicates=${all.reduce((x, r) => x + r.duplicates, 0)}`,
      `spans_per_s=${Math.round(mean(mine, 'rate'))}`, `duckdb_spans_per_s=${Math.round(mean(duck, 'rate'))}`,
      `sustained_spans_per_s=${Math.round(mean(mine, 'sustained'))}`, `duckdb_sustained_spans_per_s=${Math.round(mean(duck, 'sustained'))}`,
      `p99_ack_ms=${mean(mine, 'p99').toFixed(1)}`, `duckdb_p99_ack_ms=${mean(duck, 'p99').toFixed(1)}`,
      `server_cpu_us_per_span=${mean(mine, 'cpuUsPerSpan').toFixed(1)}`, `duckdb_server_cpu_us_per_span=${mean(duck, 'cpuUsPerSpan').toFixed(1)}`,
      `main_thread_us_per_span=${mean(mine, 'mainUsPerSpan').toFixed(1)}`, `duckdb_main_thread_us_per_span=${mean(duck, 'mainUsPerSpan').toFixed(1)}`,
      `engine_cpu_us_per_span=${mean(mine, 'engineUsPerSpan').toFixed(1)}`,
      // tightloop's CPU per acknowledged span into ClickHouse over into DuckDB (the DuckDB server's figure includes its embedded engine).
      `cpu_over_duckdb=${(mean(mine, 'cpuUsPerSpan') / mean(duck, 'cpuUsPerSpan')).toFixed(2)}`,
      `main_thread_over_duckdb=${(mean(mine, 'mainUsPerSpan') / mean(duck, 'mainUsPerSpan')).toFixed(2)}`];
    if (theirs.length > 0) {
      fields.push(`against_spans_per_s=${Math.round(mean(theirs, 'rate'))}`, `against_server_cpu_us_per_span=${mean(theirs, 'cpuUsPerSpan').toFixed(1)}`,
        `against_main_thread_us_per_span=${mean(theirs, 'mainUsPerSpan').toFixed(1)}`, `against_engine_cpu_us_per_span=${mean(theirs, 'engineUsPerSpan').toFixed(1)}`,
        `against_cpu_over_duckdb=${(mean(theirs, 'cpuUsPerSpan') / mean(duck, 'cpuUsPerSpan')).toFixed(2)}`,
        `cpu_ratio=${(mean(mine, 'cpuUsPerSpan') / mean(theirs, 'cpuUsPerSpan')).toFixed(2)}`,
        `engine_cpu_ratio=${(mean(mine, 'engineUsPerSpan') / mean(theirs, 'engineUsPerSpan')).toFixed(2)}`);
    }
    console.log(`RESULT ingest ${fields.join(' ')}`);
    return ok;
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (PORT === 0) PORT = await freePort();
  const templates = Array.from({ length: TEMPLATES }, (_, i) => makeTemplate(TRACES, i + 1));
  const t = templates[0];
  console.log(`requests: ${t.spanCount} spans (${(t.traces.length / 1024).toFixed(0)} KiB protobuf) + ${t.logCount} logs (${(t.logs.length / 1024).toFixed(0)} KiB); `
    + `${SERVICES} services × ${OPERATIONS} operations × ${VERSIONS} versions, ${TEMPLATES} templates, fresh ids/times/values per request; ${DURATION} s`);

  // Decode-only, same payloads, same process kind: the ceiling of one core's JS.
  let decoded = 0;
  const payloads = templates.map((x) => fresh(x, Date.now()).traces);
  const t0 = performance.now();
  while (performance.now() - t0 < 2000) for (const p of payloads) decoded += decodeTraces(p, 'protobuf').batch.length;
  const decodeRate = decoded / ((performance.now() - t0) / 1000);
  console.log(`decode only: ${Math.round(decodeRate)} spans/s`);

  let ok = true;
  if (STORE === 'clickhouse') {
    ok = await clickHouseRuns(templates);
  } else if (AGAINST === undefined) {
    const r = await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS'), { kind: 'duckdb' });
    ok = equal(r);
    if (!ok) console.error(FAILED);
    console.log(`RESULT ingest ${fmt(r)} decode_only_spans_per_s=${Math.round(decodeRate)}`);
  } else {
    const mine: RunResult[] = [], theirs: RunResult[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      mine.push(await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS'), { kind: 'duckdb' }));
      theirs.push(await run(AGAINST, templates, nodeArgs(process.env.BENCH_AGAINST_NODE_ARGS === undefined ? 'BENCH_NODE_ARGS' : 'BENCH_AGAINST_NODE_ARGS'), { kind: 'duckdb' }));
    }
    ok = mine.every(equal) && theirs.every(equal);
    if (!ok) console.error(FAILED);
    const a = { rate: mean(mine, 'rate'), sustained: mean(mine, 'sustained'), cpu: mean(mine, 'cpuUsPerSpan'), main: mean(mine, 'mainUsPerSpan'), faults: mean(mine, 'faultsPerSpan') };
    const b = { rate: mean(theirs, 'rate'), sustained: mean(theirs, 'sustained'), cpu: mean(theirs, 'cpuUsPerSpan'), main: mean(theirs, 'mainUsPerSpan'), faults: mean(theirs, 'faultsPerSpan') };
    console.log(`against ${AGAINST}: spans_per_s=${Math.round(b.rate)} sustained_spans_per_s=${Math.round(b.sustained)} server_cpu_us_per_span=${b.cpu.toFixed(1)}`);
    console.log(`RESULT ingest spans_per_s=${Math.round(a.rate)} sustained_spans_per_s=${Math.round(a.sustained)} stored_equals_acked=${ok ? 1 : 0} server_cpu_us_per_span=${a.cpu.toFixed(1)} `
      + `decode_only_spans_per_s=${Math.round(decodeRate)} against_spans_per_s=${Math.round(b.rate)} against_sustained_spans_per_s=${Math.round(b.sustained)} `
      + `ratio=${(a.sustained / b.sustained).toFixed(2)} cpu_ratio=${(a.cpu / b.cpu).toFixed(2)} main_thread_ratio=${(a.main / b.main).toFixed(2)} faults_ratio=${(a.faults / b.faults).toFixed(2)}`);
  }
  if (!ok) process.exitCode = 1;
}

await main();
