/**
 * `npm run bench -- ingest [--seconds 20] [--connections 8] [--spans 1000] [--against BIN --rounds 2]`
 *
 * Each server runs with the Node flags of its bin's shebang line (as `tightloop up` starts), plus
 * `BENCH_NODE_ARGS` / `BENCH_AGAINST_NODE_ARGS`: Node flags for this build's / the other build's
 * server child (the latter defaults to the former), e.g. to compare V8 heap settings side by side.
 *
 * `--against BIN`: also runs another build's `bin/tightloop` (e.g. the previous commit, built)
 * under the same load, alternating runs, and prints the ratio — the comparison that holds on a
 * machine shared with other work. `server_cpu_us_per_span` is the server's CPU (all threads,
 * from /proc) per acknowledged span.
 *
 * Starts tightloop in a child process (its own core), sends OTLP/protobuf requests of N realistic
 * spans over keep-alive HTTP connections for a while, and measures acknowledged spans/s and the
 * p99 acknowledgement latency. In the same run it measures the decode-only rate of the same
 * payloads, so the two figures are comparable on this noisy machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeTraces } from '../src/otlp/index.js';
import { arg, cpuSeconds, percentile } from './_util.js';
import { makeRealisticTracePayload } from '../src/otlp/fixtures.js';

const SECONDS = arg('seconds', 20);
const CONNECTIONS = arg('connections', 8);
const SPANS = arg('spans', 1000);
const PORT = arg('port', 14318);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));
const againstAt = process.argv.indexOf('--against');
const AGAINST = againstAt === -1 ? undefined : process.argv[againstAt + 1];
const ROUNDS = arg('rounds', 2);

function post(agent: Agent, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: PORT, path: '/v1/traces', method: 'POST', agent,
        headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitHealthy(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${PORT}/api/health`)).ok) return;
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

async function main(): Promise<void> {
  const payloads = Array.from({ length: 16 }, () => makeRealisticTracePayload(SPANS));
  console.log(`payload: ${SPANS} spans, ${(payloads[0].length / 1024).toFixed(0)} KiB protobuf`);

  // Decode-only, same payloads, same process kind.
  let decoded = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 3000) {
    for (const p of payloads) decoded += decodeTraces(p, 'protobuf').batch.length;
  }
  const decodeRate = decoded / ((performance.now() - t0) / 1000);
  console.log(`decode only: ${Math.round(decodeRate)} spans/s`);

  const fmt = (r: RunResult): string => `spans_per_s=${Math.round(r.rate)} p99_ack_ms=${r.p99.toFixed(1)}`;
  if (AGAINST === undefined) {
    const r = await run(BIN, payloads, nodeArgs('BENCH_NODE_ARGS'));
    console.log(`RESULT ingest ${fmt(r)} decode_only_spans_per_s=${Math.round(decodeRate)} server_cpu_us_per_span=${r.cpuUsPerSpan.toFixed(1)} main_thread_us_per_span=${r.mainUsPerSpan.toFixed(1)}`);
    return;
  }
  const mine: RunResult[] = [], theirs: RunResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    mine.push(await run(BIN, payloads, nodeArgs('BENCH_NODE_ARGS')));
    theirs.push(await run(AGAINST, payloads, nodeArgs(process.env.BENCH_AGAINST_NODE_ARGS === undefined ? 'BENCH_NODE_ARGS' : 'BENCH_AGAINST_NODE_ARGS')));
  }
  const mean = (rs: RunResult[], k: keyof RunResult): number => rs.reduce((x, y) => x + y[k], 0) / rs.length;
  const avg = (rs: RunResult[]): RunResult => ({ rate: mean(rs, 'rate'), p99: mean(rs, 'p99'), cpuUsPerSpan: mean(rs, 'cpuUsPerSpan'), mainUsPerSpan: mean(rs, 'mainUsPerSpan') });
  const a = avg(mine), b = avg(theirs);
  console.log(`against ${AGAINST}: ${fmt(b)} server_cpu_us_per_span=${b.cpuUsPerSpan.toFixed(1)}`);
  console.log(`RESULT ingest ${fmt(a)} decode_only_spans_per_s=${Math.round(decodeRate)} server_cpu_us_per_span=${a.cpuUsPerSpan.toFixed(1)} against_spans_per_s=${Math.round(b.rate)} ratio=${(a.rate / b.rate).toFixed(2)} cpu_ratio=${(a.cpuUsPerSpan / b.cpuUsPerSpan).toFixed(2)} main_thread_ratio=${(a.mainUsPerSpan / b.mainUsPerSpan).toFixed(2)}`);
}

interface RunResult { rate: number; p99: number; cpuUsPerSpan: number; mainUsPerSpan: number }

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

async function run(bin: string, payloads: Uint8Array[], flags: string[]): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-'));
  const server = spawn(process.execPath, [...shebangFlags(bin), ...flags, bin, 'up', '--data-dir', dataDir, '--port', String(PORT), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitHealthy();
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const latencies: number[] = [];
    let ackedSpans = 0;
    let refused = 0;
    let i = 0;
    const client0 = process.cpuUsage();
    const cpu0 = cpuSeconds(server.pid);
    const main0 = cpuSeconds(server.pid, true);
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const body = payloads[i++ % payloads.length];
        const t = performance.now();
        const status = await post(agent, body);
        if (status === 200) {
          latencies.push(performance.now() - t);
          ackedSpans += SPANS;
        } else if (status === 429 || status === 503) {
          refused++;
          await new Promise((r) => setTimeout(r, 50));
        } else {
          throw new Error(`unexpected status ${status}`);
        }
      }
    }));
    const elapsed = (performance.now() - start) / 1000;
    agent.destroy();
    latencies.sort((a, b) => a - b);
    const rate = ackedSpans / elapsed;
    console.log(`acknowledged: ${ackedSpans} spans in ${elapsed.toFixed(1)} s over ${CONNECTIONS} connections; refused ${refused} requests`);
    console.log(`ack latency ms: p50 ${percentile(latencies, 0.5).toFixed(1)} p99 ${percentile(latencies, 0.99).toFixed(1)}`);
    const cpuUsPerSpan = ((cpuSeconds(server.pid) - cpu0) * 1e6) / Math.max(1, ackedSpans);
    const mainUsPerSpan = ((cpuSeconds(server.pid, true) - main0) * 1e6) / Math.max(1, ackedSpans);
    const client = process.cpuUsage(client0);
    const clientUsPerSpan = (client.user + client.system) / Math.max(1, ackedSpans);
    console.log(`server CPU: ${cpuUsPerSpan.toFixed(1)} µs per span (all threads), main thread ${mainUsPerSpan.toFixed(1)} µs; load generator ${clientUsPerSpan.toFixed(1)} µs`);
    return { rate, p99: percentile(latencies, 0.99), cpuUsPerSpan, mainUsPerSpan };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
