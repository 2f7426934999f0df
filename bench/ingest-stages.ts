/**
 * `npm run bench -- ingest-stages [--spans 400000] [--no-io]`
 *
 * CPU per span of each stage of the OTLP ingest path, each measured in isolation in this one
 * process on the load of `npm run bench -- ingest` (bench/_ingest-load.ts: fresh 1,000-span trace
 * requests and their 250-record log requests). Stages, in the order a request meets them:
 *
 * 1. decode: OTLP protobuf → column batches (traces and logs);
 * 2. accept: rollups (RollupBuffer.add + the per-commit deltas detectors get) and the trace index;
 * 3. fill: batches → pooled DuckDB data chunks (resource ids included);
 * 4. log: the ingest log's write + fdatasync, groups of 20 requests (what the writer groups);
 * 5. load: the filled chunks appended to DuckDB in transactions of 131,072 rows, committed —
 *    DuckDB's own threads included (process CPU, all threads);
 * 6. store: DuckDbTelemetryStore.append with its ingest log, groups of 20 requests, then
 *    everything loaded: stages 2–5 together as the server runs them (no HTTP, no decode);
 * 7. errors: the errors module on a fresh SQLite state database, fed each request's spans as a
 *    committed append (what the DuckDB store hands it), one every `1000 / --errors-rate` spans'
 *    worth of ms (default 60,000 spans/s: how many appends a commit of the worker takes follows
 *    the rate), then closed (its queue committed): the exception events found on the main
 *    thread, grouped, compressed and committed by the errors commit worker (whose thread counts
 *    in "cpu", not in "main"). `--only errors` skips stages 2–6.
 *
 * "cpu" is the process's CPU (all threads: DuckDB's, V8's GC helpers), "main" the main thread's.
 * Decoded batches are made before each stage's clock starts, except for stage 1.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBDataChunk } from '@duckdb/node-api';
import { decodeLogs, decodeTraces } from '../src/otlp/index.js';
import type { LogBatch, SpanBatch } from '../src/telemetry/batch.js';
import { batchSource, ChunkPool, type RowSource } from '../src/telemetry/duckdb-chunks.js';
import { LOG_COLUMNS, SCHEMA_DDL, SPAN_COLUMNS } from '../src/telemetry/duckdb-schema.js';
import { WriteConnection } from '../src/telemetry/duckdb-write.js';
import { DuckDbTelemetryStore, defaultDuckDbThreads } from '../src/telemetry/duckdb-store.js';
import { IngestLog, type LogRecordIn } from '../src/telemetry/ingest-log.js';
import { ResourceRegistry, type ResourceEntry } from '../src/telemetry/resource-registry.js';
import { RollupBuffer, deltasOf } from '../src/telemetry/rollup.js';
import { TraceIndex } from '../src/telemetry/trace-index.js';
import { decodeRequest } from '../src/otlp/index.js';
import { openStateStore } from '../src/state/index.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { openErrorsModule } from '../src/errors/module.js';
import { errorsDb } from '../src/errors/tables.js';
import type { CommittedBatches } from '../src/telemetry/duckdb-store.js';
import { emptySpanBatch } from '../src/telemetry/batch.js';
import { arg } from './_util.js';
import { fresh, makeTemplate } from './_ingest-load.js';

const SPANS = arg('spans', 400_000);
const ERRORS_RATE = arg('errors-rate', 60_000);
const onlyAt = process.argv.indexOf('--only');
const ONLY = onlyAt === -1 ? undefined : process.argv[onlyAt + 1];
const GROUP = 20;

function threadCpu(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Cost { cpu: number; main: number; faults: number }

async function measure(spans: number, body: () => Promise<void> | void): Promise<Cost> {
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  const m0 = threadCpu();
  const f0 = process.resourceUsage().minorPageFault;
  await body();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / spans, main: ((threadCpu() - m0) * 1e6) / spans, faults: (process.resourceUsage().minorPageFault - f0) / spans };
}

const results: Array<[string, Cost]> = [];
function report(name: string, c: Cost): void {
  results.push([name, c]);
  console.log(`${name.padEnd(8)} ${c.cpu.toFixed(2).padStart(6)} µs/span all threads, ${c.main.toFixed(2).padStart(6)} µs main thread, ${c.faults.toFixed(3)} page faults`);
}

async function main(): Promise<void> {
  const templates = Array.from({ length: 12 }, (_, i) => makeTemplate(250, i + 1));
  const requests = Math.ceil(SPANS / templates[0].spanCount);
  const bodies = Array.from({ length: requests }, (_, i) => fresh(templates[i % templates.length], Date.now()));
  const spans = requests * templates[0].spanCount;
  console.log(`${requests} requests, ${spans} spans + ${requests * templates[0].logCount} logs; DuckDB threads ${defaultDuckDbThreads()}`);

  // Warm-up of the decoders (JIT), then 1. decode.
  for (let i = 0; i < Math.min(40, requests); i++) { decodeTraces(bodies[i].traces, 'protobuf'); decodeLogs(bodies[i].logs, 'protobuf'); }
  let decoded: Array<{ spans: SpanBatch; logs: LogBatch }> = [];
  report('decode', await measure(spans, () => {
    for (const b of bodies) decoded.push({ spans: decodeTraces(b.traces, 'protobuf').batch, logs: decodeLogs(b.logs, 'protobuf').batch });
  }));

  if (ONLY === 'errors') {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-stages-'));
    try {
      await errorsStage(dir, decoded.map((d) => d.spans));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }

  // 2. accept: rollups with the detectors' deltas, trace index.
  const rollups = new RollupBuffer();
  const traces = new TraceIndex();
  report('accept', await measure(spans, () => {
    for (const d of decoded) {
      deltasOf(rollups.add(d.spans));
      traces.addBatch(d.spans);
    }
  }));

  // 3. fill chunks (what accept() does after the rollups).
  const resources = new ResourceRegistry();
  const pools = { spans: new ChunkPool(SPAN_COLUMNS, 1024), logs: new ChunkPool(LOG_COLUMNS, 1024) };
  const seq = Date.now() * 1000;
  const src = (b: SpanBatch | LogBatch, fr: Map<string, ResourceEntry>): RowSource =>
    batchSource(b, { resourceId: resources.resolve(b, fr), ingestedUs: seq });
  const filled: Array<{ spans: DuckDBDataChunk[]; logs: DuckDBDataChunk[] }> = [];
  const fr = new Map<string, ResourceEntry>();
  report('fill', await measure(spans, () => {
    for (const d of decoded) filled.push({ spans: pools.spans.fill([src(d.spans, fr)]), logs: pools.logs.fill([src(d.logs, fr)]) });
  }));

  if (process.argv.includes('--no-io')) return; // the JS stages only (e.g. under --cpu-prof)
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-stages-'));
  try {
    // 4. the ingest log: the request bodies, groups of GROUP requests, one write + fdatasync each.
    const log = new IngestLog(join(dir, 'log'));
    log.open(0);
    report('log', await measure(spans, async () => {
      for (let i = 0; i < bodies.length; i += GROUP) {
        const records: LogRecordIn[] = [];
        for (const b of bodies.slice(i, i + GROUP)) records.push({ kind: 1, format: 0, payload: b.traces }, { kind: 2, format: 0, payload: b.logs });
        await log.append(records, seq + i);
      }
    }));
    log.close();

    // 5. load: chunks into DuckDB, transactions of 131,072 rows.
    const db = await DuckDBInstance.create(join(dir, 'load.duckdb'), { checkpoint_threshold: '64MB', threads: String(defaultDuckDbThreads()) });
    const w = new WriteConnection(await db.connect());
    for (const ddl of SCHEMA_DDL) await w.con.run(ddl);
    report('load', await measure(spans, async () => {
      let at = 0;
      while (at < filled.length) {
        let rows = 0;
        await w.transaction(async () => {
          for (; at < filled.length && rows < 131_072; at++) {
            await w.appendChunks('spans', SPAN_COLUMNS, filled[at].spans);
            await w.appendChunks('logs', LOG_COLUMNS, filled[at].logs);
            rows += decoded[at].spans.length + decoded[at].logs.length;
            if (at % 16 === 15) w.flushAppended();
          }
        });
      }
    }));
    w.close();
    db.closeSync();
    filled.length = 0;
    decoded = [];

    // 6. the store as the server runs it (ingest log, accept, chunks, loads), decode excluded.
    const store = new DuckDbTelemetryStore({
      path: join(dir, 'store.duckdb'),
      ingestLog: { dir: join(dir, 'store-log'), decode: (signal, format, body) => decodeRequest(signal, format, body).batches },
    });
    await store.open();
    store.onCommittedRollups(() => undefined);
    const reqs = bodies.map((b) => [decodeRequest('traces', 'protobuf', b.traces).batches, decodeRequest('logs', 'protobuf', b.logs).batches]);
    report('store', await measure(spans, async () => {
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < reqs.length; i += GROUP) {
        inFlight.push(store.append(reqs.slice(i, i + GROUP).flat()));
        if (inFlight.length >= 16) await inFlight.shift();
      }
      await Promise.all(inFlight);
      await store.getTrace('00000000000000000000000000000001'); // loads everything accepted
    }));
    await store.close();

    // 7. errors from the spans' exception events.
    await errorsStage(dir, bodies.map((b) => decodeTraces(b.traces, 'protobuf').batch));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const sum = results.filter(([n]) => n !== 'store' && n !== 'errors').reduce((a, [, c]) => ({ cpu: a.cpu + c.cpu, main: a.main + c.main, faults: a.faults + c.faults }), { cpu: 0, main: 0, faults: 0 });
  console.log(`RESULT ingest-stages ${results.map(([n, c]) => `${n}_us=${c.cpu.toFixed(2)}`).join(' ')} stages_sum_us=${sum.cpu.toFixed(2)} stages_sum_main_us=${sum.main.toFixed(2)}`);
}

/** 7. The errors module fed committed appends of `batches` at ERRORS_RATE spans/s, then closed. */
async function errorsStage(dir: string, batches: SpanBatch[]): Promise<void> {
  const statePath = join(dir, 'state.db');
  const state = await openStateStore({ dialect: 'sqlite', path: statePath, migrations: SERVER_STATE_MIGRATIONS });
  const listeners: Array<(c: CommittedBatches) => void> = [];
  let settled = 0;
  const log = { error: (obj: object, msg: string) => console.error(msg, obj), warn: (obj: object, msg: string) => console.error(msg, obj) };
  const errors = await openErrorsModule({
    state: state.db, submitSpans: () => Promise.resolve(), maxBodyBytes: 1 << 20, log, statePath,
    spans: {
      onCommittedBatches: (l) => { listeners.push(l); return () => undefined; },
      get settledThroughSeq() { return settled; },
      spansWithEventSince: () => Promise.resolve(emptySpanBatch()),
    },
  });
  let found = 0;
  errors.events.on('error.events', ({ counts }) => { for (const c of counts) found += c.count; });
  const spans = batches.reduce((n, b) => n + b.length, 0);
  const t0 = performance.now();
  let at = 0;
  const cost = await measure(spans, async () => {
    for (let i = 0; i < batches.length; i++) {
      const due = t0 + (at * 1000) / ERRORS_RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      settled = i + 1;
      for (const l of listeners) l({ spans: [batches[i]], logs: [], metrics: [], seq: i + 1, settledThroughSeq: i + 1 });
      at += batches[i].length;
    }
    await errors.close();
  });
  report('errors', cost);
  const row = await errorsDb(state.db).selectFrom('errors_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const stored = Number(row.n);
  console.log(`errors: ${stored} events stored (${found} counted), ${((cost.cpu * spans) / Math.max(1, stored)).toFixed(1)} µs per event all threads`);
  await state.close();
}

await main();
