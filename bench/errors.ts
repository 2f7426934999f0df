/**
 * `npm run bench -- errors [--seconds 20] [--connections 64] [--groups 200] [--against BIN --rounds 2]`
 *
 * `--against BIN`: also runs another build's `bin/tightloop` (e.g. a checkout of the previous
 * commit, built) under the same load, alternating runs, and prints both and their ratio: the
 * only comparison that holds on a machine shared with other work.
 *
 * Starts tightloop in a child process, reads the default project's DSN from its start banner and
 * sends Sentry envelopes over keep-alive HTTP for a while: every event distinct (a fresh event id
 * and timestamp per request, bench/_sentry-load.ts), half of them ~50 KB (45-frame stack with
 * context lines and locals, 60 breadcrumbs, request headers; gzip-compressed as @sentry/node does
 * above 32 KB), half ~5 KB (20 frames, no context lines, 16 breadcrumbs; raw), from `--groups`
 * throw sites so grouping does real work. Measures acknowledged (durable, grouped) events/s and
 * the p99 acknowledgement latency; after the run the server is stopped and the stored events
 * are counted in its state database: the count must equal the acknowledged count and every
 * acknowledged id must be there once, else the run exits 1.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, freePort, percentile } from './_util.js';
import Database from 'better-sqlite3';
import { freshEnvelope, makeSentryTemplate, type SentryTemplate } from './_sentry-load.js';

const SECONDS = arg('seconds', 20);
const CONNECTIONS = arg('connections', 64);
const GROUPS = arg('groups', 200);
let PORT = arg('port', 0);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
function sarg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const AGAINST = sarg('against');
const ROUNDS = arg('rounds', 2);

function line(n: number): string {
  return `    const value${n} = await repository.load(request.params.id, { include: ['items', 'customer'] }); // ${n}`;
}

/** One realistic event: the stack of `site` (so GROUPS sites give GROUPS groups); ~50 KB, or ~5 KB when `small`. */
function makeEvent(site: number, seq: number, small = false): Record<string, unknown> {
  const n = small ? 20 : 45;
  const frames = Array.from({ length: n }, (_, i) => {
    const app = i >= n - 15 + (site % 5);
    const frame = {
      filename: app ? `/srv/app/src/services/service${site % 7}/handler${(i + site) % 50}.js` : `/srv/app/node_modules/framework/lib/layer${i}.js`,
      function: app ? `handle${site}_${i}` : `Layer.handle_${i}`,
      lineno: 100 + i + (site % 13), colno: 17, in_app: app,
    };
    return small ? frame : {
      ...frame,
      pre_context: [1, 2, 3].map((k) => line(i * 10 + k)),
      context_line: line(i * 10),
      post_context: [6, 7, 8].map((k) => line(i * 10 + k)),
      vars: { id: `order-${seq}`, attempt: i, options: { retry: true, timeoutMs: 5000 } },
    };
  });
  return {
    event_id: crypto.randomUUID().replace(/-/g, ''),
    timestamp: Date.now() / 1000,
    platform: 'node', level: 'error', release: `shop@1.${seq % 3}.0`, environment: seq % 5 === 0 ? 'staging' : 'production',
    server_name: 'web-1', transaction: `POST /orders/${site}`,
    exception: { values: [{ type: 'Error', value: `order ${seq} failed at step ${site}`, mechanism: { type: 'generic', handled: true }, stacktrace: { frames } }] },
    breadcrumbs: { values: Array.from({ length: small ? 16 : 60 }, (_, i) => ({ timestamp: Date.now() / 1000 - i, category: 'http', message: `GET /api/items/${i}?page=${seq}`, data: { status_code: 200 } })) },
    request: { method: 'POST', url: `https://shop.example.com/orders/${site}`, headers: { 'user-agent': 'Mozilla/5.0', accept: 'application/json', 'x-request-id': String(seq) } },
    user: { id: `u${seq % 1000}`, ip_address: '10.0.0.1' },
    tags: { team: 'checkout', region: 'eu-west-1' },
    contexts: { trace: { trace_id: crypto.randomUUID().replace(/-/g, ''), span_id: crypto.randomUUID().replace(/-/g, '').slice(0, 16) } },
    sdk: { name: 'sentry.javascript.node', version: '10.78.0' },
  };
}

