/**
 * DuckDbTelemetryStore: the embedded TelemetryStore.
 *
 * Writes, with an ingest log (what `tightloop up` uses): append() resolves once the rows are in
 * the log and accepted; accepted rows are filled into DuckDB chunks at once and loaded in large
 * transactions (logged-ingest.ts, accept(), load()). Without one: append() runs BEGIN, the
 * appenders, COMMIT on a write connection — DuckDB writes and fsyncs its WAL inside COMMIT
 * (verified with strace: one fsync of the .wal per commit before the COMMIT call returns), so a
 * resolved append is durable. Two write connections let one group fill its chunks while the
 * previous one commits (WriteGate). Reads use a pool of other connections.
 *
 * Rollups and the trace index are aggregated in memory after each commit (or log accept) and persisted by a
 * flush every `flushIntervalMs`: every second closed for `secondGraceMs` (minute: `minuteGraceMs`)
 * plus whatever arrived late for already-flushed periods (written as extra partial rows that
 * queries merge). RED queries add the buffered rollups, so they see data as soon as it commits. A flush commits its rows together with the watermark (second Ws, minute Wm,
 * last ingest time S). Invariant: persisted rollups hold exactly the spans with
 * ingested_us ≤ S and start < W. So after a crash, open() replays precisely the spans with
 * start ≥ W or ingested_us > S — no loss, no double count. Flushes run one at a time and take
 * what they persist out of the buffers (rows accepted meanwhile stay); readers pair the buffers
 * with the persisted rows of the flushes committed so far (`flush_id`), see telemetry/README.md.
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBDataChunk } from '@duckdb/node-api';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { emptySpanBatch, type LogBatch, type MetricBatch, type SpanBatch } from './batch.js';
import { ChunkPool, type RowSource } from './duckdb-chunks.js';
import { WriteConnection } from './duckdb-write.js';
import { operationRollups, red, services } from './duckdb-red.js';
import { getTrace, logVolume, searchLogs, searchTraces } from './duckdb-queries.js';
import { queryMetric } from './duckdb-metrics.js';
import {
  LOG_COLUMNS, META_FLUSH_ID, META_FLUSHED_SEQ, META_LOG_LSN, META_MINUTE_WM, META_SECOND_WM, METRIC_COLUMNS, SCHEMA_DDL, SPAN_COLUMNS,
} from './duckdb-schema.js';
import { ReadPool, ResourceLookup, hexId, num, str, type SqlParams } from './duckdb-sql.js';
import { ResourceRegistry, type ResourceEntry } from './resource-registry.js';
import {
  RollupBuffer, deltasOf, rollupSecondOf, type CommittedRollupListener, type RollupListener, type RollupSecond,
} from './rollup.js';
import type {
  LogQuery, LogRow, LogVolumeBucket, LogVolumeQuery, MetricQuery, MetricSeries, RedBucket, RedQuery, ServiceSummary, Signal, SpanRow,
  TelemetryBatches, TelemetryStore, TraceQuery, TraceSummary,
} from './store.js';
import { BloomFilter, TraceIndex } from './trace-index.js';
import { WriteGate } from './write-gate.js';
import { LoggedIngest, type IngestLogOptions, type PendingRows } from './logged-ingest.js';
import { SpanFloor, type TelemetryLog } from './span-floor.js';
import { metrics } from '../core/metrics.js';

export interface DuckDbStoreOptions {
  /** Database file (e.g. `<data-dir>/telemetry.duckdb`). */
  path: string;
  readConnections?: number;
  /** Appends that may run at once (one connection each). Default 2. */
  writeConnections?: number;
  secondGraceMs?: number;
  minuteGraceMs?: number;
  flushIntervalMs?: number;
  /** Clock in µs (tests). */
  nowUs?: () => number;
  /** Extra DuckDB settings, e.g. `{ threads: '2', memory_limit: '2GB' }`. */
  config?: Record<string, string>;
  /**
   * Acknowledge appends once they are in tightloop's own log, and load them into DuckDB in large
   * transactions (logged-ingest.ts). Without it, append() resolves after its DuckDB COMMIT.
   */
  ingestLog?: IngestLogOptions;
  /** Where dropped spans and failed rollup flushes are reported (pino's Logger fits). */
  log?: TelemetryLog;
}

