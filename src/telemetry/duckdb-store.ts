/**
 * DuckDbTelemetryStore: the embedded TelemetryStore. It opens DuckDB and puts together the parts,
 * one job each:
 *
 * - the write path (duckdb-ingest.ts): with an ingest log (what `tightloop up` uses) append()
 *   resolves once the rows are in the log and accepted, and they are loaded in large
 *   transactions; without one append() resolves after its DuckDB COMMIT (DuckDB writes and
 *   fsyncs its WAL inside COMMIT: verified with strace). Two write connections let one group fill
 *   its chunks while the previous one commits (WriteGate). Reads use a pool of other connections.
 * - rollups and the trace index, aggregated in memory after each commit (or log accept) and
 *   persisted by a flush every `flushIntervalMs` (duckdb-flush.ts): every second closed for
 *   `secondGraceMs` (minute: `minuteGraceMs`) plus whatever arrived late for already-flushed
 *   periods (extra partial rows that queries merge). RED queries add the buffered rollups, so
 *   they see data as soon as it commits. A flush commits its rows with the watermarks; readers
 *   pair the buffers with the persisted rows of the flushes committed so far (`flush_id`).
 * - recovery after a start or a crash (duckdb-recover.ts): the spans the persisted rollups lack
 *   are put back into the buffers — no loss, no double count.
 * - the subscriber buses (duckdb-listeners.ts): committed batches, committed rollup deltas,
 *   flushed rollup seconds.
 *
 * The invariants and measurements: telemetry/README.md.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { emptySpanBatch, type LogBatch, type MetricBatch, type SpanBatch } from './batch.js';
import { WriteConnection } from './duckdb-write.js';
import { operationRollups, red, services } from './duckdb-red.js';
import { getTrace, logVolume, searchLogs, searchTraces } from './duckdb-queries.js';
import { queryMetric } from './duckdb-metrics.js';
import { META_LOG_LSN, SCHEMA_DDL } from './duckdb-schema.js';
import { ReadPool, ResourceLookup, hexId, num, str, type SqlParams } from './duckdb-sql.js';
import { RollupBuffer, rollupSecondOf, type CommittedRollupListener, type RollupListener, type RollupSecond } from './rollup.js';
import type {
  LogQuery, LogRow, LogVolumeBucket, LogVolumeQuery, MetricQuery, MetricSeries, RedBucket, RedQuery, ServiceSummary, Signal, SpanRow,
  TelemetryBatches, TelemetryStore, TraceQuery, TraceSummary,
} from './store.js';
import { TraceIndex } from './trace-index.js';
import { WriteGate } from './write-gate.js';
import type { IngestLogOptions } from './logged-ingest.js';
import { SpanFloor, type TelemetryLog } from './span-floor.js';
import { metrics } from '../core/metrics.js';
import { DuckDbIngest } from './duckdb-ingest.js';
import { RollupFlusher } from './duckdb-flush.js';
import { TelemetryListeners } from './duckdb-listeners.js';
import { recoverRollups } from './duckdb-recover.js';

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


const DAY_US = 86_400_000_000;

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


/** Two instances on one file in one process would corrupt it; DuckDB's file lock allows it. */
const openPaths = new Set<string>();

export class DuckDbTelemetryStore implements TelemetryStore {
  private instance: DuckDBInstance | undefined;
  private gate: WriteGate<WriteConnection> | undefined;
  private reads: ReadPool | undefined;
  private resourceLookup!: ResourceLookup;
  private readonly rollups = new RollupBuffer();
  private readonly traces = new TraceIndex();
  private readonly listeners: TelemetryListeners;
  private readonly ingest: DuckDbIngest;
  private readonly flusher: RollupFlusher;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly floor: SpanFloor;

  private readonly opts: DuckDbStoreOptions;

  /** A database file path, or options. */
  constructor(pathOrOptions: string | DuckDbStoreOptions) {
    this.opts = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
    this.path = this.opts.path === ':memory:' ? this.opts.path : resolve(this.opts.path);
    const nowUs = this.opts.nowUs ?? (() => Date.now() * 1000);
    this.floor = new SpanFloor(this.opts.log);
    this.listeners = new TelemetryListeners(this.opts.log);
    const writes = (): WriteGate<WriteConnection> => this.writes;
    this.ingest = new DuckDbIngest({ writes, floor: this.floor, rollups: this.rollups, traces: this.traces, listeners: this.listeners, nowUs });
    this.flusher = new RollupFlusher({
      writes, logged: () => this.ingest.logged !== undefined, coveredSeq: () => this.ingest.coveredSeq(),
      rollups: this.rollups, traces: this.traces, listeners: this.listeners, nowUs,
      secondGraceMs: this.opts.secondGraceMs ?? 2000, minuteGraceMs: this.opts.minuteGraceMs ?? 15_000, log: this.opts.log,
    });
  }

