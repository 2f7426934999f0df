/**
 * `npm run bench -- detect [--trials 200] [--services 32] [--interval 300] [--period 200] [--limit 5000] [--no-prometheus]`
 *
 * 1. Detection latency, tightloop and Prometheus + Alertmanager on the same signal in the same
 *    run. tightloop runs in a child process with a rules.yaml (error rate > 5 % over 2 s, at
 *    least 20 spans, `for: 0`, per service). Steady OTLP/JSON traffic: every `--period` ms a
 *    10-span request per service of a pool of `--services`. The same spans are counted, at the moment
 *    each request is sent, into counters this process serves at `/metrics`, which Prometheus
 *    (bench/_detect-peers.ts) scrapes every 1 s and evaluates every 1 s with the same rule,
 *    `for: 0s`, and Alertmanager routes with `group_wait: 0s`. Every `--interval` ms a trial
 *    starts: an idle service's requests turn 100 % errors until both systems fired (or
 *    `--limit` ms passed), then good again; the service is reused once both resolved and its
 *    last bad span is 4 s old. Latency: from the moment the client sends the first bad request
 *    of a trial to each system's webhook (a receiver in this process). A trial with no alert
 *    within `--limit` is missed and counts as infinitely slow in the percentiles; a firing alert
 *    for a service with no trial running is an early fire. Both are in RESULT.
 * 2. Evaluation cost, in this process: 1,000 rules over 10,000 series (100 services × 100
 *    operations, 10 rules per service fanning out per operation); one second of committed deltas
 *    for every series plus the periodic tick, divided by the series count.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectMigrations } from '../src/detect/index.js';
import { openStateStore } from '../src/state/index.js';
import { evaluationCost } from './_detect-eval.js';
import { startPeers, type Peers } from './_detect-peers.js';
import { freePort } from './_util.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const TRIALS = arg('trials', 200);
const POOL = arg('services', 32);
const INTERVAL_MS = arg('interval', 300);
const PERIOD_MS = arg('period', 200);
const LIMIT_MS = arg('limit', 5000);
const COOLDOWN_MS = 4000;
const PEERS = !process.argv.includes('--no-prometheus');
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

/** The value at quantile q; missed trials are Infinity and sort last. */
function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** One OTLP/JSON request: `n` SERVER spans of one service, `bad` of them with status ERROR. */
function payload(service: string, n: number, bad: number): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: hex(32), spanId: hex(16), name: 'GET /items', kind: 2,
    startTimeUnixNano: String(now - 20_000_000n), endTimeUnixNano: String(now),
    status: { code: i < bad ? 2 : 1 },
  }));
  return JSON.stringify({ resourceSpans: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }, { key: 'deployment.environment.name', value: { stringValue: 'bench' } }] },
    scopeSpans: [{ scope: { name: 'bench' }, spans }],
  }] });
}

