/**
 * `npm run bench -- ingest [--duration 60] [--connections 8] [--traces 250] [--against BIN --rounds 2]`
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
 * server CPU per span (all threads, and the main thread) and the generator's CPU per span.
 *
 * `--against BIN`: also runs another build's `bin/tightloop` under the same load, alternating
 * runs, and prints the ratio — the comparison that holds on a machine shared with other work.
 * Each server runs with the Node flags of its bin's shebang line plus `BENCH_NODE_ARGS` /
 * `BENCH_AGAINST_NODE_ARGS`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { decodeTraces } from '../src/otlp/index.js';
import { arg, cpuSeconds, freePort, percentile } from './_util.js';
import { fresh, makeTemplate, OPERATIONS, SERVICES, VERSIONS, type Template } from './_ingest-load.js';

const DURATION = arg('duration', 60);
const CONNECTIONS = arg('connections', 8);
const TRACES = arg('traces', 250);
let PORT = arg('port', 0);
const TEMPLATES = arg('templates', 12);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const againstAt = process.argv.indexOf('--against');
const AGAINST = againstAt === -1 ? undefined : process.argv[againstAt + 1];
const ROUNDS = arg('rounds', 2);

interface Posted { status: number; rejected: number }

/** POST one body; `rejected` from an Export*ServiceResponse's partial_success (field 1 → 1). */
function post(agent: Agent, path: string, body: Uint8Array): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: PORT, path, method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
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