function post(agent: Agent, path: string, body: Buffer, gzip: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, path, method: 'POST', agent,
      headers: { 'content-type': 'application/x-sentry-envelope', ...(gzip ? { 'content-encoding': 'gzip' } : {}), 'content-length': body.length } },
    (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU seconds per thread name (/proc/<pid>/task/<tid>/comm: main, worker, libuv pool, V8 helpers). */
function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        // The main thread's tid is the pid; worker threads and pools have names of their own.
        const key = tid === String(pid) ? 'main' : name;
        out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
      } catch { /* the thread ended */ }
    }
  } catch { /* not Linux */ }
  return out;
}

interface RunResult { rate: number; p99: number; cpuMsPerEvent: number; mainMsPerEvent: number; acked: number; stored: number; missing: number }

/** Events of the run in the state database the stopped server left: total, and acknowledged ids not among them. */
function storedEvents(dataDir: string, ids: string[]): { stored: number; missing: number } {
  const db = new Database(join(dataDir, 'state.db'), { readonly: true });
  try {
    const stored = Number((db.prepare('SELECT count(*) AS n FROM errors_events').get() as { n: number }).n);
    // One pass over the ids (event_id has no index of its own: a lookup per id scanned the
    // table each time, minutes for 60 k events).
    const times = new Map<string, number>();
    for (const r of db.prepare('SELECT event_id AS id FROM errors_events').iterate() as Iterable<{ id: string }>) times.set(r.id, (times.get(r.id) ?? 0) + 1);
    const missing = ids.filter((id) => times.get(id) !== 1).length;
    return { stored, missing };
  } finally {
    db.close();
  }
}

