/**
 * `npm run bench -- detect [--steps 24] [--port 14319]`
 *
 * 1. Detection latency: tightloop runs in a child process with a rules.yaml (error rate > 5 %
 *    over 2 s, `for: 0`, per service). Steady OTLP/JSON traffic, 100 SERVER spans/s for each of
 *    `steps` services; one service at a time steps to 100 % errors. For each step: time from the
 *    acknowledgement of the first bad request to the webhook receiving the firing alert (a real
 *    HTTP receiver in this process).
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
import { DetectEngine, detectMigrations, type DetectSource } from '../src/detect/index.js';
import { openStateStore } from '../src/state/index.js';
import { LatencySketch, type RollupSecond } from '../src/telemetry/index.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const STEPS = arg('steps', 24);
const PORT = arg('port', 14319);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

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

function post(agent: Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, path: '/v1/traces', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function detectionLatency(): Promise<{ latencies: number[]; missed: number }> {
  const fired = new Map<string, number>();
  const hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: Array<{ status: string; series: { service: string } }> };
      for (const a of body.alerts) if (a.status === 'firing' && !fired.has(a.series.service)) fired.set(a.series.service, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => hook.listen(0, '127.0.0.1', done));
  const hookPort = (hook.address() as { port: number }).port;

  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-detect-'));
  writeFileSync(join(dataDir, 'rules.yaml'), `receivers:
  - name: bench
    url: http://127.0.0.1:${hookPort}/hook
rules:
  - name: error rate
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.05
    window: 2s
    for: 0s
    min_count: 20
`);
  const server = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(PORT), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  const agent = new Agent({ keepAlive: true, maxSockets: STEPS + 4 });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try { if ((await fetch(`http://127.0.0.1:${PORT}/api/health`)).ok) break; } catch { /* starting */ }
      if (Date.now() > deadline) throw new Error('server did not start');
      await sleep(100);
    }
    const services = Array.from({ length: STEPS }, (_, i) => `svc-${i}`);
    const bad = new Set<string>();
    const firstBadAck = new Map<string, number>();
    let running = true;
    // Steady traffic: every 100 ms one 10-span request per service (100 spans/s each).
    const senders = services.map(async (svc) => {
      while (running) {
        const t = performance.now();
        const isBad = bad.has(svc);
        const status = await post(agent, payload(svc, 10, isBad ? 10 : 0));
        if (status !== 200) throw new Error(`ingest answered ${status}`);
        if (isBad && !firstBadAck.has(svc)) firstBadAck.set(svc, performance.now());
        await sleep(Math.max(0, 100 - (performance.now() - t)));
      }
    });
    await sleep(2500);
    for (const svc of services) {
      bad.add(svc);
      await sleep(800);
      bad.delete(svc);
      await sleep(200);
    }
    await sleep(1000);
    running = false;
    await Promise.all(senders);
    const latencies: number[] = [];
    let missed = 0;
    for (const svc of services) {
      const ack = firstBadAck.get(svc), got = fired.get(svc);
      if (ack === undefined || got === undefined) { missed++; continue; }
      // The alert can beat the ack: evaluation runs on commit, before the HTTP answer is read.
      latencies.push(Math.max(0, got - ack));
    }
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const alerts = await (await fetch(`http://127.0.0.1:${PORT}/api/alerts?state=all&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json() as { alerts: unknown[] };
    console.log(`steps: ${STEPS}, alerts recorded: ${alerts.alerts.length}, missed: ${missed}`);
    return { latencies: latencies.sort((a, b) => a - b), missed };
  } finally {
    agent.destroy();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    hook.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

class BenchSource implements DetectSource {
  listener: ((rows: RollupSecond[]) => void) | undefined;
  onCommittedRollups(l: (rows: RollupSecond[]) => void): () => void { this.listener = l; return () => undefined; }
  services = async (): Promise<never[]> => [];
  red = async (): Promise<never[]> => [];
}

async function evaluationCost(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-bench-eval-'));
  const state = await openStateStore({ dialect: 'sqlite', path: join(dir, 'state.db'), migrations: detectMigrations });
  const signals = ['error_rate', 'p95_ms', 'p99_ms', 'rate', 'error_rate', 'error_rate', 'p95_ms', 'rate', 'error_rate', 'p50_ms'];
  const rules: string[] = [];
  for (let s = 0; s < 100; s++) {
    for (let r = 0; r < 10; r++) {
      const sig = signals[r];
      const threshold = sig === 'error_rate' ? 0.5 : sig === 'rate' ? 1e9 : 10_000;
      rules.push(`  - { name: r${s}-${r}, type: threshold, select: { service: s${s} }, signal: ${sig}, threshold: ${threshold}, window: ${5 + r}s }`);
    }
  }
  writeFileSync(join(dir, 'rules.yaml'), `rules:\n${rules.join('\n')}\n`);
  let now = Date.now();
  const source = new BenchSource();
  const engine = new DetectEngine({ db: state.db, source, rulesFile: join(dir, 'rules.yaml'), nowMs: () => now, tickMs: 0 });
  await engine.start();
  const sketch = new LatencySketch();
  for (let i = 0; i < 20; i++) sketch.add((5 + i) * 1e6);
  const perRound: number[] = [];
  for (let round = 0; round < 8; round++) {
    const second = Math.floor(now / 1000) * 1e6;
    const rows: RollupSecond[] = [];
    for (let s = 0; s < 100; s++) {
      for (let o = 0; o < 100; o++) rows.push({ service: `s${s}`, operation: `op${o}`, version: '1', environment: 'prod', second, count: 20, errors: 1, sketch });
    }
    const t = performance.now();
    source.listener?.(rows);
    now += 1000;
    engine.tick();
    if (round >= 3) perRound.push(((performance.now() - t) * 1000) / rows.length);
  }
  await engine.stop();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
  perRound.sort((a, b) => a - b);
  return percentile(perRound, 0.5);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const evalUs = await evaluationCost();
  console.log(`evaluation: 1000 rules × 10000 series, one second of deltas + tick: ${evalUs.toFixed(2)} µs per series (median of 5)`);
  const { latencies } = await detectionLatency();
  const p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99);
  console.log(`ack of first bad request → webhook, ms: ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`RESULT detect p50_ms=${p50.toFixed(0)} p99_ms=${p99.toFixed(0)} eval_us_per_series=${evalUs.toFixed(2)}`);
}

await main();