async function waitHealthy(): Promise<void> {
  // 120 s: at load average ~20 on 2 cores a server took 18–19 s to answer /api/health, and a
  // 30 s limit ended alternating runs half-way.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${PORT}/api/health`)).ok) return;
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

interface RunResult {
  rate: number; sustained: number; visibilityMs: number; p99: number; cpuUsPerSpan: number; mainUsPerSpan: number; clientUsPerSpan: number;
  ackedSpans: number; ackedLogs: number; storedSpans: number; storedLogs: number; sampleBad: number; refused: number;
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

async function api<T>(token: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${PORT}${path}`, { headers: { authorization: `Bearer ${token}` } });
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

async function run(bin: string, templates: Template[], flags: string[]): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-'));
  const server = spawn(process.execPath, [...shebangFlags(bin), ...flags, bin, 'up', '--data-dir', dataDir, '--port', String(PORT), '--gateway-port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let stopped = false;
  try {
    await waitHealthy();
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const latencies: number[] = [];
    let ackedSpans = 0, ackedLogs = 0, refused = 0, next = 0;
    /** A reservoir of acknowledged trace ids (with their log acknowledged too) to check afterwards. */
    const sample: string[] = [];
    let seen = 0;
    let lastTrace = '';
    const client0 = process.cpuUsage();
    const cpu0 = cpuSeconds(server.pid);
    const main0 = cpuSeconds(server.pid, true);
    const start = performance.now();
    const end = start + DURATION * 1000;
    // Progress every 5 s: a rate that sags mid-run shows here, not in the mean.
    let lastAcked = 0;
    const progress = setInterval(() => {
      console.log(`  ${((performance.now() - start) / 1000).toFixed(0).padStart(4)} s: ${Math.round((ackedSpans - lastAcked) / 5)} spans/s acknowledged`);
      lastAcked = ackedSpans;
    }, 5000);
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const t = templates[next++ % templates.length];
        const req = fresh(t, Date.now());
        const t0 = performance.now();
        const tr = await post(agent, '/v1/traces', req.traces);
        if (tr.status === 429 || tr.status === 503) {
          refused++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (tr.status !== 200) throw new Error(`traces: unexpected status ${tr.status}`);
        latencies.push(performance.now() - t0);
        ackedSpans += t.spanCount - tr.rejected;
        const lg = await post(agent, '/v1/logs', req.logs);
        if (lg.status === 429 || lg.status === 503) { refused++; continue; }
        if (lg.status !== 200) throw new Error(`logs: unexpected status ${lg.status}`);
        ackedLogs += t.logCount - lg.rejected;
        if (tr.rejected > 0 || lg.rejected > 0) continue;
        const id = req.ids.subarray(0, 16).toString('hex');
        lastTrace = id;
        seen++;
        if (sample.length < 200) sample.push(id);
        else if (Math.random() * seen < 200) sample[Math.floor(Math.random() * 200)] = id;
      }
    }));
    clearInterval(progress);
    const sent = performance.now();
    const elapsed = (sent - start) / 1000;
    const client = process.cpuUsage(client0);
    agent.destroy();

    // Until every acknowledged span is queryable: a trace lookup first loads all accepted rows.
    let visibilityMs = NaN;
    for (;;) {
      const r = await api<{ spans?: unknown[]; logs?: unknown[] }>(token, `/api/traces/${lastTrace}`);
      if (r.status === 200 && r.body.spans?.length === 4) { visibilityMs = performance.now() - sent; break; }
      if (performance.now() - sent > 120_000) throw new Error(`acknowledged trace ${lastTrace} not queryable after 120 s (status ${r.status})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const cpuUsPerSpan = ((cpuSeconds(server.pid) - cpu0) * 1e6) / Math.max(1, ackedSpans);
    const mainUsPerSpan = ((cpuSeconds(server.pid, true) - main0) * 1e6) / Math.max(1, ackedSpans);
    let sampleBad = 0;
    for (const id of sample) {
      const r = await api<{ spans?: unknown[]; logs?: unknown[] }>(token, `/api/traces/${id}`);
      if (r.status !== 200 || r.body.spans?.length !== 4 || r.body.logs?.length !== 1) sampleBad++;
    }

    server.kill('SIGTERM');
    stopped = true;
    const code = await exited;
    if (code !== 0) throw new Error(`server exited ${code} on SIGTERM`);
    const stored = await countStored(dataDir);

    latencies.sort((a, b) => a - b);
    const rate = ackedSpans / elapsed;
    const sustained = ackedSpans / (elapsed + visibilityMs / 1000);
    const clientUsPerSpan = (client.user + client.system) / Math.max(1, ackedSpans);
    console.log(`acknowledged ${ackedSpans} spans + ${ackedLogs} logs in ${elapsed.toFixed(1)} s over ${CONNECTIONS} connections; refused ${refused} requests`);
    console.log(`all queryable ${(visibilityMs / 1000).toFixed(2)} s after the last acknowledgement; sample of ${sample.length} traces checked through the API: ${sampleBad} wrong`);
    console.log(`stored after shutdown: ${stored.spans} spans, ${stored.logs} logs (acknowledged ${ackedSpans}, ${ackedLogs})`);
    console.log(`ack latency ms (traces): p50 ${percentile(latencies, 0.5).toFixed(1)} p99 ${percentile(latencies, 0.99).toFixed(1)}`);
    console.log(`server CPU: ${cpuUsPerSpan.toFixed(1)} µs per span (all threads, logs included, until all visible), main thread ${mainUsPerSpan.toFixed(1)} µs; load generator ${clientUsPerSpan.toFixed(1)} µs`);
    return {
      rate, sustained, visibilityMs, p99: percentile(latencies, 0.99), cpuUsPerSpan, mainUsPerSpan, clientUsPerSpan,
      ackedSpans, ackedLogs, storedSpans: stored.spans, storedLogs: stored.logs, sampleBad, refused,
    };
  } finally {
    if (!stopped) {
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const FAILED = 'FAILED: the stored count differs from the acknowledged count (or a sampled trace is incomplete)';
const equal = (r: RunResult): boolean => r.storedSpans === r.ackedSpans && r.storedLogs === r.ackedLogs && r.sampleBad === 0;

const fmt = (r: RunResult): string => [
  `spans_per_s=${Math.round(r.rate)}`, `sustained_spans_per_s=${Math.round(r.sustained)}`, `visible_after_ms=${Math.round(r.visibilityMs)}`,
  `stored_equals_acked=${equal(r) ? 1 : 0}`, `acked_spans=${r.ackedSpans}`, `stored_spans=${r.storedSpans}`, `acked_logs=${r.ackedLogs}`, `stored_logs=${r.storedLogs}`,
  `p99_ack_ms=${r.p99.toFixed(1)}`, `server_cpu_us_per_span=${r.cpuUsPerSpan.toFixed(1)}`, `main_thread_us_per_span=${r.mainUsPerSpan.toFixed(1)}`,
  `client_cpu_us_per_span=${r.clientUsPerSpan.toFixed(1)}`, `refused=${r.refused}`,
].join(' ');


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
  if (AGAINST === undefined) {
    const r = await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS'));
    ok = equal(r);
    if (!ok) console.error(FAILED);
    console.log(`RESULT ingest ${fmt(r)} decode_only_spans_per_s=${Math.round(decodeRate)}`);
  } else {
    const mine: RunResult[] = [], theirs: RunResult[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      mine.push(await run(BIN, templates, nodeArgs('BENCH_NODE_ARGS')));
      theirs.push(await run(AGAINST, templates, nodeArgs(process.env.BENCH_AGAINST_NODE_ARGS === undefined ? 'BENCH_NODE_ARGS' : 'BENCH_AGAINST_NODE_ARGS')));
    }
    ok = mine.every(equal) && theirs.every(equal);
    if (!ok) console.error(FAILED);
    const mean = (rs: RunResult[], k: keyof RunResult): number => rs.reduce((x, y) => x + y[k], 0) / rs.length;
    const a = { rate: mean(mine, 'rate'), sustained: mean(mine, 'sustained'), cpu: mean(mine, 'cpuUsPerSpan'), main: mean(mine, 'mainUsPerSpan') };
    const b = { rate: mean(theirs, 'rate'), sustained: mean(theirs, 'sustained'), cpu: mean(theirs, 'cpuUsPerSpan'), main: mean(theirs, 'mainUsPerSpan') };
    console.log(`against ${AGAINST}: spans_per_s=${Math.round(b.rate)} sustained_spans_per_s=${Math.round(b.sustained)} server_cpu_us_per_span=${b.cpu.toFixed(1)}`);
    console.log(`RESULT ingest spans_per_s=${Math.round(a.rate)} sustained_spans_per_s=${Math.round(a.sustained)} stored_equals_acked=${ok ? 1 : 0} server_cpu_us_per_span=${a.cpu.toFixed(1)} `
      + `decode_only_spans_per_s=${Math.round(decodeRate)} against_spans_per_s=${Math.round(b.rate)} against_sustained_spans_per_s=${Math.round(b.sustained)} `
      + `ratio=${(a.sustained / b.sustained).toFixed(2)} cpu_ratio=${(a.cpu / b.cpu).toFixed(2)} main_thread_ratio=${(a.main / b.main).toFixed(2)}`);
  }
  if (!ok) process.exitCode = 1;
}

await main();