  /** Counters of what was dropped or failed (see TelemetryStoreIntegrity). */
  integrity(): TelemetryStoreIntegrity {
    return { spansDroppedOlderThanRetention: this.floor.dropped, spansDroppedOutOfRange: this.floor.outOfRange, flushFailures: this.flusher.failures };
  }

  async open(): Promise<void> {
    if (this.instance) return;
    if (openPaths.has(this.path)) throw new Error(`telemetry database already open in this process: ${this.path}`);
    openPaths.add(this.path);
    try {
      // 64 KiB blocks for a new file (an existing file keeps the size it was made with): a trace
      // lookup reads one block per column of the row group that holds the trace, and with
      // DuckDB's 256 KiB blocks that read was most of its time (src/telemetry/README.md).
      this.instance = await DuckDBInstance.create(this.path, { checkpoint_threshold: '64MB', default_block_size: '65536', threads: String(defaultDuckDbThreads()), ...this.opts.config });
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
        // Rows acknowledged from the log but not yet in DuckDB go in first: recovery then
        // rebuilds rollups and trace filters from DuckDB alone, as without a log.
        const logged = this.ingest.useLog(this.opts.ingestLog);
        const loaded = await this.reads.rows(`SELECT lsn AS value FROM ingest_log_state WHERE key = '${META_LOG_LSN}'`);
        replayedSeq = await logged.replay(loaded.length === 0 ? 0 : num(loaded[0].value));
      }
      const recovered = await recoverRollups(this.reads, this.rollups, this.traces);
      this.flusher.wm = recovered.wm;
      this.ingest.lastSeq = Math.max(recovered.lastSeq, replayedSeq);
      this.ingest.acceptedSeq = this.ingest.lastSeq;
    } catch (e) {
      this.release();
      throw e;
    }
    this.timer = setInterval(() => { if (this.gate) this.flusher.tick(); }, this.opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  private get writes(): WriteGate<WriteConnection> {
    if (!this.gate) throw new Error('telemetry store is not open');
    return this.gate;
  }

  append(batches: TelemetryBatches[]): Promise<void> {
    return this.ingest.append(batches);
  }

  /** Ingest time up to which every append has settled (0 on an empty store). */
  get settledThroughSeq(): number {
    return this.ingest.settledThrough(Number.NaN);
  }

  /**
   * Spans committed with an ingest time after `seq` that carry an event named `eventName`
   * (the columns the error pipeline needs; events as stored), oldest commit first — for
   * rebuilding data derived from spans after a crash. A LIKE over the events text; the
   * `ingested_us` predicate prunes old row groups by their zone maps.
   */
  async spansWithEventSince(seq: number, eventName: string): Promise<SpanBatch> {
    await this.ingest.visible();
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
   * Subscribes to the batches of each committed append (spans, logs, metric points), delivered
   * on the calling thread right after the commit, before append resolves. Listeners must treat
   * the batches as read-only and must not block. Returns the unsubscribe function.
   */
  onCommittedBatches(listener: (c: CommittedBatches) => void): () => void {
    return this.listeners.onCommittedBatches(listener);
  }

  /**
   * Subscribes to per-commit rollup deltas: the entry-span count, errors and sketch bins each
   * committed append adds per service × operation × version × environment × second, delivered
   * right after the commit (the flushed `onRollup` lags ~2 s). Returns the unsubscribe function.
   */
  onCommittedRollups(listener: CommittedRollupListener): () => void {
    return this.listeners.onCommittedRollups(listener);
  }

  /** Subscribes to flushed per-operation seconds; returns the unsubscribe function. */
  onRollup(listener: RollupListener): () => void {
    return this.listeners.onRollup(listener);
  }

  /**
   * Persists buffered rollups and trace filters of every period up to now, closed or not (open
   * ones become partial rows). Queries read persisted rollups only; the periodic flush lags by
   * the grace.
   */
  flush(): Promise<void> {
    return this.flusher.run(true, false);
  }

  async getTrace(traceId: string): Promise<SpanRow[]> {
    await this.ingest.visible();
    return getTrace(this.sql, this.resourceLookup, this.traces, traceId);
  }

  async searchTraces(q: TraceQuery): Promise<TraceSummary[]> {
    await this.ingest.visible();
    return searchTraces(this.sql, this.traces, q);
  }

  async searchLogs(q: LogQuery): Promise<LogRow[]> {
    await this.ingest.visible();
    return searchLogs(this.sql, this.resourceLookup, q);
  }

  async logVolume(q: LogVolumeQuery): Promise<LogVolumeBucket[]> {
    await this.ingest.visible();
    return logVolume(this.sql, q);
  }

  red(q: RedQuery): Promise<RedBucket[]> {
    return red(this.sql, this.rollups, q);
  }

  async services(fromUs: number, toUs: number): Promise<ServiceSummary[]> {
    await this.ingest.visible();
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
    await this.ingest.visible();
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
    await this.ingest.logged?.groupSettled();
    await this.ingest.visible();
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
      await this.ingest.logged?.close();
      await this.flusher.run(true, true);
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
