/**
 * LoggedIngest: the DuckDB store's write path when it keeps its own ingest log (ingest-log.ts).
 *
 * append() → the request's bytes go into the log with the next groups' (one write + fdatasync
 * per group, groups strictly one after another) → the host *accepts* the rows: ingest time,
 * rollups, trace index and the committed-rows listeners (detect), all synchronous and in log
 * order → append() resolves and the request is acknowledged. A load session keeps one DuckDB
 * transaction open, appends each accepted group at once and commits per `loadRows` rows or
 * `loadDelayMs` (see schedule()), recording the log position it covers; then the log's older
 * segments are deleted.
 *
 * Reads that need the raw rows call visible() first, which loads everything accepted so far:
 * an acknowledged row is always visible to a later query. When the rows waiting to load reach
 * `maxBacklogRows`, append() waits, which fills the writer's queue, which answers 429.
 */
import { IngestLog, type LogRecord, type LogRecordIn } from './ingest-log.js';
import type { LogBatch, MetricBatch, SpanBatch } from './batch.js';
import type { OtlpSource, TelemetryBatches } from './store.js';
import { rowCount } from './writer.js';
import { metrics } from '../core/metrics.js';

export interface IngestLogOptions {
  /** Directory of the log segments (e.g. `<data-dir>/ingest-log`). */
  dir: string;
  /** Decodes an OTLP body kept in the log (replay after a crash). */
  decode: (signal: OtlpSource['signal'], format: OtlpSource['format'], body: Uint8Array) => TelemetryBatches;
  /** Accepted rows that start a load at once. Default 131,072 (one DuckDB row group and more). */
  loadRows?: number;
  /** Longest accepted rows wait before a load starts. Default 2,000 ms. */
  loadDelayMs?: number;
  /** Accepted rows not yet loaded at which append() waits. Default 600,000. */
  maxBacklogRows?: number;
}

/**
 * Accepted rows waiting for DuckDB: the decoded batches, or once the host has accepted them, the
 * form it prepared for loading (`prepared`; the batches are then dropped, so their JS strings do
 * not wait in V8's heap while a commit runs).
 */
export interface PendingRows<P = unknown> {
  spans: SpanBatch[];
  logs: LogBatch[];
  metrics: MetricBatch[];
  prepared?: P;
  seq: number;
  rows: number;
  /** LSN after the entry's records. */
  lsn: number;
}

export interface LoggedIngestHost<P> {
  /** The next ingest time (strictly increasing). */
  nextSeq(): number;
  /**
   * What of `b` is kept (spans before the retention floor are not), called right before its
   * records are built: the log holds exactly what is accepted, so a replay after a crash loads
   * no row the live path dropped (stored, it would be neither rolled up nor indexed when a
   * flush's ingest time already covers it). Returns `b` itself when nothing is dropped.
   */
  keep(b: TelemetryBatches): TelemetryBatches;
  /**
   * Rows now durable: rollups, trace index, listeners. Synchronous, called in log order. Returns
   * the rows prepared for loading, or undefined to keep the batches.
   */
  accept(rows: PendingRows<P>): P | undefined;
  /**
   * One transaction: appends every list `next()` yields until it yields null, records the last
   * entry's LSN as loaded, commits. Entries read back from the log (replay, a failed load) have
   * no `prepared` form. The host must not keep the entries once appended.
   */
  load(next: () => Promise<readonly PendingRows<P>[] | null>): Promise<void>;
}

const KIND: Record<OtlpSource['signal'], number> = { traces: 1, logs: 2, metrics: 3 };
const SIGNAL_OF: Record<number, OtlpSource['signal']> = { 1: 'traces', 2: 'logs', 3: 'metrics' };
/** Batches without an OTLP body (e.g. spans made from Sentry transactions), as JSON. */
const KIND_BATCHES_JSON = 4;

