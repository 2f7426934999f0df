/**
 * `npm run bench -- ingest [--seconds 20] [--connections 8] [--spans 1000]`
 *
 * Starts tightloop in a child process (its own core), sends OTLP/protobuf requests of N realistic
 * spans over keep-alive HTTP connections for a while, and measures acknowledged spans/s and the
 * p99 acknowledgement latency. In the same run it measures the decode-only rate of the same
 * payloads, so the two figures are comparable on this noisy machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeTraces } from '../src/otlp/index.js';
import { makeRealisticTracePayload } from '../src/otlp/fixtures.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

const SECONDS = arg('seconds', 20);
const CONNECTIONS = arg('connections', 8);
const SPANS = arg('spans', 1000);
const PORT = arg('port', 14318);
const BIN = fileURLToPath(new URL('../../bin/tightloop', import.meta.url));

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

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
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

  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-bench-'));
  const server = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(PORT), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitHealthy();
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const latencies: number[] = [];
    let ackedSpans = 0;
    let refused = 0;
    let i = 0;
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
    console.log(`RESULT ingest spans_per_s=${Math.round(rate)} p99_ack_ms=${percentile(latencies, 0.99).toFixed(1)} decode_only_spans_per_s=${Math.round(decodeRate)}`);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
