/**
 * TelemetryWriter: group commit in front of a TelemetryStore.
 *
 * Ingest requests are queued and committed together — one store.append() and one commit per
 * group — every `maxDelayMs` or as soon as `groupRows` rows wait. Up to `maxInFlight` groups
 * commit at once, so one group is prepared while the previous one's commit waits on the disk. Each request's promise settles
 * only after its group's commit: resolved when durable, rejected with the commit's error (when the
 * store stored part of the group, PartialAppendError, only the requests not stored). The
 * queue is bounded by rows and by an estimate of bytes; when full, submit() rejects at once with
 * apiError('overloaded', …) (429, retryAfterS 1), which the HTTP layer answers with Retry-After.
 */
import { apiError } from '../core/app-error.js';
// The schema module only (zod, no other module): config/index.ts reaches into http/ and state/.
import { INGEST_DEFAULTS } from '../config/schema.js';
import { PartialAppendError, type TelemetryBatches, type TelemetryStore } from './store.js';
import { packedColumns } from './packed-text.js';

/**
 * The server passes the validated settings (`ingest.*`, `queueMaxRows`: config/schema.ts,
 * docs/configuration.md); an option left out takes the same default, from INGEST_DEFAULTS.
 */
export interface TelemetryWriterOptions {
  /** Longest a request waits for companions before its group commits (`ingest.maxDelayMs`). */
  maxDelayMs?: number;
  /** A group commits as soon as this many rows wait (`ingest.groupRows`). */
  groupRows?: number;
  /** Groups committing at once (`ingest.maxInFlight`; DuckDB's default). */
  maxInFlight?: number;
  /** Rows waiting (queued or committing) before submit() rejects (`queueMaxRows`). */
  maxQueuedRows?: number;
  /** Estimated bytes waiting before submit() rejects (`ingest.queueMaxBytes`). */
  maxQueuedBytes?: number;
}

export interface TelemetryWriterStats {
  queuedRows: number;
  queuedBytes: number;
  queuedRequests: number;
  commits: number;
  rowsCommitted: number;
  requestsCommitted: number;
  failedCommits: number;
  rejectedRequests: number;
}

interface Pending {
  batches: TelemetryBatches;
  rows: number;
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Rows of one request. */
export function rowCount(b: TelemetryBatches): number {
  return (b.spans?.length ?? 0) + (b.logs?.length ?? 0) + (b.metrics?.length ?? 0);
}

/**
 * Length of the text columns `fields` of `b`: a column the decoder kept as UTF-8 bytes
 * (packed-text.ts) by its byte count, without making its strings (reading the column here
 * decoded every span's attributes, events and links into strings on every request).
 */
function textBytes(b: object, fields: readonly string[]): number {
  const packed = packedColumns(b);
  let n = 0;
  for (const f of fields) {
    const p = packed?.[f];
    if (p !== undefined) {
      n += p.length === 0 ? 0 : p.end(p.length - 1);
      continue;
    }
    const col = (b as Record<string, ArrayLike<string>>)[f];
    for (let i = 0; i < col.length; i++) n += col[i].length;
  }
  return n;
}

const SPAN_TEXT = ['attrs', 'events', 'links', 'name'] as const;
const LOG_TEXT = ['body', 'attrs'] as const;
const METRIC_TEXT = ['attrs', 'detail'] as const;

/** Rough memory held by a request: fixed per-row overhead plus its long text columns. */
export function estimateBytes(b: TelemetryBatches): number {
  let n = rowCount(b) * 160;
  if (b.spans) n += textBytes(b.spans, SPAN_TEXT);
  if (b.logs) n += textBytes(b.logs, LOG_TEXT);
  if (b.metrics) n += textBytes(b.metrics, METRIC_TEXT);
  return n;
}

export class TelemetryWriter {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private queuedBytes = 0;
  /** Rows and bytes of groups being committed (they still count against the bounds). */
  private inflightRows = 0;
  private inflightBytes = 0;
  private readonly inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = { commits: 0, rowsCommitted: 0, requestsCommitted: 0, failedCommits: 0, rejectedRequests: 0 };
  private readonly maxDelayMs: number;
  private readonly groupRows: number;
  private readonly maxInFlight: number;
  private readonly maxRows: number;
  private readonly maxBytes: number;