async function run(bin: string, templates: SentryTemplate[]): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-errors-'));
  const server = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''), bin, 'up', '--data-dir', dataDir, '--port', String(PORT), '--gateway-port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let stopped = false;
  try {
    const dsn = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('server did not print its DSN')), 30_000);
      server.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Sentry DSN\s+(\S+)/.exec(out);
        if (m !== null) { clearTimeout(timer); resolve(m[1]); }
      });
    });
    server.stdout.resume();
    const u = new URL(dsn);
    const path = `/api${u.pathname}/envelope/?sentry_key=${u.username}`;
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const latencies: number[] = [];
    let acked = 0, refused = 0, i = 0;
    const ackedIds: string[] = [];
    const cpu0 = cpuSeconds(server.pid);
    const main0 = cpuSeconds(server.pid, true);
    const threads0 = threadCpu(server.pid);
    const client0 = process.cpuUsage();
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const tpl = templates[i++ % templates.length];
        const id = randomUUID().replace(/-/g, '');
        const body = freshEnvelope(tpl, id);
        const t = performance.now();
        const status = await post(agent, path, body, tpl.parts !== undefined);
        if (status === 200) { latencies.push(performance.now() - t); acked++; ackedIds.push(id); }
        else if (status === 429 || status === 503) { refused++; await new Promise((r) => setTimeout(r, 50)); }
        else throw new Error(`unexpected status ${status}`);
      }
    }));
    const elapsed = (performance.now() - start) / 1000;
    const cpuMsPerEvent = ((cpuSeconds(server.pid) - cpu0) * 1000) / Math.max(1, acked);
    // The main (event-loop) thread is the serial part: its CPU per event bounds the rate per core.
    const mainMsPerEvent = ((cpuSeconds(server.pid, true) - main0) * 1000) / Math.max(1, acked);
    const threads1 = threadCpu(server.pid);
    const client = process.cpuUsage(client0);
    agent.destroy();
    const perThread = [...threads1].map(([k, v]) => [k, ((v - (threads0.get(k) ?? 0)) * 1000) / Math.max(1, acked)] as const)
      .filter(([, v]) => v >= 0.005).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`);
    latencies.sort((a, b) => a - b);
    console.log(`acknowledged ${acked} events in ${elapsed.toFixed(1)} s over ${CONNECTIONS} connections; refused ${refused}`);
    console.log(`server CPU: ${cpuMsPerEvent.toFixed(2)} ms per event (all threads) → ${Math.round(1000 / cpuMsPerEvent)} events/s per core; main thread ${mainMsPerEvent.toFixed(2)} ms per event`);
    console.log(`server CPU ms per event by thread: ${perThread.join(', ')}; this client ${((client.user + client.system) / 1000 / Math.max(1, acked)).toFixed(2)}`);
    console.log(`ack latency ms: p50 ${percentile(latencies, 0.5).toFixed(1)} p99 ${percentile(latencies, 0.99).toFixed(1)}`);
    server.kill('SIGTERM');
    stopped = true;
    const code = await exited;
    if (code !== 0) throw new Error(`server exited ${code} on SIGTERM`);
    const { stored, missing } = storedEvents(dataDir, ackedIds);
    console.log(`stored after shutdown: ${stored} events (acknowledged ${acked}; acknowledged ids not stored exactly once: ${missing})`);
    return { rate: acked / elapsed, p99: percentile(latencies, 0.99), cpuMsPerEvent, mainMsPerEvent, acked, stored, missing };
  } finally {
    if (!stopped) {
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}


const equal = (r: RunResult): boolean => r.stored === r.acked && r.missing === 0;
const FAILED = 'FAILED: the stored events differ from the acknowledged ones';

async function main(): Promise<void> {
  if (PORT === 0) PORT = await freePort();
  // Templates made up front (the client must not compete with the server for CPU); each request
  // fills in a fresh event id and timestamp. Every other template is a small event.
  const templates: SentryTemplate[] = [];
  for (let i = 0; i < 2 * GROUPS; i++) {
    const small = i % 2 === 1;
    templates.push(makeSentryTemplate(makeEvent(Math.floor(i / 2), i, small), !small));
  }
  const big = templates[0], small = templates[1];
  console.log(`events: ${(big.bytes / 1024).toFixed(0)} KiB (${(freshEnvelope(big, '0'.repeat(32)).length / 1024).toFixed(1)} KiB gzip) and ${(small.bytes / 1024).toFixed(1)} KiB (raw), alternating; ${GROUPS} throw sites; fresh id and time per request`);
  const fmt = (r: RunResult): string => `events_per_s=${Math.round(r.rate)} stored_equals_acked=${equal(r) ? 1 : 0} acked=${r.acked} stored=${r.stored} p99_ack_ms=${r.p99.toFixed(1)} server_cpu_ms_per_event=${r.cpuMsPerEvent.toFixed(2)} main_thread_ms_per_event=${r.mainMsPerEvent.toFixed(2)}`;
  if (AGAINST === undefined) {
    const r = await run(BIN, templates);
    if (!equal(r)) console.error(FAILED);
    console.log(`RESULT errors ${fmt(r)}`);
    if (!equal(r)) process.exitCode = 1;
    return;
  }
  const mine: RunResult[] = [], theirs: RunResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    console.log(`round ${r + 1}: this build`);
    mine.push(await run(BIN, templates));
    console.log(`round ${r + 1}: ${AGAINST}`);
    theirs.push(await run(AGAINST, templates));
  }
  const avg = (rs: RunResult[], k: keyof RunResult): number => rs.reduce((a, x) => a + x[k], 0) / rs.length;
  const mean = (rs: RunResult[]): RunResult => ({
    rate: avg(rs, 'rate'), p99: avg(rs, 'p99'), cpuMsPerEvent: avg(rs, 'cpuMsPerEvent'), mainMsPerEvent: avg(rs, 'mainMsPerEvent'),
    acked: avg(rs, 'acked'), stored: avg(rs, 'stored'), missing: avg(rs, 'missing'),
  });
  const a = mean(mine), b = mean(theirs);
  const ok = mine.every(equal) && theirs.every(equal);
  if (!ok) console.error(FAILED);
  console.log(`against: ${fmt(b)}`);
  console.log(`RESULT errors ${fmt(a)} against_events_per_s=${Math.round(b.rate)} ratio=${(a.rate / b.rate).toFixed(2)} cpu_ratio=${(a.cpuMsPerEvent / b.cpuMsPerEvent).toFixed(2)} main_thread_ratio=${(a.mainMsPerEvent / b.mainMsPerEvent).toFixed(2)}`);
  if (!ok) process.exitCode = 1;
}

await main();
