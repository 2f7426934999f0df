/**
 * SpanFloor: spans that start before the last retention cutoff are not kept.
 *
 * Retention deletes whole days of spans, their rollup rows and trace filters, and drops what the
 * rollup buffer and trace index hold for those days. A span of such a day that arrives while or
 * after that runs (a late span, or one dated in the past) would otherwise be stored — loaded
 * after the DELETE — but counted by no rollup and found by no filter. So from the moment a
 * retention pass starts, such spans are dropped where rows are accepted, before rollups, the
 * trace index and storage see them: all three stay equal. The same pass drops spans whose start
 * or duration no BIGINT column holds as the number the rollups and the index would use (not
 * finite, beyond ±2^62 µs / 2^62 ns: stored they would read back as another time than the one
 * indexed). Each drop is counted and logged (`dropped`, `outOfRange`; one warning per burst, at
 * most every `logEveryMs`).
 */
import type { SpanBatch } from './batch.js';

/** What the store reports through (pino's Logger fits). */
export interface TelemetryLog {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Largest start (µs, either sign) and duration (ns) kept: 2^62, far inside BIGINT. */
const MAX_ABS = 2 ** 62;

export class SpanFloor {
  /** Spans starting before this (µs) are dropped; -Infinity until retention first runs. */
  floorUs = -Infinity;
  /** Spans dropped so far because they start before the floor. */
  dropped = 0;
  /** Spans dropped so far because their start or duration is out of range. */
  outOfRange = 0;
  private logged = 0;
  private loggedRange = 0;
  private lastLogMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: TelemetryLog | undefined, private readonly logEveryMs = 10_000) {}

  /** Raises the floor (never lowers it). */
  raise(us: number): void {
    if (us > this.floorUs) this.floorUs = us;
  }

  /**
   * The batches without spans older than the floor or out of range (the same objects when
   * nothing is dropped, the usual case: one pass of four comparisons per span).
   */
  apply(spans: SpanBatch[]): SpanBatch[] {
    const lo = Math.max(this.floorUs, -MAX_ABS);
    let out: SpanBatch[] | undefined;
    for (let k = 0; k < spans.length; k++) {
      const b = spans[k];
      const start = b.startUs, dur = b.durationNs;
      let bad = 0;
      for (let i = 0; i < b.length; i++) {
        const s = start[i], d = dur[i];
        if (!(s >= lo && s <= MAX_ABS && d >= 0 && d <= MAX_ABS)) bad++;
      }
      if (bad === 0) continue;
      out ??= spans.slice();
      const inRange = (i: number): boolean => start[i] >= -MAX_ABS && start[i] <= MAX_ABS && dur[i] >= 0 && dur[i] <= MAX_ABS;
      for (let i = 0; i < b.length; i++) {
        if (!inRange(i)) this.outOfRange++;
        else if (!(start[i] >= this.floorUs)) this.dropped++;
      }
      out[k] = keepRows(b, (i) => inRange(i) && start[i] >= this.floorUs);
    }
    if (!out) return spans;
    this.report();
    return out.filter((b) => b.length > 0);
  }

  private report(): void {
    const wait = this.lastLogMs + this.logEveryMs - Date.now();
    if (wait <= 0) { this.flushLog(); return; }
    this.timer ??= setTimeout(() => { this.timer = undefined; this.flushLog(); }, wait);
    this.timer.unref();
  }

  private flushLog(): void {
    if (this.dropped !== this.logged) {
      this.log?.warn({ dropped: this.dropped - this.logged, droppedTotal: this.dropped, floorUs: this.floorUs },
        'telemetry: spans older than the retention cutoff dropped at ingest');
    }
    if (this.outOfRange !== this.loggedRange) {
      this.log?.warn({ dropped: this.outOfRange - this.loggedRange, droppedTotal: this.outOfRange },
        'telemetry: spans with a start time or duration out of range dropped at ingest');
    }
    this.logged = this.dropped;
    this.loggedRange = this.outOfRange;
    this.lastLogMs = Date.now();
  }
}

/** A copy of `b` with the rows `keep` accepts (every per-row column). */
function keepRows(b: SpanBatch, keep: (i: number) => boolean): SpanBatch {
  const idx: number[] = [];
  for (let i = 0; i < b.length; i++) if (keep(i)) idx.push(i);
  const out: Record<string, unknown> = { length: idx.length };
  for (const [key, col] of Object.entries(b)) {
    if (key === 'length') continue;
    out[key] = Array.isArray(col) && col.length === b.length ? idx.map((i) => col[i] as unknown) : col;
  }
  return out as unknown as SpanBatch;
}
