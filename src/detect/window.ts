/**
 * SeriesWindow: the recent history of one series, kept in memory from committed rollup deltas.
 * Two ring buffers: per second (counts, errors and — only when a rule needs percentiles — sketch
 * bins) for threshold windows, and per minute (counts, errors) for SLO windows of hours or days.
 * A slot remembers which period it holds, so a stale slot reads as empty without any sweep.
 */
import { sketchValue } from '../telemetry/index.js';

/** Sketch keys of nanosecond durations stay within ±1200 (see telemetry/sketch.ts). */
const KEY_OFFSET = 1300;
/** One scratch histogram reused by every quantile (evaluation is synchronous). */
const scratch = new Float64Array(2 * KEY_OFFSET + 1);

/** Sketch bins of one delta (keys ascending, as LatencySketch.toBins gives them). */
export interface Bins {
  keys: readonly number[];
  counts: readonly number[];
}

export interface WindowTotals {
  count: number;
  errors: number;
}

export class SeriesWindow {
  private readonly secPeriod: Float64Array;
  private readonly secCount: Float64Array;
  private readonly secErrors: Float64Array;
  private readonly secBins: Array<Bins[] | undefined>;
  private readonly minPeriod: Float64Array;
  private readonly minCount: Float64Array;
  private readonly minErrors: Float64Array;
  /** Last second (epoch s) with data; -Infinity before any. */
  lastSeen = -Infinity;

  constructor(readonly seconds: number, readonly minutes: number, readonly keepBins: boolean) {
    this.secPeriod = new Float64Array(seconds).fill(-1);
    this.secCount = new Float64Array(seconds);
    this.secErrors = new Float64Array(seconds);
    this.secBins = new Array<Bins[] | undefined>(seconds);
    this.minPeriod = new Float64Array(minutes).fill(-1);
    this.minCount = new Float64Array(minutes);
    this.minErrors = new Float64Array(minutes);
  }

  /**
   * Adds one second of data (epoch seconds); bins are sketch keys → counts. `toMinutes: false`
   * when the minute ring is filled separately (warm-up reads minute rollups on their own).
   */
  add(second: number, count: number, errors: number, bins?: Bins, toMinutes = true): void {
    if (second > this.lastSeen) this.lastSeen = second;
    if (this.seconds > 0) {
      const i = second % this.seconds;
      if (this.secPeriod[i] !== second) {
        this.secPeriod[i] = second;
        this.secCount[i] = 0;
        this.secErrors[i] = 0;
        this.secBins[i] = undefined;
      }
      this.secCount[i] += count;
      this.secErrors[i] += errors;
      // Deltas' bins are kept as given (no merge, no allocation): quantiles sum them anyway.
      if (this.keepBins && bins) {
        const list = this.secBins[i];
        if (list) list.push(bins);
        else this.secBins[i] = [bins];
      }
    }
    if (toMinutes && this.minutes > 0) this.addMinute(Math.floor(second / 60), count, errors);
  }

  /** Adds a whole minute (warm-up from persisted minute rollups). */
  addMinute(minute: number, count: number, errors: number): void {
    if (this.minutes === 0) return;
    const j = minute % this.minutes;
    if (this.minPeriod[j] !== minute) {
      this.minPeriod[j] = minute;
      this.minCount[j] = 0;
      this.minErrors[j] = 0;
    }
    this.minCount[j] += count;
    this.minErrors[j] += errors;
  }

  /** Totals of seconds [from, to) (epoch seconds; only the ring's span is remembered). */
  totals(from: number, to: number): WindowTotals {
    let count = 0, errors = 0;
    const lo = Math.max(from, to - this.seconds);
    for (let s = lo; s < to; s++) {
      const i = s % this.seconds;
      if (this.secPeriod[i] === s) { count += this.secCount[i]; errors += this.secErrors[i]; }
    }
    return { count, errors };
  }

  /** Totals of minutes [from, to) (epoch minutes). */
  minuteTotals(from: number, to: number): WindowTotals {
    let count = 0, errors = 0;
    const lo = Math.max(from, to - this.minutes);
    for (let m = lo; m < to; m++) {
      const j = m % this.minutes;
      if (this.minPeriod[j] === m) { count += this.minCount[j]; errors += this.minErrors[j]; }
    }
    return { count, errors };
  }

  /**
   * Latency quantile (ms) over seconds [from, to); null without data. Bins are summed into a
   * dense scratch array (no sort, no allocation) and ranked with DDSketch's rule — the same as
   * LatencySketch.quantile, at a fraction of the cost, since thousands of rules ask every second.
   */
  quantileMs(from: number, to: number, q: number): number | null {
    const lo = Math.max(from, to - this.seconds);
    let minK = Infinity, maxK = -Infinity, total = 0;
    for (let s = lo; s < to; s++) {
      const i = s % this.seconds;
      const list = this.secPeriod[i] === s ? this.secBins[i] : undefined;
      if (!list) continue;
      for (const b of list) {
        for (let n = 0; n < b.keys.length; n++) {
          const j = Math.min(2 * KEY_OFFSET, Math.max(0, b.keys[n] + KEY_OFFSET));
          const c = b.counts[n];
          scratch[j] += c;
          total += c;
          if (j < minK) minK = j;
          if (j > maxK) maxK = j;
        }
      }
    }
    if (total === 0) return null;
    const rank = Math.min(Math.max(q, 0), 1) * (total - 1);
    let cum = 0, found = maxK;
    for (let j = minK; j <= maxK; j++) {
      cum += scratch[j];
      if (cum > rank) { found = j; break; }
    }
    scratch.fill(0, minK, maxK + 1);
    return sketchValue(found - KEY_OFFSET) / 1e6;
  }
}