/** What the store dropped or failed to persist so far (nothing of it is silent: each is logged). */
export interface TelemetryStoreIntegrity {
  /** Spans dropped at ingest because they start before the last retention cutoff (span-floor.ts). */
  spansDroppedOlderThanRetention: number;
  /** Spans dropped at ingest because their start or duration is not a storable number (span-floor.ts). */
  spansDroppedOutOfRange: number;
  /** Rollup / trace index flushes that failed (their rows stay buffered and are retried). */
  flushFailures: number;
}

/** One committed append's batches (see onCommittedBatches). */
export interface CommittedBatches {
  spans: readonly SpanBatch[];
  logs: readonly LogBatch[];
  metrics: readonly MetricBatch[];
  /** The append's ingest time: the rows' `ingested_us` (always set by the DuckDB store). */
  seq?: number;
  /**
   * Every append with an ingest time up to this has settled (committed or failed). A subscriber
   * deriving data asynchronously persists this as its watermark once its own commit covers
   * everything up to it, and after a crash re-reads newer rows (e.g. spansWithEventSince).
   */
  settledThroughSeq?: number;
}

const US = 1_000_000;
/** Rows a load hands to DuckDB between turns of the event loop. */
const LOAD_SLICE_ROWS = 16_384;
const MIN_US = 60 * US;
const DAY_US = 86_400 * US;

/**
 * DuckDB worker threads: one core fewer than the machine has (at least one). The JS event loop,
 * which decodes OTLP and fills the appender's chunks, is what limits ingest; with as many DuckDB
 * threads as cores, DuckDB's extra thread competed with it for the CPU (side by side on 2 cores:
 * 1.12× spans/s and 0.88× CPU per span with 1 thread instead of 2), while the query benchmark's
 * lookups at 10 M rows took the same either way (telemetry/README.md). `config.threads` overrides it.
 */
export function defaultDuckDbThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Accepted rows as filled DuckDB chunks per table, waiting for a load (see accept()). */
interface PreparedRows {
  spans: DuckDBDataChunk[];
  logs: DuckDBDataChunk[];
  metrics: DuckDBDataChunk[];
  /** Resources first seen in these rows and not yet stored. */
  fresh: ResourceEntry[];
}

/** Two instances on one file in one process would corrupt it; DuckDB's file lock allows it. */
const openPaths = new Set<string>();

export class DuckDbTelemetryStore implements TelemetryStore {
  private instance: DuckDBInstance | undefined;
  private gate: WriteGate<WriteConnection> | undefined;
  private reads: ReadPool | undefined;
  private resourceLookup!: ResourceLookup;
  private readonly rollups = new RollupBuffer();
  private readonly traces = new TraceIndex();
  private readonly resources = new ResourceRegistry();
  private resourceTail: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<RollupListener>();
  private readonly committedListeners = new Set<CommittedRollupListener>();
  private readonly batchListeners = new Set<(c: CommittedBatches) => void>();
  /** Ingest times of appends between taking their time and settling (committed or failed). */
  private readonly appending = new Set<number>();
  /** Persisted watermarks: second / minute numbers since the epoch, ingest µs. */
  private wm = { second: 0, minute: 0, seq: 0 };
  /** Highest ingest time handed to an append. */
  private lastSeq = 0;
  /** With an ingest log: the write path, and the ingest time of the last accepted group. */
  private logged: LoggedIngest<PreparedRows> | undefined;
  /** Reused chunks of the three raw tables (a load returns what it appended). */
  private readonly pools = { spans: new ChunkPool(SPAN_COLUMNS), logs: new ChunkPool(LOG_COLUMNS), metrics: new ChunkPool(METRIC_COLUMNS) };
  private acceptedSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly nowUs: () => number;
  /** The last background flush failure (it is retried on the next tick). */
  lastFlushError: unknown;
  private flushFailures = 0;
  private readonly listenerLoggedAt = new Map<string, number>();
  /** Flushes run one after another: the chain's tail, and how many wait or run. */
  private flushTail: Promise<void> = Promise.resolve();
  private flushesQueued = 0;
  private readonly floor: SpanFloor;

  private readonly opts: DuckDbStoreOptions;

