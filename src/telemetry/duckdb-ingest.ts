import type { DuckDBDataChunk } from '@duckdb/node-api';
import type { LogBatch, MetricBatch, SpanBatch } from './batch.js';
import { batchSource, ChunkPool, type RowSource } from './duckdb-chunks.js';
import type { TelemetryListeners } from './duckdb-listeners.js';
import { LOG_COLUMNS, META_LOG_LSN, METRIC_COLUMNS, SPAN_COLUMNS } from './duckdb-schema.js';
import type { WriteConnection } from './duckdb-write.js';
import { LoggedIngest, type IngestLogOptions, type PendingRows } from './logged-ingest.js';
import { ResourceRegistry, type ResourceEntry } from './resource-registry.js';
import { deltasOf, type RollupBuffer, type RollupSecond } from './rollup.js';
import type { SpanFloor } from './span-floor.js';
import type { TelemetryBatches } from './store.js';
import type { TraceIndex } from './trace-index.js';
import type { WriteGate } from './write-gate.js';

/** Rows a load hands to DuckDB between turns of the event loop. */
const LOAD_SLICE_ROWS = 16_384;

/** Accepted rows as filled DuckDB chunks per table, waiting for a load (see accept()). */
interface PreparedRows {
  spans: DuckDBDataChunk[];
  logs: DuckDBDataChunk[];
  metrics: DuckDBDataChunk[];
  /** Resources first seen in these rows and not yet stored. */
  fresh: ResourceEntry[];
}

export interface IngestDeps {
  writes: () => WriteGate<WriteConnection>;
  floor: SpanFloor;
  rollups: RollupBuffer;
  traces: TraceIndex;
  listeners: TelemetryListeners;
  nowUs: () => number;
}

/**
 * The DuckDB store's write path. With an ingest log (what `tightloop up` uses): append()
 * resolves once the rows are in the log and accepted; accepted rows are filled into DuckDB
 * chunks at once and loaded in large transactions (logged-ingest.ts, accept(), load()). Without
 * one: append() runs BEGIN, the appenders, COMMIT on a write connection — DuckDB writes and
 * fsyncs its WAL inside COMMIT, so a resolved append is durable. Either way the rows, once
 * durable, go to the rollup buffers, the trace index and the subscribers (stored()).
 */
export class DuckDbIngest {
  /** Highest ingest time handed to an append. */
  lastSeq = 0;
  /** With an ingest log: the ingest time of the last accepted group. */
  acceptedSeq = 0;
  /** Ingest times of appends between taking their time and settling (committed or failed). */
  private readonly appending = new Set<number>();
  private readonly resources = new ResourceRegistry();
  private resourceTail: Promise<unknown> = Promise.resolve();
  /** Reused chunks of the three raw tables (a load returns what it appended). */
  private readonly pools = { spans: new ChunkPool(SPAN_COLUMNS), logs: new ChunkPool(LOG_COLUMNS), metrics: new ChunkPool(METRIC_COLUMNS) };
  private log: LoggedIngest<PreparedRows> | undefined;

  constructor(private readonly d: IngestDeps) {}

  get logged(): LoggedIngest<PreparedRows> | undefined {
    return this.log;
  }

  /** Puts an ingest log in front; `replay` then loads what it holds beyond the stored position. */
  useLog(opts: IngestLogOptions): LoggedIngest<PreparedRows> {
    this.log = new LoggedIngest(opts, {
      nextSeq: () => { this.lastSeq = Math.max(this.lastSeq + 1, this.d.nowUs()); return this.lastSeq; },
      keep: (b) => this.keep(b),
      accept: (p) => this.accept(p),
      load: (next) => this.d.writes().shared((w) => this.load(w, next)),
    });
    return this.log;
  }

  async append(batches: TelemetryBatches[]): Promise<void> {
    if (this.log) return this.log.append(batches);
    const spans = batches.map((b) => b.spans).filter((b): b is SpanBatch => !!b && b.length > 0);
    const logs = batches.map((b) => b.logs).filter((b): b is LogBatch => !!b && b.length > 0);
    const metrics = batches.map((b) => b.metrics).filter((b): b is MetricBatch => !!b && b.length > 0);
    if (spans.length + logs.length + metrics.length === 0) return;
    await this.d.writes().shared(async (w) => {
      const seq = Math.max(this.lastSeq + 1, this.d.nowUs());
      this.lastSeq = seq;
      this.appending.add(seq);
      try {
        await this.appendAt(w, seq, spans, logs, metrics);
      } finally {
        this.appending.delete(seq);
      }
    });
  }

  /** Resolves once every acknowledged row can be read from DuckDB. */
  visible(): Promise<void> {
    return this.log ? this.log.visible() : Promise.resolve();
  }

  /** Every append with an ingest time ≤ the result has settled (the one at `seq` counts as settled). */
  settledThrough(seq: number): number {
    if (this.log) return this.acceptedSeq;
    let low = this.lastSeq;
    for (const s of this.appending) if (s !== seq && s <= low) low = s - 1;
    return low;
  }

  /** The ingest time the rollup buffers cover (what a flush records with what it takes). */
  coveredSeq(): number {
    return this.log ? this.acceptedSeq : this.lastSeq;
  }

  private async appendAt(w: WriteConnection, seq: number, allSpans: SpanBatch[], logs: LogBatch[], metrics: MetricBatch[]): Promise<void> {
    const spans = this.d.floor.apply(allSpans);
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
    const kept = this.d.floor.apply([b.spans]);
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
    return list.map((b) => batchSource(b, { resourceId: this.resources.resolve(b, fresh), ingestedUs: seq }));
  }

  /** Rows just made durable (committed, or in the ingest log): rollups, trace index, listeners. */
  private stored(spans: SpanBatch[], logs: LogBatch[], metrics: MetricBatch[], seq: number): void {
    const { rollups, traces, listeners } = this.d;
    const deltas: RollupSecond[] | undefined = listeners.wantsDeltas ? [] : undefined;
    for (const b of spans) {
      const perSecond = rollups.add(b);
      if (deltas) deltasOf(perSecond, deltas);
      traces.addBatch(b);
    }
    if (deltas) listeners.emitCommitted(deltas);
    if (listeners.wantsBatches) listeners.emitBatches({ spans, logs, metrics, seq, settledThroughSeq: this.settledThrough(seq) });
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
}
