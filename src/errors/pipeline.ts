/**
 * ErrorPipeline: group commit for error events.
 *
 * submit() queues the events (mapped ErrorEvents, or raw Sentry event items the committer
 * parses: off the event loop with the worker); a commit takes everything queued (up to
 * `maxEvents`) and hands it to a BatchCommitter (commit.ts), which parses and groups the events, compresses their payloads and, in
 * ONE state-database transaction, inserts them and folds them into their groups. One batch
 * is written at a time; the next starts as soon as it is written (the committer's onWritten:
 * the worker flushes one batch while writing the next) and at most every `commitIntervalMs`,
 * taking whatever queued meanwhile — the cost follows commits, not events. With SQLite the
 * committer is a worker thread on its own connection (worker-committer.ts), so the commit's
 * fsync never blocks the event loop. submit() resolves once that commit is durable — a Sentry request is
 * acknowledged only once its events are durable and counted. A full queue rejects at once with
 * 429 (the route adds Retry-After and X-Sentry-Rate-Limits).
 */
import { apiError } from '../core/app-error.js';
import type { BatchCommitter, EventToCommit } from './commit.js';
import type { ErrorEvents } from './events.js';
import type { IncomingEvent } from './model.js';

export interface ErrorPipelineOptions {
  /** Least time between the starts of two commits. Default 5 ms. */
  commitIntervalMs?: number;
  /** Most events in one commit. Default 5,000. */
  maxEvents?: number;
  /** Bytes of payloads waiting before submit() answers 429. Default 256 MiB. */
  maxQueuedBytes?: number;
  /** Grouping version of a project (kept per project so groups never split). */
  groupingVersion: (projectId: number) => number;
  /**
   * The OTel span watermark to persist with a commit holding the events of span appends
   * `committing` (otel-feed.ts); undefined: none to write.
   */
  otelWatermark?: (committing: ReadonlySet<number>) => number | undefined;
}

interface Pending {
  events: IncomingEvent[];
  /** Ingest time of the span append these events were derived from (OTel span exceptions). */
  otelSeq?: number;
  bytes: number;
  resolve: (eventIds: string[]) => void;
  reject: (e: unknown) => void;
}

export class ErrorPipeline {
  private queue: Pending[] = [];
  private queuedBytes = 0;
  /** The batch being written (one at a time). */
  private running: Promise<void> | undefined;
  /** Batches written and not yet durable (their requests wait). */
  private readonly flushing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private lastStart = 0;
  private closed = false;
  private readonly intervalMs: number;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  committedEvents = 0;

  constructor(
    private readonly committer: BatchCommitter,
    private readonly emitter: ErrorEvents,
    private readonly opts: ErrorPipelineOptions,
  ) {
    this.intervalMs = opts.commitIntervalMs ?? 5;
    this.maxEvents = opts.maxEvents ?? 5000;
    this.maxBytes = opts.maxQueuedBytes ?? 256 * 1024 * 1024;
  }

  /**
   * `otelSeq`: the span append the events came from (see ErrorPipelineOptions.otelWatermark).
   * Resolves with the stored events' ids once committed; rejects with 400 when a raw Sentry item
   * of `events` is not a JSON object (then none of `events` is stored).
   */
  submit(events: IncomingEvent[], otelSeq?: number): Promise<string[]> {
    if (events.length === 0 && otelSeq === undefined) return Promise.resolve([]);
    if (this.closed) return Promise.reject(apiError('unavailable', 'error ingest is closed', { retryAfterS: 1 }));
    let bytes = 0;
    for (const e of events) bytes += (e.compressed?.bytes.length ?? ('raw' in e ? e.raw.length : e.payload.length)) + 512;
    if (this.queuedBytes > 0 && this.queuedBytes + bytes > this.maxBytes) {
      return Promise.reject(apiError('overloaded', 'error ingest queue full', { retryAfterS: 1 }));
    }
    this.queuedBytes += bytes;
    return new Promise<string[]>((resolve, reject) => {
      this.queue.push({ events, otelSeq, bytes, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running !== undefined || this.timer !== undefined || this.queue.length === 0) return;
    const wait = this.closed ? 0 : Math.max(0, this.lastStart + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, wait);
  }

  private start(): void {
    if (this.running !== undefined || this.queue.length === 0) return;
    const batch: Pending[] = [];
    let n = 0;
    while (this.queue.length > 0 && (batch.length === 0 || n + this.queue[0].events.length <= this.maxEvents)) {
      const p = this.queue.shift()!;
      batch.push(p);
      n += p.events.length;
    }
    this.lastStart = Date.now();
    // The next batch may start once this one is written (committer's onWritten) or settled;
    // its requests are answered only when it is durable (`done`).
    let written!: () => void;
    const running = new Promise<void>((resolve) => { written = resolve; });
    const done = this.commit(batch, written).finally(() => {
      this.flushing.delete(done);
      written();
    });
    this.flushing.add(done);
    this.running = running.then(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async commit(batch: Pending[], onWritten: () => void): Promise<void> {
    const items: EventToCommit[] = [];
    let outcome;
    try {
      for (let unit = 0; unit < batch.length; unit++) {
        for (const event of batch[unit].events) items.push({ event, groupingVersion: this.opts.groupingVersion(event.projectId), unit });
      }
      const seqs = new Set<number>();
      for (const p of batch) if (p.otelSeq !== undefined) seqs.add(p.otelSeq);
      outcome = await this.committer.commit(items, Date.now() * 1000, this.opts.otelWatermark?.(seqs), onWritten);
    } catch (err) {
      for (const p of batch) { this.queuedBytes -= p.bytes; p.reject(err); }
      return;
    }
    const bad = new Map<number, string>();
    for (const r of outcome.rejected) {
      const unit = items[r.index].unit ?? -1;
      if (!bad.has(unit)) bad.set(unit, r.message);
    }
    let at = 0;
    for (let unit = 0; unit < batch.length; unit++) {
      const p = batch[unit];
      this.queuedBytes -= p.bytes;
      const message = bad.get(unit);
      if (message !== undefined) p.reject(apiError('invalid_envelope', message));
      else { this.committedEvents += p.events.length; p.resolve(outcome.eventIds.slice(at, at + p.events.length)); }
      at += p.events.length;
    }
    for (const g of outcome.newGroups) this.emitter.emit('error.new_group', { group: g });
    for (const g of outcome.regressed) this.emitter.emit('error.regressed', { group: g });
    if (outcome.counts !== undefined && outcome.counts.length > 0) this.emitter.emit('error.events', { counts: outcome.counts });
  }

  /** Queues a commit without events that just persists the OTel watermark. */
  persistWatermark(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events: [], bytes: 0, resolve: () => { resolve(); }, reject });
      this.schedule();
    });
  }

  /** Stops accepting and commits what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running !== undefined || this.queue.length > 0) {
      if (this.running === undefined) this.start();
      await this.running;
    }
    await Promise.all(this.flushing);
    await this.committer.close();
  }
}