  constructor(private readonly store: TelemetryStore, opts: TelemetryWriterOptions = {}) {
    // The server's values come validated from config/ (with groupRows ≤ queueMaxRows); this
    // guards other callers against a bound that would never trigger (NaN) or a negative delay.
    for (const [k, v] of Object.entries(opts) as [string, number | undefined][]) {
      if (v !== undefined && (!Number.isInteger(v) || v < (k === 'maxDelayMs' ? 0 : 1))) throw new RangeError(`TelemetryWriter: ${k} must be an integer ≥ ${k === 'maxDelayMs' ? 0 : 1}, got ${v}`);
    }
    const maxRows = opts.maxQueuedRows ?? INGEST_DEFAULTS.queueMaxRows;
    // A group larger than the queue never fills (config/load.ts refuses the same setting); the
    // default group shrinks to a smaller queue, as OpenTelemetry's batch size does.
    if (opts.groupRows !== undefined && opts.groupRows > maxRows) throw new RangeError(`TelemetryWriter: groupRows ${opts.groupRows} is larger than maxQueuedRows ${maxRows}`);
    this.maxDelayMs = opts.maxDelayMs ?? INGEST_DEFAULTS.maxDelayMs;
    this.groupRows = opts.groupRows ?? Math.min(INGEST_DEFAULTS.groupRows, maxRows);
    this.maxInFlight = opts.maxInFlight ?? INGEST_DEFAULTS.maxInFlight;
    this.maxRows = maxRows;
    this.maxBytes = opts.maxQueuedBytes ?? INGEST_DEFAULTS.queueMaxBytes;
  }

  /** Resolves once the request is committed; rejects at once when the queue is full. */
  submit(batches: TelemetryBatches): Promise<void> {
    if (this.closed) return Promise.reject(apiError('unavailable', 'telemetry writer is closed', { retryAfterS: 1 }));
    const rows = rowCount(batches);
    if (rows === 0) return Promise.resolve();
    const bytes = estimateBytes(batches);
    const heldRows = this.queuedRows + this.inflightRows;
    const heldBytes = this.queuedBytes + this.inflightBytes;
    // An oversized request is still accepted into an empty queue, so it can never starve.
    if (heldRows > 0 && (heldRows + rows > this.maxRows || heldBytes + bytes > this.maxBytes)) {
      this.counters.rejectedRequests++;
      return Promise.reject(apiError('overloaded', 'write queue full', {
        retryAfterS: 1, context: { queuedRows: heldRows, queuedBytes: heldBytes },
      }));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batches, rows, bytes, resolve, reject });
      this.queuedRows += rows;
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  private schedule(): void {
    while (this.queuedRows >= this.groupRows && this.startGroup());
    if (!this.timer && this.queue.length > 0 && this.inflight.size < this.maxInFlight) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.startGroup();
        this.schedule();
      }, this.maxDelayMs);
    }
  }

  /** Starts committing the oldest requests (up to groupRows rows); false when it cannot. */
  private startGroup(): boolean {
    if (this.inflight.size >= this.maxInFlight || this.queue.length === 0) return false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const group: Pending[] = [];
    let rows = 0, bytes = 0;
    while (this.queue.length > 0 && (group.length === 0 || rows + this.queue[0].rows <= this.groupRows)) {
      const p = this.queue.shift()!;
      group.push(p);
      rows += p.rows;
      bytes += p.bytes;
    }
    this.queuedRows -= rows;
    this.queuedBytes -= bytes;
    this.inflightRows += rows;
    this.inflightBytes += bytes;
    const done: Promise<void> = this.commit(group, rows).finally(() => {
      this.inflight.delete(done);
      this.inflightRows -= rows;
      this.inflightBytes -= bytes;
      // What queued meanwhile waited for a commit already: go on without the delay.
      if (this.queue.length > 0) { this.startGroup(); this.schedule(); }
    });
    this.inflight.add(done);
    return true;
  }

  private async commit(group: Pending[], rows: number): Promise<void> {
    try {
      await this.store.append(group.map((p) => p.batches));
    } catch (e) {
      this.counters.failedCommits++;
      // Requests whose rows were all stored are acknowledged: refused, their senders' retries would store them twice.
      const stored = e instanceof PartialAppendError ? e.stored : [];
      for (let i = 0; i < group.length; i++) {
        if (stored[i] === true) {
          this.counters.rowsCommitted += group[i].rows;
          this.counters.requestsCommitted++;
          group[i].resolve();
        } else group[i].reject(e);
      }
      return;
    }
    this.counters.commits++;
    this.counters.rowsCommitted += rows;
    this.counters.requestsCommitted += group.length;
    for (const p of group) p.resolve();
  }

  /** Commits everything submitted so far. Never rejects; requests carry their own outcome. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.inflight.size > 0) {
      this.startGroup();
      await Promise.race(this.inflight);
    }
  }

  /** Stops accepting requests (they get 503) and drains the queue. The store stays open. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  stats(): TelemetryWriterStats {
    return {
      queuedRows: this.queuedRows + this.inflightRows,
      queuedBytes: this.queuedBytes + this.inflightBytes,
      queuedRequests: this.queue.length,
      ...this.counters,
    };
  }
}