interface Queued {
  batches: TelemetryBatches[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Waiter {
  lsn: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class LoggedIngest<P = unknown> {
  private readonly log: IngestLog;
  private readonly loadRows: number;
  private readonly loadDelayMs: number;
  private readonly maxBacklogRows: number;
  private queue: Queued[] = [];
  /** Settles once the group being written (its records already built) is accepted or failed. */
  private inGroup: Promise<void> | undefined;
  /** The running write loop, if any. */
  private writing: Promise<void> | undefined;
  private pending: PendingRows<P>[] = [];
  private pendingRows = 0;
  private loadingRows = 0;
  /** LSN after the last accepted record, and after the last loaded one. */
  private acceptedLsn = 0;
  private loadedLsn = 0;
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  private visWaiters: Waiter[] = [];
  private backlogWaiters: Array<() => void> = [];
  private closed = false;
  private closing = false;
  /** Ends a load session's wait for more rows (set while it waits). */
  private wake: (() => void) | undefined;
  /** Set when rows of a failed load could not be read back: writes stop (the log keeps them). */
  private failed: Error | undefined;

  constructor(private readonly opts: IngestLogOptions, private readonly host: LoggedIngestHost<P>) {
    this.log = new IngestLog(opts.dir);
    this.loadRows = opts.loadRows ?? 131_072;
    this.loadDelayMs = opts.loadDelayMs ?? 2000;
    this.maxBacklogRows = opts.maxBacklogRows ?? 600_000;
  }

  /**
   * Opens the log and loads every record after `loadedLsn` (what DuckDB already holds) in
   * transactions of `loadRows`, keeping each record's ingest time. Returns the highest one.
   */
  async replay(loadedLsn: number): Promise<number> {
    const records = this.log.open(loadedLsn);
    let maxSeq = 0;
    let at = 0;
    while (at < records.length) {
      let rows = 0;
      const chunk: PendingRows<P>[] = [];
      for (; at < records.length && rows < this.loadRows; at++) {
        const p = this.decodeRecord(records[at]);
        chunk.push(p);
        rows += p.rows;
        maxSeq = Math.max(maxSeq, p.seq);
      }
      let given = false;
      await this.host.load(() => {
        if (given) return Promise.resolve(null);
        given = true;
        return Promise.resolve(chunk);
      });
    }
    this.acceptedLsn = this.loadedLsn = this.log.lsn;
    this.log.release(this.loadedLsn);
    return maxSeq;
  }

  private decodeRecord(r: LogRecord): PendingRows<P> {
    let b: TelemetryBatches;
    try {
      b = r.kind === KIND_BATCHES_JSON
        ? JSON.parse(Buffer.from(r.payload).toString('utf8')) as TelemetryBatches
        : this.opts.decode(SIGNAL_OF[r.kind], r.format === 1 ? 'json' : 'protobuf', r.payload);
    } catch (e) {
      throw new Error(`ingest log record at LSN ${r.start} cannot be decoded: ${(e as Error).message}`, { cause: e });
    }
    return pendingOf<P>([b], r.seq, r.end);
  }

  /** Resolves once the batches are durable in the log and accepted. */
  async append(batches: TelemetryBatches[]): Promise<void> {
    if (this.closed) throw new Error('telemetry store is closed');
    if (this.failed) throw this.failed;
    while (this.pendingRows + this.loadingRows >= this.maxBacklogRows) {
      await new Promise<void>((res) => this.backlogWaiters.push(res));
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ batches, resolve, reject });
      this.writing ??= this.write().finally(() => { this.writing = undefined; });
    });
  }

  /**
   * Resolves once the group whose records were built before the call is accepted (or failed):
   * after it, every later group sees what `keep` drops from the moment of the call.
   */
  async groupSettled(): Promise<void> {
    await this.inGroup;
  }