function post(port: number, agent: Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/traces', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

type System = 'tightloop' | 'prometheus';

interface Trial {
  /** performance.now() right before the first bad request was sent (NaN until then). */
  sentAt: number;
  fired: Partial<Record<System, number>>;
  resolved: Partial<Record<System, number>>;
}

interface Service {
  name: string;
  bad: boolean;
  trial?: Trial;
  /** When the last bad request was sent. */
  lastBadAt: number;
  spans: number;
  errors: number;
  retired: boolean;
}

export interface SystemResult { latencies: number[]; missed: number; early: number }

async function detectionLatency(): Promise<{ results: Partial<Record<System, SystemResult>>; trials: number }> {
  const services: Service[] = Array.from({ length: POOL }, (_, i) => ({ name: `svc-${i}`, bad: false, lastBadAt: -Infinity, spans: 0, errors: 0, retired: false }));
  const byName = new Map(services.map((s) => [s.name, s]));
  const systems: System[] = ['tightloop'];
  const early: Record<System, number> = { tightloop: 0, prometheus: 0 };
  const done: Trial[] = [];

  const event = (system: System, service: string | undefined, status: string, at: number): void => {
    const svc = service === undefined ? undefined : byName.get(service);
    if (svc === undefined) return;
    const t = svc.trial;
    if (status === 'firing') {
      if (t === undefined || !(at >= t.sentAt)) early[system]++;
      else t.fired[system] ??= at;
    } else if (status === 'resolved' && t !== undefined && t.fired[system] !== undefined) {
      t.resolved[system] ??= at;
    }
  };
  const hook = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      const lines = ['# TYPE bench_spans_total counter', ...services.map((s) => `bench_spans_total{service="${s.name}"} ${s.spans}`),
        '# TYPE bench_span_errors_total counter', ...services.map((s) => `bench_span_errors_total{service="${s.name}"} ${s.errors}`)];
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: Array<{ status: string; series?: { service: string }; labels?: { service?: string } }> };
      const system: System = req.url === '/alertmanager' ? 'prometheus' : 'tightloop';
      for (const a of body.alerts) event(system, system === 'tightloop' ? a.series?.service : a.labels?.service, a.status, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookPort = (hook.address() as { port: number }).port;
  const port = await freePort();

  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-detect-'));
  writeFileSync(join(dataDir, 'rules.yaml'), `receivers:
  - name: bench
    url: http://127.0.0.1:${hookPort}/tightloop
rules:
  - name: error rate
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.05
    window: 2s
    for: 0s
    min_count: 20
    group_interval: 1s
`);
  const server = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(port), '--gateway-port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  const agent = new Agent({ keepAlive: true, maxSockets: POOL + 4 });
  let peers: Peers | undefined;
  let running = true;
  const senders: Promise<void>[] = [];
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try { if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) break; } catch { /* starting */ }
      if (Date.now() > deadline) throw new Error('server did not start');
      await sleep(100);
    }
    // Steady traffic: every PERIOD_MS one 10-span request per service, counted for Prometheus at
    // the moment it is sent.
    for (const svc of services) {
      senders.push((async () => {
        await sleep(Math.random() * PERIOD_MS);
        while (running) {
          const t = performance.now();
          const bad = svc.bad;
          if (bad) {
            if (svc.trial !== undefined && Number.isNaN(svc.trial.sentAt)) svc.trial.sentAt = t;
            svc.lastBadAt = t;
          }
          svc.spans += 10;
          if (bad) svc.errors += 10;
          const status = await post(port, agent, payload(svc.name, 10, bad ? 10 : 0));
          if (status !== 200) throw new Error(`ingest answered ${status}`);
          await sleep(Math.max(0, PERIOD_MS - (performance.now() - t)));
        }
      })());
    }
    if (PEERS) {
      peers = await startPeers(hookPort, `http://127.0.0.1:${hookPort}/alertmanager`);
      if (peers !== undefined) systems.push('prometheus');
    }
    await sleep(3000); // full windows of good traffic everywhere

    let started = 0;
    const active = new Set<Service>();
    const finish = (svc: Service): void => {
      done.push(svc.trial!);
      svc.trial = undefined;
      active.delete(svc);
    };
    const tickTrials = (): void => {
      const now = performance.now();
      for (const svc of [...active]) {
        const t = svc.trial!;
        if (Number.isNaN(t.sentAt)) continue;
        if (svc.bad && (systems.every((s) => t.fired[s] !== undefined) || now - t.sentAt > LIMIT_MS)) svc.bad = false;
        if (svc.bad) continue;
        const resolved = systems.every((s) => t.fired[s] === undefined || t.resolved[s] !== undefined);
        if (resolved && now - svc.lastBadAt > COOLDOWN_MS) finish(svc);
        else if (now - t.sentAt > LIMIT_MS + 30_000) { svc.retired = true; finish(svc); } // never resolved: do not reuse it
      }
    };
    let lastStart = -Infinity;
    while (started < TRIALS || active.size > 0) {
      tickTrials();
      const now = performance.now();
      if (started < TRIALS && now - lastStart >= INTERVAL_MS) {
        const idle = services.find((s) => !s.retired && s.trial === undefined && now - s.lastBadAt > COOLDOWN_MS);
        if (idle !== undefined) {
          idle.trial = { sentAt: NaN, fired: {}, resolved: {} };
          idle.bad = true;
          active.add(idle);
          started++;
          lastStart = now;
        } else if (services.every((s) => s.retired)) {
          throw new Error('every service is stuck firing');
        }
      }
      await sleep(20);
    }
    const results: Partial<Record<System, SystemResult>> = {};
    for (const s of systems) {
      const latencies = done.map((t) => (t.fired[s] !== undefined && t.fired[s] - t.sentAt <= LIMIT_MS ? t.fired[s] - t.sentAt : Infinity)).sort((a, b) => a - b);
      results[s] = { latencies, missed: latencies.filter((l) => l === Infinity).length, early: early[s] };
    }
    const retired = services.filter((s) => s.retired).length;
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const alerts = await (await fetch(`http://127.0.0.1:${port}/api/alerts?state=all&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json() as { alerts: unknown[] };
    console.log(`trials: ${done.length} over ${POOL} services, one every ${INTERVAL_MS} ms; tightloop alerts recorded: ${alerts.alerts.length}; services never resolved: ${retired}`);
    return { results, trials: done.length };
  } finally {
    running = false;
    await Promise.allSettled(senders);
    agent.destroy();
    await peers?.stop();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    hook.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : 'inf');

async function main(): Promise<void> {
  const t0 = performance.now();
  const evalDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-eval-'));
  const evalUs = await evaluationCost(() => openStateStore({ dialect: 'sqlite', path: join(evalDir, 'state.db'), migrations: detectMigrations }));
  rmSync(evalDir, { recursive: true, force: true });
  console.log(`evaluation: 1000 rules × 10000 series, one second of deltas + tick: ${evalUs.toFixed(2)} µs per series (median of 5)`);
  const { results, trials } = await detectionLatency();
  const fields = [`trials=${trials}`];
  for (const [system, r] of Object.entries(results)) {
    const p50 = percentile(r.latencies, 0.5), p99 = percentile(r.latencies, 0.99);
    console.log(`${system}: first bad request sent → webhook, ms: p50 ${ms(p50)} p99 ${ms(p99)} max ${ms(r.latencies[r.latencies.length - 1])}; missed ${r.missed}, early ${r.early}`);
    const prefix = system === 'tightloop' ? '' : `${system}_`;
    fields.push(`${prefix}p50_ms=${ms(p50)}`, `${prefix}p99_ms=${ms(p99)}`, `${prefix}missed=${r.missed}`, `${prefix}early=${r.early}`);
  }
  const tl = results.tightloop!, prom = results.prometheus;
  if (prom !== undefined) {
    const ratio = (q: number): string => (percentile(prom.latencies, q) / percentile(tl.latencies, q)).toFixed(1);
    fields.push(`prometheus_over_tightloop_p50=${ratio(0.5)}`, `prometheus_over_tightloop_p99=${ratio(0.99)}`);
  }
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`RESULT detect ${fields.join(' ')} eval_us_per_series=${evalUs.toFixed(2)}`);
}

await main();