  /** A database file path, or options. */
  constructor(pathOrOptions: string | DuckDbStoreOptions) {
    this.opts = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
    this.path = this.opts.path === ':memory:' ? this.opts.path : resolve(this.opts.path);
    this.nowUs = this.opts.nowUs ?? (() => Date.now() * 1000);
    this.floor = new SpanFloor(this.opts.log);
  }

  /** Counters of what was dropped or failed (see TelemetryStoreIntegrity). */
  integrity(): TelemetryStoreIntegrity {
    return { spansDroppedOlderThanRetention: this.floor.dropped, spansDroppedOutOfRange: this.floor.outOfRange, flushFailures: this.flushFailures };
  }

  async open(): Promise<void> {
    if (this.instance) return;
    if (openPaths.has(this.path)) throw new Error(`telemetry database already open in this process: ${this.path}`);
    openPaths.add(this.path);
    try {
      this.instance = await DuckDBInstance.create(this.path, { checkpoint_threshold: '64MB', threads: String(defaultDuckDbThreads()), ...this.opts.config });
      const writers: WriteConnection[] = [];
      for (let i = 0; i < Math.max(this.opts.ingestLog ? 2 : 1, this.opts.writeConnections ?? 2); i++) writers.push(new WriteConnection(await this.instance.connect()));
      this.gate = new WriteGate(writers);
      for (const ddl of SCHEMA_DDL) await writers[0].con.run(ddl);
      const readers: DuckDBConnection[] = [];
      for (let i = 0; i < (this.opts.readConnections ?? 2); i++) readers.push(await this.instance.connect());
      this.reads = new ReadPool(readers);
      this.resourceLookup = new ResourceLookup(this.reads);
      let replayedSeq = 0;
      if (this.opts.ingestLog) {
        // Rows acknowledged from the log but not yet in DuckDB go in first: recover() then
        // rebuilds rollups and trace filters from DuckDB alone, as without a log.
        this.logged = new LoggedIngest(this.opts.ingestLog, {
          nextSeq: () => { this.lastSeq = Math.max(this.lastSeq + 1, this.nowUs()); return this.lastSeq; },
          keep: (b) => this.keep(b),
          accept: (p) => this.accept(p),
          load: (next) => this.writes.shared((w) => this.load(w, next)),
        });
        const loaded = await this.reads.rows(`SELECT lsn AS value FROM ingest_log_state WHERE key = '${META_LOG_LSN}'`);
        replayedSeq = await this.logged.replay(loaded.length === 0 ? 0 : num(loaded[0].value));
      }
      await this.recover();
      this.lastSeq = Math.max(this.lastSeq, replayedSeq);
      this.acceptedSeq = this.lastSeq;
    } catch (e) {
      this.release();
      throw e;
    }
    this.timer = setInterval(() => this.tick(), this.opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Loads watermarks and persisted trace filters, then replays spans the rollups lack. */
  private async recover(): Promise<void> {
    const sql = this.reads!;
    for (const r of await sql.rows('SELECT key, value FROM telemetry_meta')) {
      const v = num(r.value);
      if (r.key === META_SECOND_WM) this.wm.second = v;
      else if (r.key === META_MINUTE_WM) this.wm.minute = v;
      else if (r.key === META_FLUSHED_SEQ) this.wm.seq = v;
      else if (r.key === META_FLUSH_ID) this.rollups.flushId = v;
    }
    this.traces.load((await sql.rows('SELECT minute_us, hashes, bits FROM trace_blooms')).map((r) => ({
      minuteUs: num(r.minute_us),
      filter: BloomFilter.fromBytes(r.bits as Uint8Array, num(r.hashes)),
    })));
    const { second, minute, seq } = this.wm;
    const lo = Math.min(second * US, minute * MIN_US);
    const cols = 'trace_id, start_us, service, name, version, environment, kind, parent_span_id, duration_ns, status_code, ingested_us';
    const rows = await sql.rows(`SELECT ${cols} FROM spans WHERE start_us >= $lo::BIGINT
      UNION ALL SELECT ${cols} FROM spans WHERE ingested_us > $seq::BIGINT AND start_us < $lo::BIGINT`, { lo, seq });
    const maxSeq = await sql.rows('SELECT max(ingested_us) AS m FROM spans WHERE ingested_us > $seq::BIGINT', { seq });
    this.lastSeq = Math.max(seq, num(maxSeq[0]?.m));
    if (rows.length === 0) return;
    const b = emptySpanBatch();
    const ingested: number[] = [];
    for (const r of rows) {
      b.traceId.push(hexId(r.trace_id, 32));
      b.startUs.push(num(r.start_us));
      b.service.push(str(r.service));
      b.name.push(str(r.name));
      b.version.push(str(r.version));
      b.environment.push(str(r.environment));
      b.kind.push(num(r.kind));
      b.parentSpanId.push(hexId(r.parent_span_id, 16));
      b.durationNs.push(num(r.duration_ns));
      b.statusCode.push(num(r.status_code));
      ingested.push(num(r.ingested_us));
    }
    b.length = rows.length;
    const late = (i: number): boolean => ingested[i] > seq;
    const minuteKept = (i: number): boolean => late(i) || Math.floor(b.startUs[i] / MIN_US) >= minute;
    this.rollups.add(b, { second: (i) => late(i) || Math.floor(b.startUs[i] / US) >= second, minute: minuteKept });
    this.traces.add(b.traceId, b.startUs, b.length, minuteKept);
  }

  private get writes(): WriteGate<WriteConnection> {
    if (!this.gate) throw new Error('telemetry store is not open');
    return this.gate;
  }

  async append(batches: TelemetryBatches[]): Promise<void> {
    if (this.logged) return this.logged.append(batches);
    const spans = batches.map((b) => b.spans).filter((b): b is SpanBatch => !!b && b.length > 0);
    const logs = batches.map((b) => b.logs).filter((b): b is LogBatch => !!b && b.length > 0);
    const metrics = batches.map((b) => b.metrics).filter((b): b is MetricBatch => !!b && b.length > 0);
    if (spans.length + logs.length + metrics.length === 0) return;
    await this.writes.shared(async (w) => {
      const seq = Math.max(this.lastSeq + 1, this.nowUs());
      this.lastSeq = seq;
      this.appending.add(seq);
      try {
        await this.appendAt(w, seq, spans, logs, metrics);
      } finally {
        this.appending.delete(seq);
      }
    });
  }

  private async appendAt(w: WriteConnection, seq: number, allSpans: SpanBatch[], logs: LogBatch[], metrics: MetricBatch[]): Promise<void> {
    const spans = this.floor.apply(allSpans);
    const fresh = new Map<string, ResourceEntry>();
    const spanSrc = this.rowSources(spans, fresh, seq), logSrc = this.rowSources(logs, fresh, seq);
    const metricSrc = this.rowSources(metrics, fresh, seq);
    if (fresh.size > 0) await this.storeResources(w, fresh);
    await w.transaction(async () => {
      await w.append('spans', SPAN_COLUMNS, spanSrc);
      await w.append('logs', LOG_COLUMNS, logSrc);
      await w.append('metric_points', METRIC_COLUMNS, metricSrc);
    });
    this.stored(spans, logs, metrics, seq);
  }

  /**
   * With an ingest log: rows durable in the log, in log order (see LoggedIngest). They are filled
   * into DuckDB chunks at once: a load commits for hundreds of ms, and batches that waited that
   * long as JS strings were copied by V8's scavenges and promoted (~25 % of what was allocated,
   * ~20 % of the main thread in GC).
   */
  private accept(p: PendingRows<PreparedRows>): PreparedRows {
    this.acceptedSeq = p.seq;
    this.stored(p.spans, p.logs, p.metrics, p.seq);
    return this.prepare(p);
  }

  /**
   * With an ingest log: the batches without spans the floor drops (span-floor.ts), before they
   * are logged. When some are dropped, the log keeps the rest as columns instead of the OTLP body.
   */
  private keep(b: TelemetryBatches): TelemetryBatches {
    if (!b.spans || b.spans.length === 0) return b;
    const kept = this.floor.apply([b.spans]);
    if (kept.length === 1 && kept[0] === b.spans) return b;
    return { spans: kept[0], logs: b.logs, metrics: b.metrics };
  }

  private prepare(p: PendingRows<PreparedRows>): PreparedRows {
    const fresh = new Map<string, ResourceEntry>();
    return {
      spans: this.pools.spans.fill(this.rowSources(p.spans, fresh, p.seq)),
      logs: this.pools.logs.fill(this.rowSources(p.logs, fresh, p.seq)),
      metrics: this.pools.metrics.fill(this.rowSources(p.metrics, fresh, p.seq)),
      fresh: [...fresh.values()],
    };
  }

  /** Batches as rows of their table: plus the resource id (new resources go to `fresh`) and the ingest time. */
  private rowSources(list: Array<SpanBatch | LogBatch | MetricBatch>, fresh: Map<string, ResourceEntry>, seq: number): RowSource[] {
    return list.map((b) => ({ length: b.length, cols: { ...b, resourceId: this.resources.resolve(b, fresh), ingestedUs: seq } }));
  }

  /** Rows just made durable (committed, or in the ingest log): rollups, trace index, listeners. */
  private stored(spans: SpanBatch[], logs: LogBatch[], metrics: MetricBatch[], seq: number): void {
    const deltas: RollupSecond[] | undefined = this.committedListeners.size > 0 ? [] : undefined;
    for (const b of spans) {
      const perSecond = this.rollups.add(b);
      if (deltas) deltasOf(perSecond, deltas);
      this.traces.add(b.traceId, b.startUs, b.length);
    }
    if (deltas) this.emitCommitted(deltas);
    if (this.batchListeners.size > 0) this.emitBatches({ spans, logs, metrics, seq, settledThroughSeq: this.settledThrough(seq) });
  }

  /**
   * With an ingest log: one load transaction. Appends the chunks of each list of accepted rows
   * `next()` yields (rows read back from the log are filled here) and returns them to the pool,
   * flushing them into the transaction every 16 k rows with a turn of the event loop between (the
   * appender's flush is synchronous), then the log position reached, then commits. Loads run one
   * at a time, so new resources go into the same transaction.
   */
  private async load(w: WriteConnection, next: () => Promise<readonly PendingRows<PreparedRows>[] | null>): Promise<void> {
    const fresh = new Map<string, ResourceEntry>();
    await w.transaction(async () => {
      let lsn = -1;
      let sliced = 0;
      for (let entries = await next(); entries !== null; entries = await next()) {
        for (const p of entries) {
          const ready = p.prepared ?? this.prepare(p); // rows read back from the log come as batches
          for (const e of ready.fresh) fresh.set(e.id, e);
          for (const [table, specs, pool, chunks] of [['spans', SPAN_COLUMNS, this.pools.spans, ready.spans],
            ['logs', LOG_COLUMNS, this.pools.logs, ready.logs], ['metric_points', METRIC_COLUMNS, this.pools.metrics, ready.metrics]] as const) {
            await w.appendChunks(table, specs, chunks);
            pool.release(chunks);
          }
          sliced += p.rows;
          if (sliced >= LOAD_SLICE_ROWS) {
            // The appender's flush into the transaction is synchronous: a turn of the loop between.
            w.flushAppended();
            await new Promise<void>((r) => setImmediate(r));
            sliced = 0;
          }
        }
        w.flushAppended();
        lsn = entries[entries.length - 1].lsn;
      }
      if (lsn < 0) return;
      const added = [...fresh.values()].filter((e) => !e.persisted);
      if (added.length > 0) await w.insertResources(added);
      await w.con.run(`INSERT OR REPLACE INTO ingest_log_state VALUES ('${META_LOG_LSN}', $l::BIGINT)`, { l: lsn });
    });
    this.resources.markPersisted(fresh.values());
  }

  /** Resolves once every acknowledged row can be read from DuckDB. */
  private visible(): Promise<void> {
    return this.logged ? this.logged.visible() : Promise.resolve();
  }

  /** Every append with an ingest time ≤ the result has settled (the one at `seq` counts as settled). */
  private settledThrough(seq: number): number {
    if (this.logged) return this.acceptedSeq;
    let low = this.lastSeq;
    for (const s of this.appending) if (s !== seq && s <= low) low = s - 1;
    return low;
  }

  /** Ingest time up to which every append has settled (0 on an empty store). */
  get settledThroughSeq(): number {
    return this.settledThrough(Number.NaN);
  }

  /**
   * Spans committed with an ingest time after `seq` that carry an event named `eventName`
   * (the columns the error pipeline needs; events as stored), oldest commit first — for
   * rebuilding data derived from spans after a crash. A LIKE over the events text; the
   * `ingested_us` predicate prunes old row groups by their zone maps.
   */
  async spansWithEventSince(seq: number, eventName: string): Promise<SpanBatch> {
    await this.visible();
    const rows = await this.sql.rows(`SELECT trace_id, span_id, name, start_us, service, version, environment, events
      FROM spans WHERE ingested_us > $seq::BIGINT AND events LIKE $pattern ORDER BY ingested_us`,
    { seq, pattern: `%"name":${JSON.stringify(eventName)}%` });
    const b = emptySpanBatch();
    for (const r of rows) {
      b.traceId.push(hexId(r.trace_id, 32));
      b.spanId.push(hexId(r.span_id, 16));
      b.name.push(str(r.name));
      b.startUs.push(num(r.start_us));
      b.service.push(str(r.service));
      b.version.push(str(r.version));
      b.environment.push(str(r.environment));
      b.events.push(str(r.events));
    }
    b.length = rows.length;
    return b;
  }

  /**
   * A subscriber (a detector) threw: its failure must not break ingest, nor pass in silence.
   * Counted always; logged when the kind starts failing and at most every 10 s after.
   */
  private listenerFailed(listener: string, err: unknown): void {
    metrics.inc('tightloop_telemetry_listener_failures_total', 'Telemetry subscribers (detectors) that threw on a delivery.', { listener });
    const now = Date.now();
    const last = this.listenerLoggedAt.get(listener);
    if (last !== undefined && now - last < 10_000) return;
    this.listenerLoggedAt.set(listener, now);
    this.opts.log?.error({ err, listener, failures: metrics.value('tightloop_telemetry_listener_failures_total', { listener }) },
      'telemetry: a subscriber failed on a delivery; ingest goes on');
  }

  /** Hands a committed append's batches (by reference, no copy) to subscribers. */
  private emitBatches(c: CommittedBatches): void {
    for (const l of this.batchListeners) {
      try { l(c); } catch (err) { this.listenerFailed('committed_batches', err); }
    }
  }

  /**
   * Subscribes to the batches of each committed append (spans, logs, metric points), delivered
   * on the calling thread right after the commit, before append resolves. Listeners must treat
   * the batches as read-only and must not block. Returns the unsubscribe function.
   */
  onCommittedBatches(listener: (c: CommittedBatches) => void): () => void {
    this.batchListeners.add(listener);
    return () => { this.batchListeners.delete(listener); };
  }

  /** Hands the rollup deltas of a committed append to subscribers (before append resolves). */
  private emitCommitted(deltas: RollupSecond[]): void {
    if (deltas.length === 0) return;
    for (const l of this.committedListeners) {
      try { l(deltas); } catch (err) { this.listenerFailed('committed_rollups', err); }
    }
  }

  /**
   * Subscribes to per-commit rollup deltas: the entry-span count, errors and sketch bins each
   * committed append adds per service × operation × version × environment × second, delivered
   * right after the commit (the flushed `onRollup` lags ~2 s). Returns the unsubscribe function.
   */
  onCommittedRollups(listener: CommittedRollupListener): () => void {
    this.committedListeners.add(listener);
    return () => { this.committedListeners.delete(listener); };
  }

  /**
   * New resources commit on their own, one insert at a time: two concurrent appends inserting
   * the same id would fail each other's commit. A resource whose rows then fail is harmless.
   */
  private storeResources(w: WriteConnection, fresh: Map<string, ResourceEntry>): Promise<void> {
    const run = this.resourceTail.then(async () => {
      const entries = [...fresh.values()].filter((e) => !e.persisted);
      if (entries.length === 0) return;
      await w.insertResources(entries);
      this.resources.markPersisted(entries);
    });
    // The failure reaches the append through `run`; the tail only keeps the chain going.
    this.resourceTail = run.catch(() => undefined);
    return run;
  }

  /**
   * Persists buffered rollups and trace filters of every period up to now, closed or not (open
   * ones become partial rows). Queries read persisted rollups only; the periodic flush lags by
   * the grace.
   */
  flush(): Promise<void> {
    return this.runFlush(true, false);
  }

  private tick(): void {
    // A flush still waiting or running (a slow commit) is not joined by another one.
    if (!this.gate || this.flushesQueued > 0) return;
    // Logged and counted once by runFlush's own handler (it also marks the store degraded).
    this.runFlush(false, false).catch(() => undefined);
  }

  /**
   * Queues a rollup flush behind the previous one: two flushes at once would both persist what
   * the buffers hold. Without a log it runs exclusively, so every append that took an ingest
   * time has reached the buffers. With one, `acceptedSeq` already says what the buffers hold, and
   * a load session may keep its transaction open for seconds: the flush takes the other write
   * connection (its tables and its row of `telemetry_meta` are not the load's).
   */
  private runFlush(all: boolean, exclusive: boolean): Promise<void> {
    this.flushesQueued++;
    const run = this.flushTail.then(() => (this.logged && !exclusive ? this.writes.shared((w) => this.flushRollups(w, all))
      : this.writes.exclusive((w) => this.flushRollups(w, all))));
    this.flushTail = run.then(
      () => {
        if (this.lastFlushError !== undefined) this.opts.log?.warn({ flushFailures: this.flushFailures }, 'telemetry: rollup flushes work again');
        this.lastFlushError = undefined;
        metrics.setDegraded('telemetry_flush', undefined);
      },
      (err: unknown) => {
        this.flushFailures++;
        metrics.inc('tightloop_telemetry_flush_failures_total', 'Rollup / trace index flushes that failed (rows stay buffered and are retried).');
        metrics.setDegraded('telemetry_flush', `the last rollup flush failed (retried each tick): ${err instanceof Error ? err.message : String(err)}`);
        if (this.lastFlushError === undefined) {
          this.opts.log?.error({ err, flushFailures: this.flushFailures }, 'telemetry: rollup flush failed; its rows stay buffered and are retried');
        }
        this.lastFlushError = err;
      },
    ).finally(() => { this.flushesQueued--; });
    return run;
  }

  private async flushRollups(w: WriteConnection, all: boolean): Promise<void> {
    const now = this.nowUs();
    let second = Math.max(this.wm.second, Math.floor((now - (this.opts.secondGraceMs ?? 2000) * 1000) / US));
    let minute = Math.max(this.wm.minute, Math.floor((now - (this.opts.minuteGraceMs ?? 15_000) * 1000) / MIN_US));
    if (all) {
      // Everything up to now, open periods included (they become partial rows). Spans dated in
      // the future stay buffered — the watermark must not jump ahead of the clock — and are
      // replayed from the raw rows after a restart.
      second = Math.max(second, Math.floor(now / US) + 1);
      minute = Math.max(minute, Math.floor(now / MIN_US) + 1);
    }
    // Taken out of the buffers together with the ingest time they cover (no await in between):
    // rows accepted while this flush commits go to fresh accumulators and stay buffered.
    // With a log, a group between taking its ingest time and being accepted is not in the buffers.
    const seq = this.logged ? this.acceptedSeq : this.lastSeq;
    const rows = this.rollups.take(second, minute);
    const blooms = this.traces.take(minute);
    if (rows.seconds.length + rows.minutes.length + blooms.length === 0) {
      this.rollups.restore(); // nothing taken: no transaction, no new flush id
      this.traces.restore();
      return;
    }
    const flushId = this.rollups.flushId + 1;
    try {
      await w.transaction(async () => {
        await w.insertRollups('rollup_second', rows.seconds, flushId);
        await w.insertRollups('rollup_minute', rows.minutes, flushId);
        await w.insertBlooms(blooms);
        await w.con.run(`INSERT OR REPLACE INTO telemetry_meta VALUES ('${META_SECOND_WM}', $s::BIGINT),
          ('${META_MINUTE_WM}', $m::BIGINT), ('${META_FLUSHED_SEQ}', $q::BIGINT), ('${META_FLUSH_ID}', $f::BIGINT)`,
        { s: second, m: minute, q: seq, f: flushId });
      });
    } catch (e) {
      this.rollups.restore();
      this.traces.restore();
      throw e;
    }
    this.wm = { second, minute, seq };
    this.rollups.committed();
    this.traces.committed(blooms);
    const flushed = rows.seconds.filter((r) => !r.allOperations).map(rollupSecondOf);
    if (flushed.length > 0) {
      for (const l of this.listeners) {
        try { l(flushed); } catch (err) { this.listenerFailed('flushed_rollups', err); }
      }
    }
  }

  /** Subscribes to flushed per-operation seconds; returns the unsubscribe function. */
  onRollup(listener: RollupListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async getTrace(traceId: string): Promise<SpanRow[]> {
    await this.visible();
    return getTrace(this.sql, this.resourceLookup, this.traces, traceId);
  }

  async searchTraces(q: TraceQuery): Promise<TraceSummary[]> {
    await this.visible();
    return searchTraces(this.sql, this.traces, q);
  }

  async searchLogs(q: LogQuery): Promise<LogRow[]> {
    await this.visible();
    return searchLogs(this.sql, this.resourceLookup, q);
  }

  async logVolume(q: LogVolumeQuery): Promise<LogVolumeBucket[]> {
    await this.visible();
    return logVolume(this.sql, q);
  }

  red(q: RedQuery): Promise<RedBucket[]> {
    return red(this.sql, this.rollups, q);
  }

  async services(fromUs: number, toUs: number): Promise<ServiceSummary[]> {
    await this.visible();
    return services(this.sql, this.rollups, fromUs, toUs);
  }

  /**
   * Per-operation rollup seconds (or minutes) of [fromUs, toUs), newest first, at most `limit`
   * rows: what detectors refill their windows from after a restart.
   */
  async operationRollups(level: 'second' | 'minute', fromUs: number, toUs: number, limit: number): Promise<RollupSecond[]> {
    return (await operationRollups(this.sql, this.rollups, level, fromUs, toUs, limit)).map(rollupSecondOf);
  }

  async queryMetric(q: MetricQuery): Promise<MetricSeries[]> {
    await this.visible();
    return queryMetric(this.sql, q);
  }

  private get sql(): ReadPool {
    if (!this.reads) throw new Error('telemetry store is not open');
    return this.reads;
  }

  async dropBefore(signal: Signal, cutoffUs: number): Promise<number> {
    const day = Math.floor(cutoffUs / DAY_US) * DAY_US;
    // From now on spans of the days about to go are dropped where rows are accepted: one
    // accepted meanwhile would be loaded after the DELETE, stored but neither rolled up nor
    // indexed (span-floor.ts). Everything accepted before is loaded first, then deleted.
    if (signal === 'spans') this.floor.raise(day);
    // With a log, a group whose records were built before the raise is accepted first, so the
    // load below takes it in; every later group was filtered before it was logged.
    await this.logged?.groupSettled();
    await this.visible();
    return this.writes.exclusive(async (w) => {
      const con = w.con;
      const p: SqlParams = { day };
      if (signal === 'logs') return num((await con.run('DELETE FROM logs WHERE time_us < $day::BIGINT', p)).rowsChanged);
      if (signal === 'metrics') return num((await con.run('DELETE FROM metric_points WHERE time_us < $day::BIGINT', p)).rowsChanged);
      // Rollups and trace filters describe spans and go with them.
      let removed = 0;
      await w.transaction(async () => {
        removed = num((await con.run('DELETE FROM spans WHERE start_us < $day::BIGINT', p)).rowsChanged);
        await con.run('DELETE FROM rollup_second WHERE period_us < $day::BIGINT', p);
        await con.run('DELETE FROM rollup_minute WHERE period_us < $day::BIGINT', p);
        await con.run('DELETE FROM trace_blooms WHERE minute_us < $day::BIGINT', p);
      });
      this.traces.forgetBefore(day);
      this.rollups.forgetBefore(day);
      return removed;
    });
  }

  async close(): Promise<void> {
    if (!this.instance) return;
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      await this.logged?.close();
      await this.runFlush(true, true);
    } finally {
      this.release();
    }
  }

  private release(): void {
    this.reads?.close();
    for (const w of this.gate?.all() ?? []) w.close();
    this.instance?.closeSync();
    this.reads = undefined;
    this.gate = undefined;
    this.instance = undefined;
    openPaths.delete(this.path);
    metrics.setDegraded('telemetry_flush', undefined);
  }
}