  /** Resolves once every row accepted before the call is in DuckDB. */
  visible(): Promise<void> {
    const target = this.acceptedLsn;
    if (this.loadedLsn >= target) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => {
      this.visWaiters.push({ lsn: target, resolve, reject });
      this.wake?.();
      this.schedule();
    });
  }

  /** Loads what is accepted and closes the log. */
  async close(): Promise<void> {
    await this.writing;
    this.retryAt = 0;
    this.closing = true;
    this.wake?.();
    await this.visible();
    await this.loading;
    this.closed = true;
    clearTimeout(this.timer);
    this.log.close();
  }

  /** Writes queued requests group after group, in order (one loop at a time, see append()). */
  private async write(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0);
      const seq = this.host.nextSeq();
      const records: LogRecordIn[] = [];
      const all: TelemetryBatches[] = [];
      for (const q of group) {
        for (const given of q.batches) {
          const b = this.host.keep(given);
          if (rowCount(b) === 0) continue;
          records.push(recordOf(b));
          all.push(b);
        }
      }
      let settle!: () => void;
      this.inGroup = new Promise<void>((r) => { settle = r; });
      let lsn: number;
      try {
        lsn = await this.log.append(records, seq);
      } catch (e) {
        settle();
        for (const q of group) q.reject(e);
        continue;
      }
      const p = pendingOf<P>(all, seq, lsn);
      this.acceptedLsn = lsn;
      try {
        p.prepared = this.host.accept(p);
        if (p.prepared !== undefined) { p.spans = []; p.logs = []; p.metrics = []; }
      } catch {
        // Durable now whatever a listener did (they guard themselves): load and answer anyway.
      }
      this.pending.push(p);
      this.pendingRows += p.rows;
      settle();
      for (const q of group) q.resolve();
      this.wake?.();
      this.schedule();
    }
  }

  /**
   * A load session starts as soon as rows wait: it keeps one transaction open and appends each
   * accepted group within a turn of the event loop, and commits once `loadRows` rows
   * are in, `loadDelayMs` has passed, a reader waits, or the store closes.
   */
  private schedule(): void {
    if (this.loading || this.pending.length === 0) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      if (!this.timer) this.timer = setTimeout(() => { this.timer = undefined; this.schedule(); }, wait);
      return;
    }
    this.startLoad();
  }

  private startLoad(): void {
    const started = Date.now();
    let rows = 0;
    let lsn = -1;
    const next = async (): Promise<PendingRows<P>[] | null> => {
      for (;;) {
        if (this.pending.length > 0 && (rows < this.loadRows || this.visWaiters.length > 0 || this.closing)) {
          const taken = this.pending;
          this.pending = [];
          const n = sumRows(taken);
          this.pendingRows -= n;
          rows += n;
          this.loadingRows = rows;
          lsn = taken[taken.length - 1].lsn;
          return taken;
        }
        const left = this.loadDelayMs - (Date.now() - started);
        if (rows >= this.loadRows || this.visWaiters.length > 0 || this.closing || left <= 0) return null;
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          this.wake = () => { clearTimeout(t); r(); };
        });
        this.wake = undefined;
      }
    };
    this.loading = this.host.load(next).then(
      () => {
        if (lsn < 0) return;
        metrics.setDegraded('ingest_log_load', undefined);
        this.loadedLsn = lsn;
        this.log.release(lsn);
        const waiting = this.visWaiters;
        this.visWaiters = waiting.filter((w) => w.lsn > lsn);
        for (const w of waiting) if (w.lsn <= lsn) w.resolve();
      },
      (e: unknown) => {
        // The appended rows were dropped with the transaction and not kept in memory: read them
        // back from the log (they are durable there), then try again in a second.
        // Counted and reported: with no reader waiting, nobody else would hear of it.
        metrics.inc('tightloop_ingest_log_load_failures_total', 'Loads of acknowledged ingest-log rows into DuckDB that failed (retried after 1 s).');
        metrics.setDegraded('ingest_log_load', `loading acknowledged rows into DuckDB failed (retried): ${e instanceof Error ? e.message : String(e)}`);
        if (lsn >= 0) {
          try {
            const back = this.log.read(this.loadedLsn, lsn).map((r) => this.decodeRecord(r));
            this.pending = back.concat(this.pending);
            this.pendingRows += sumRows(back);
          } catch (re) {
            this.failed = new Error(`ingest log cannot be read back after a failed load: ${(re as Error).message}`, { cause: re });
          }
        }
        this.retryAt = Date.now() + 1000;
        const waiting = this.visWaiters;
        this.visWaiters = [];
        for (const w of waiting) w.reject(e);
      },
    ).finally(() => {
      this.loading = undefined;
      this.loadingRows = 0;
      this.wake = undefined;
      if (this.pendingRows < this.maxBacklogRows) {
        const waiting = this.backlogWaiters;
        this.backlogWaiters = [];
        for (const w of waiting) w();
      }
      if (!this.failed) this.schedule();
    });
  }
}

function sumRows(list: readonly PendingRows<unknown>[]): number {
  let n = 0;
  for (const p of list) n += p.rows;
  return n;
}

function pendingOf<P>(list: readonly TelemetryBatches[], seq: number, lsn: number): PendingRows<P> {
  const p: PendingRows<P> = { spans: [], logs: [], metrics: [], seq, rows: 0, lsn };
  for (const b of list) {
    if (b.spans && b.spans.length > 0) { p.spans.push(b.spans); p.rows += b.spans.length; }
    if (b.logs && b.logs.length > 0) { p.logs.push(b.logs); p.rows += b.logs.length; }
    if (b.metrics && b.metrics.length > 0) { p.metrics.push(b.metrics); p.rows += b.metrics.length; }
  }
  return p;
}

function recordOf(b: TelemetryBatches): LogRecordIn {
  if (b.source) return { kind: KIND[b.source.signal], format: b.source.format === 'json' ? 1 : 0, payload: b.source.body };
  return { kind: KIND_BATCHES_JSON, format: 1, payload: Buffer.from(JSON.stringify({ spans: b.spans, logs: b.logs, metrics: b.metrics })) };
}
