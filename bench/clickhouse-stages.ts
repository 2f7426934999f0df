/**
 * `npm run bench -- clickhouse-stages [--spans 100000] [--rounds 2] [--group 16] [--url clickhouse://…]`
 *
 * tightloop's own CPU per span on the ClickHouse write path beside the DuckDB one, in this one
 * process, on the load of `npm run bench -- ingest` (bench/_ingest-load.ts: fresh 1,000-span
 * trace requests and their 250-record log requests), decoded before each clock starts (decoding
 * is the same for both stores). Stages:
 *
 * - encode: the groups' rows as RowBinary INSERT bodies (clickhouse-rows.ts), nothing sent;
 * - clickhouse: ClickHouseTelemetryStore.append per group of `--group` requests (the writer's
 *   20,000-row groups: 16 requests of 1,250 rows), two in flight (CLICKHOUSE_WRITER_OPTIONS),
 *   an onCommittedRollups listener as the server has: encoding, HTTP, the rollup deltas. The
 *   engine runs in another process: its CPU is reported apart (`engine`);
 * - duckdb: DuckDbTelemetryStore.append with its ingest log, same groups, 16 in flight (what the
 *   server runs), then everything loaded — DuckDB's engine threads included, since they run in
 *   tightloop's process (`main` is the main thread alone).
 *
 * Rounds alternate the two stores so a machine shared with other work loads both alike. The
 * engine is the chdb test engine (test/clickhouse-engine, started here) unless `--url` names one.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRequest } from '../src/otlp/index.js';
import type { LogBatch, SpanBatch } from '../src/telemetry/batch.js';
import type { TelemetryBatches } from '../src/telemetry/store.js';
import { ClickHouseTelemetryStore, CLICKHOUSE_WRITER_OPTIONS } from '../src/telemetry/clickhouse-store.js';
import { RowBinaryWriter, writeLogRows, writeSpanRows } from '../src/telemetry/clickhouse-rows.js';
import { DuckDbTelemetryStore } from '../src/telemetry/duckdb-store.js';
import { arg } from './_util.js';
import { fresh, makeTemplate } from './_ingest-load.js';
import { startBenchEngine, type BenchEngine } from './_clickhouse-engine.js';

const SPANS = arg('spans', 100_000);
const ROUNDS = arg('rounds', 2);
const GROUP = arg('group', 16);
const urlAt = process.argv.indexOf('--url');
const URL_ARG = urlAt === -1 ? undefined : process.argv[urlAt + 1];

function threadCpu(pid: number, tid = pid): number {
  const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
function processCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Cost { cpu: number; main: number; engine: number; wallS: number }

async function measure(spans: number, enginePid: number | undefined, body: () => Promise<void> | void): Promise<Cost> {
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  const m0 = threadCpu(process.pid);
  const e0 = enginePid === undefined ? 0 : processCpu(enginePid);
  const t0 = performance.now();
  await body();
  const c = process.cpuUsage(c0);
  return {
    cpu: (c.user + c.system) / spans, main: ((threadCpu(process.pid) - m0) * 1e6) / spans,
    engine: enginePid === undefined ? 0 : ((processCpu(enginePid) - e0) * 1e6) / spans, wallS: (performance.now() - t0) / 1000,
  };
}

/** Appends the groups, at most `inFlight` at once. */
async function appendAll(store: { append(b: TelemetryBatches[]): Promise<void> }, groups: TelemetryBatches[][], inFlight: number): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (const g of groups) {
    pending.push(store.append(g));
    if (pending.length >= inFlight) await pending.shift();
  }
  await Promise.all(pending);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const templates = Array.from({ length: 12 }, (_, i) => makeTemplate(250, i + 1));
  const requests = Math.ceil(SPANS / templates[0].spanCount);
  const spans = requests * templates[0].spanCount;
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-ch-stages-'));
  let engine: BenchEngine | undefined;
  try {
    engine = URL_ARG ? undefined : await startBenchEngine(dir);
    const url = URL_ARG ?? engine!.url('stages');
    const enginePid = engine?.child.pid;
    console.log(`${requests} requests, ${spans} spans + ${requests * templates[0].logCount} logs per round, groups of ${GROUP} requests, ${ROUNDS} rounds; engine ${URL_ARG ?? engine!.http}`);
    const decode = (): TelemetryBatches[][] => {
      const bodies = Array.from({ length: requests }, (_, i) => fresh(templates[i % templates.length], Date.now()));
      const reqs = bodies.map((b) => [decodeRequest('traces', 'protobuf', b.traces).batches, decodeRequest('logs', 'protobuf', b.logs).batches]);
      const groups: TelemetryBatches[][] = [];
      for (let i = 0; i < reqs.length; i += GROUP) groups.push(reqs.slice(i, i + GROUP).flat());
      return groups;
    };
    const ch = new ClickHouseTelemetryStore({ url, nodeId: 'stages' });
    await ch.open();
    ch.onCommittedRollups(() => undefined);
    const duck = new DuckDbTelemetryStore({
      path: join(dir, 'store.duckdb'),
      ingestLog: { dir: join(dir, 'store-log'), decode: (signal, format, body) => decodeRequest(signal, format, body).batches },
    });
    await duck.open();
    duck.onCommittedRollups(() => undefined);
    // Warm-up (JIT, connections, first parts) on one group each.
    const warm = decode();
    await ch.append(warm[0]);
    await duck.append(warm[0]);

    const results: Record<'encode' | 'clickhouse' | 'duckdb', Cost[]> = { encode: [], clickhouse: [], duckdb: [] };
    const show = (name: string, c: Cost): void => console.log(`${name.padEnd(10)} ${c.cpu.toFixed(2).padStart(7)} µs/span all threads, ${c.main.toFixed(2).padStart(7)} µs main thread`
      + `${c.engine > 0 ? `, engine ${c.engine.toFixed(2)} µs` : ''}, ${(spans / c.wallS).toFixed(0)} spans/s`);
    for (let r = 0; r < ROUNDS; r++) {
      let groups = decode();
      const encode = await measure(spans, undefined, () => {
        for (const g of groups) {
          const sb = g.map((b) => b.spans).filter((b): b is SpanBatch => !!b);
          const lb = g.map((b) => b.logs).filter((b): b is LogBatch => !!b);
          const ws = new RowBinaryWriter();
          for (const b of sb) writeSpanRows(ws, b, 1, 'stages');
          const wl = new RowBinaryWriter();
          for (const b of lb) writeLogRows(wl, b, 1, 'stages');
        }
      });
      results.encode.push(encode);
      show('encode', encode);
      const c = await measure(spans, enginePid, () => appendAll(ch, groups, CLICKHOUSE_WRITER_OPTIONS.maxInFlight));
      results.clickhouse.push(c);
      show('clickhouse', c);
      groups = decode();
      const d = await measure(spans, undefined, async () => {
        await appendAll(duck, groups, 16);
        await duck.getTrace('00000000000000000000000000000001'); // loads everything accepted
      });
      results.duckdb.push(d);
      show('duckdb', d);
    }
    await ch.close();
    await duck.close();
    const m = (k: keyof typeof results, f: keyof Cost): number => median(results[k].map((c) => c[f]));
    console.log(`RESULT clickhouse-stages spans=${spans} rounds=${ROUNDS} group_requests=${GROUP} encode_us=${m('encode', 'cpu').toFixed(2)}`
      + ` clickhouse_us=${m('clickhouse', 'cpu').toFixed(2)} clickhouse_main_us=${m('clickhouse', 'main').toFixed(2)} engine_us=${m('clickhouse', 'engine').toFixed(2)}`
      + ` duckdb_us=${m('duckdb', 'cpu').toFixed(2)} duckdb_main_us=${m('duckdb', 'main').toFixed(2)}`
      + ` clickhouse_over_duckdb=${(m('clickhouse', 'cpu') / m('duckdb', 'cpu')).toFixed(2)} clickhouse_main_over_duckdb_main=${(m('clickhouse', 'main') / m('duckdb', 'main')).toFixed(2)}`);
  } finally {
    await engine?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
