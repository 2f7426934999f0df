/**
 * `npm run bench -- errors [--seconds 20] [--connections 64] [--groups 40] [--against BIN --rounds 2]`
 *
 * `--against BIN`: also runs another build's `bin/tightloop` (e.g. a checkout of the previous
 * commit, built) under the same load, alternating runs, and prints both and their ratio: the
 * only comparison that holds on a machine shared with other work.
 *
 * Starts tightloop in a child process, reads the default project's DSN from its start banner and
 * sends Sentry envelopes — one ~50 KB event each (60-frame stack with context lines and locals,
 * 100 breadcrumbs, request headers), gzip-compressed as @sentry/node does above 32 KB — over
 * keep-alive HTTP for a while. Measures acknowledged (durable, grouped) events/s and the p99
 * acknowledgement latency.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, cpuSeconds, percentile } from './_util.js';
import { gzipSync } from 'node:zlib';

const SECONDS = arg('seconds', 20);
const CONNECTIONS = arg('connections', 64);
const GROUPS = arg('groups', 40);
const PORT = arg('port', 14341);
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

/** One realistic event: the stack of `site` (so GROUPS sites give GROUPS groups). */
function makeEvent(site: number, seq: number): Record<string, unknown> {
  const frames = Array.from({ length: 45 }, (_, i) => {
    const app = i >= 30;
    return {
      filename: app ? `/srv/app/src/services/service${site % 7}/handler${i}.js` : `/srv/app/node_modules/framework/lib/layer${i}.js`,
      function: app ? `handle${site}_${i}` : `Layer.handle_${i}`,
      lineno: 100 + i, colno: 17, in_app: app,
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
    breadcrumbs: { values: Array.from({ length: 60 }, (_, i) => ({ timestamp: Date.now() / 1000 - i, category: 'http', message: `GET /api/items/${i}?page=${seq}`, data: { status_code: 200 } })) },
    request: { method: 'POST', url: `https://shop.example.com/orders/${site}`, headers: { 'user-agent': 'Mozilla/5.0', accept: 'application/json', 'x-request-id': String(seq) } },
    user: { id: `u${seq % 1000}`, ip_address: '10.0.0.1' },
    tags: { team: 'checkout', region: 'eu-west-1' },
    contexts: { trace: { trace_id: crypto.randomUUID().replace(/-/g, ''), span_id: crypto.randomUUID().replace(/-/g, '').slice(0, 16) } },
    sdk: { name: 'sentry.javascript.node', version: '10.78.0' },
  };
}

function envelope(ev: Record<string, unknown>): Buffer {
  const body = JSON.stringify(ev);
  const text = `${JSON.stringify({ event_id: ev.event_id, sent_at: new Date().toISOString() })}\n${JSON.stringify({ type: 'event', length: Buffer.byteLength(body) })}\n${body}\n`;
  return gzipSync(text);
}

function post(agent: Agent, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, path, method: 'POST', agent,
      headers: { 'content-type': 'application/x-sentry-envelope', 'content-encoding': 'gzip', 'content-length': body.length } },
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

interface RunResult { rate: number; p99: number; cpuMsPerEvent: number; mainMsPerEvent: number }

async function run(bin: string, bodies: Buffer[]): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-errors-'));
  const server = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''), bin, 'up', '--data-dir', dataDir, '--port', String(PORT), '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
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
    const cpu0 = cpuSeconds(server.pid);
    const main0 = cpuSeconds(server.pid, true);
    const threads0 = threadCpu(server.pid);
    const client0 = process.cpuUsage();
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await post(agent, path, bodies[i++ % bodies.length]);
        if (status === 200) { latencies.push(performance.now() - t); acked++; }
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
    return { rate: acked / elapsed, p99: percentile(latencies, 0.99), cpuMsPerEvent, mainMsPerEvent };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  // Distinct events prepared up front: the client must not compete with the server for CPU.
  const bodies: Buffer[] = [];
  for (let i = 0; i < 400; i++) bodies.push(envelope(makeEvent(i % GROUPS, i)));
  const rawSize = JSON.stringify(makeEvent(0, 0)).length;
  console.log(`event: ${(rawSize / 1024).toFixed(0)} KiB JSON, ${(bodies[0].length / 1024).toFixed(1)} KiB gzip envelope, ${GROUPS} throw sites`);
  const fmt = (r: RunResult): string => `events_per_s=${Math.round(r.rate)} p99_ack_ms=${r.p99.toFixed(1)} server_cpu_ms_per_event=${r.cpuMsPerEvent.toFixed(2)} main_thread_ms_per_event=${r.mainMsPerEvent.toFixed(2)}`;
  if (AGAINST === undefined) {
    console.log(`RESULT errors ${fmt(await run(BIN, bodies))}`);
    return;
  }
  const mine: RunResult[] = [], theirs: RunResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    console.log(`round ${r + 1}: this build`);
    mine.push(await run(BIN, bodies));
    console.log(`round ${r + 1}: ${AGAINST}`);
    theirs.push(await run(AGAINST, bodies));
  }
  const mean = (rs: RunResult[]): RunResult => ({
    rate: rs.reduce((a, x) => a + x.rate, 0) / rs.length,
    p99: rs.reduce((a, x) => a + x.p99, 0) / rs.length,
    cpuMsPerEvent: rs.reduce((a, x) => a + x.cpuMsPerEvent, 0) / rs.length,
    mainMsPerEvent: rs.reduce((a, x) => a + x.mainMsPerEvent, 0) / rs.length,
  });
  const a = mean(mine), b = mean(theirs);
  console.log(`against: ${fmt(b)}`);
  console.log(`RESULT errors ${fmt(a)} against_events_per_s=${Math.round(b.rate)} ratio=${(a.rate / b.rate).toFixed(2)} cpu_ratio=${(a.cpuMsPerEvent / b.cpuMsPerEvent).toFixed(2)} main_thread_ratio=${(a.mainMsPerEvent / b.mainMsPerEvent).toFixed(2)}`);
}

await main();
