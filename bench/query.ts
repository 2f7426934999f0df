/**
 * `npm run bench -- query [--rows 2000000]`
 *
 * Loads N spans and N logs spread over the last 24 h into a fresh DuckDB store, then times the
 * three queries the console leans on: a trace by id, a log text search, and a 24 h RED series.
 * Each query runs several times; the median is reported (the first run warms the caches).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDbTelemetryStore, loadSynthetic } from '../src/telemetry/index.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

const ROWS = arg('rows', 2_000_000);
const RUNS = 7;

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-qbench-'));
  const store = new DuckDbTelemetryStore(join(dir, 'telemetry.duckdb'));
  await store.open();
  try {
    const t0 = performance.now();
    const sample = await loadSynthetic(store, { spans: ROWS, logs: ROWS, hours: 24 });
    console.log(`loaded ${ROWS} spans + ${ROWS} logs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const nowUs = Date.now() * 1000;
    const dayUs = 24 * 3600 * 1e6;
    let spans = 0;
    let logs = 0;
    let buckets = 0;
    const traceMs = await median(async () => { spans = (await store.getTrace(sample.traceId)).length; });
    const logsMs = await median(async () => {
      logs = (await store.searchLogs({ q: sample.logTerm, fromUs: nowUs - dayUs, toUs: nowUs, limit: 100 })).length;
    });
    const redMs = await median(async () => {
      buckets = (await store.red({ service: sample.service, fromUs: nowUs - dayUs, toUs: nowUs, stepS: 300 })).length;
    });
    console.log(`trace by id: ${traceMs.toFixed(1)} ms (${spans} spans)`);
    console.log(`log search '${sample.logTerm}': ${logsMs.toFixed(1)} ms (${logs} rows)`);
    console.log(`24 h RED, 5 min step: ${redMs.toFixed(1)} ms (${buckets} buckets)`);
    console.log(`RESULT query rows=${ROWS} trace_ms=${traceMs.toFixed(1)} logs_ms=${logsMs.toFixed(1)} red_ms=${redMs.toFixed(1)}`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
