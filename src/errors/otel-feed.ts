/**
 * OtelSpanErrors: exception span events → error events, off the OTLP acknowledgement path.
 *
 * An OTLP 200 means the spans are durable (their DuckDB commit). The error events derived from
 * them used to be committed before that 200 too, which added the errors commit (≈ one commit
 * interval plus an fsync) to every traces request. Now the telemetry store hands each committed
 * append's spans to this feed (`onCommittedBatches`), the events are queued to the pipeline,
 * and the request is answered at once. What keeps that durable:
 *
 * - The derived events can be rebuilt from the spans. Every error commit also writes a
 *   watermark W (errors_meta.otel_span_seq): every span append with an ingest time ≤ W has its
 *   error events committed. W = min(settled, oldest append whose events are still queued − 1),
 *   where `settled` is the store's "every append up to here has committed or failed".
 * - On start, spans committed after W that carry an `exception` event are read back from the
 *   store and turned into events again. Their ids derive from the span (otel-errors.ts), so an
 *   event that was committed after W's last write is recognised and skipped, not counted twice.
 * - W is also written every few seconds without events, so the replay stays short.
 *
 * Log records with `exception.*` attributes still go through the awaited OTLP hook (module.ts):
 * the logs table has no ingest-time column to replay from.
 */
import type { CommittedBatches, SpanBatch } from '../telemetry/index.js';
import { OTEL_SPAN_SEQ } from './commit.js';
import type { ErrorEvent } from './model.js';
import { errorsFromSpans } from './otel-errors.js';
import type { ErrorPipeline } from './pipeline.js';
import type { ErrorsDb } from './tables.js';

/** What the feed needs from the telemetry store (DuckDbTelemetryStore). */
export interface SpanSource {
  onCommittedBatches(listener: (c: CommittedBatches) => void): () => void;
  readonly settledThroughSeq: number;
  spansWithEventSince(seq: number, eventName: string): Promise<SpanBatch>;
}

export interface OtelSpanErrorsOptions {
  /** How often the watermark is written when no error commit carried it. Default 5 s. */
  watermarkIntervalMs?: number;
}

export class OtelSpanErrors {
  /** Ingest times of appends whose events are queued, not yet committed. */
  private readonly pending = new Set<number>();
  private settled = 0;
  private persisted = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly source: SpanSource,
    private readonly pipeline: ErrorPipeline,
    private readonly db: ErrorsDb,
    private readonly projectId: number,
    private readonly log: { error(obj: object, msg: string): void },
    private readonly opts: OtelSpanErrorsOptions = {},
  ) {}

  /** Rebuilds what a crash lost (awaited), then follows new commits. */
  async start(): Promise<void> {
    const row = await this.db.selectFrom('errors_meta').select('value').where('key', '=', OTEL_SPAN_SEQ).executeTakeFirst();
    this.settled = this.source.settledThroughSeq;
    if (row === undefined) {
      // First start with this feed: earlier events were committed before their OTLP ack.
      this.persisted = -1;
      this.pending.clear();
    } else {
      this.persisted = Number(row.value);
      if (this.settled > this.persisted) await this.replay(this.persisted);
    }
    this.unsubscribe = this.source.onCommittedBatches((c) => this.onCommitted(c));
    this.timer = setInterval(() => {
      if (this.next(new Set()) > this.persisted) {
        this.pipeline.persistWatermark().catch((err: unknown) => this.log.error({ err }, 'OTel error watermark not stored'));
      }
    }, this.opts.watermarkIntervalMs ?? 5000);
    this.timer.unref();
    if (row === undefined) await this.pipeline.persistWatermark();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /**
   * The watermark a commit holding the events of appends `committing` may write, or undefined
   * when it would not move forward.
   */
  watermark(committing: ReadonlySet<number>): number | undefined {
    const w = this.next(committing);
    if (w <= this.persisted) return undefined;
    this.persisted = w;
    return w;
  }

  private next(committing: ReadonlySet<number>): number {
    let w = this.settled;
    for (const s of this.pending) if (!committing.has(s) && s - 1 < w) w = s - 1;
    return w;
  }

  private onCommitted(c: CommittedBatches): void {
    if (c.settledThroughSeq !== undefined && c.settledThroughSeq > this.settled) this.settled = c.settledThroughSeq;
    if (c.seq === undefined || c.spans.length === 0) return;
    const found = errorsFromSpans(c.spans, this.projectId);
    if (found.length > 0) this.submit(found, c.seq);
  }

  private submit(found: ErrorEvent[], seq: number): void {
    this.pending.add(seq);
    this.pipeline.submit(found, seq).then(
      () => { this.pending.delete(seq); },
      // Left pending: the watermark stays below this append, so the next start rebuilds it.
      (err: unknown) => { this.log.error({ err, events: found.length }, 'OTel span error events not stored; rebuilt at next start'); },
    );
  }

  /** Span exceptions committed after `since`, minus events already stored. */
  private async replay(since: number): Promise<void> {
    const spans = await this.source.spansWithEventSince(since, 'exception');
    const found = errorsFromSpans([spans], this.projectId);
    const stored = new Set<string>();
    const traces = [...new Set(found.map((e) => e.traceId))];
    for (let i = 0; i < traces.length; i += 500) {
      const rows = await this.db.selectFrom('errors_events').select('event_id').where('trace_id', 'in', traces.slice(i, i + 500)).execute();
      for (const r of rows) stored.add(r.event_id);
    }
    const missing = found.filter((e) => !stored.has(e.eventId));
    // Counts as one append at `settled`: the watermark passes it once these are committed.
    this.pending.add(this.settled);
    await this.pipeline.submit(missing, this.settled);
    this.pending.delete(this.settled);
  }
}
