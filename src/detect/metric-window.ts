/**
 * MetricWindow: the recent metric points of one series, per second, kept from committed metric
 * batches. A slot sums what every point of that second contributes: values (gauges and sums),
 * increases (sums and histogram counts, already turned into deltas per stream by the feed),
 * observations (histograms: count, sum, min, max) and histogram buckets (upper bound → count).
 * Like SeriesWindow, a slot remembers its second, so stale slots read as empty without a sweep.
 */

/** What one point adds (NaN / undefined where it does not apply). */
export interface PointDelta {
  /** Gauge or sum value; NaN for histograms. */
  value: number;
  /** Increase since the stream's previous point (sums, histogram counts); NaN when unknown. */
  increase: number;
  /** Histogram observations added (deltas); 0 for gauges and sums. */
  obsCount: number;
  obsSum: number;
  obsMin: number;
  obsMax: number;
  /** Histogram buckets added: upper bounds ascending (the last may be +Infinity) and counts. */
  bounds?: readonly number[];
  counts?: readonly number[];
  /**
   * Summary points: the SDK's own quantiles at the targets of pNN (SUMMARY_TARGETS order; NaN
   * where the point has none) and the point's count, their weight when points are combined.
   */
  quantiles?: readonly number[];
  quantileWeight?: number;
  /** An OTLP Sum point: `sum` over the window is then its increase, whatever the temporality. */
  counter?: boolean;
}

/** The quantiles pNN rules ask for, in the order of PointDelta.quantiles. */
export const SUMMARY_TARGETS = [0.5, 0.9, 0.95, 0.99] as const;

export class MetricWindow {
  private readonly period: Float64Array;
  private readonly n: Float64Array;
  private readonly vsum: Float64Array;
  private readonly vmin: Float64Array;
  private readonly vmax: Float64Array;
  private readonly last: Float64Array;
  private readonly lastT: Float64Array;
  private readonly inc: Float64Array;
  private readonly incN: Float64Array;
  private readonly counters: Float64Array;
  private readonly ocount: Float64Array;
  private readonly osum: Float64Array;
  private readonly omin: Float64Array;
  private readonly omax: Float64Array;
  private readonly hist: Array<Map<number, number> | undefined>;
  /** Summary quantiles per slot: count-weighted sums and weights per SUMMARY_TARGETS index. */
  private readonly summ: Array<Float64Array | undefined>;

  constructor(readonly seconds: number) {
    const f = (): Float64Array => new Float64Array(seconds);
    this.period = f().fill(-1);
    this.n = f(); this.vsum = f(); this.vmin = f(); this.vmax = f(); this.last = f(); this.lastT = f();
    this.inc = f(); this.incN = f(); this.counters = f(); this.ocount = f(); this.osum = f(); this.omin = f(); this.omax = f();
    this.hist = new Array<Map<number, number> | undefined>(seconds);
    this.summ = new Array<Float64Array | undefined>(seconds);
  }

  private slot(second: number): number {
    const i = second % this.seconds;
    if (this.period[i] !== second) {
      this.period[i] = second;
      this.n[i] = 0; this.vsum[i] = 0; this.vmin[i] = Infinity; this.vmax[i] = -Infinity; this.last[i] = NaN; this.lastT[i] = -Infinity;
      this.inc[i] = 0; this.incN[i] = 0; this.counters[i] = 0; this.ocount[i] = 0; this.osum[i] = 0; this.omin[i] = Infinity; this.omax[i] = -Infinity;
      this.hist[i] = undefined;
      this.summ[i] = undefined;
    }
    return i;
  }

  /** Adds one point of second `second` (epoch s) taken at `timeUs`. */
  add(second: number, timeUs: number, p: PointDelta): void {
    if (this.seconds === 0) return;
    const i = this.slot(second);
    if (!Number.isNaN(p.value)) {
      this.n[i]++;
      this.vsum[i] += p.value;
      if (p.value < this.vmin[i]) this.vmin[i] = p.value;
      if (p.value > this.vmax[i]) this.vmax[i] = p.value;
      if (timeUs >= this.lastT[i]) { this.lastT[i] = timeUs; this.last[i] = p.value; }
    }
    if (!Number.isNaN(p.increase)) { this.inc[i] += p.increase; this.incN[i]++; }
    if (p.counter === true) this.counters[i]++;
    if (p.obsCount > 0) {
      this.ocount[i] += p.obsCount;
      this.osum[i] += p.obsSum;
      if (p.obsMin < this.omin[i]) this.omin[i] = p.obsMin;
      if (p.obsMax > this.omax[i]) this.omax[i] = p.obsMax;
    }
    if (p.bounds && p.counts) {
      let h = this.hist[i];
      if (!h) { h = new Map(); this.hist[i] = h; }
      for (let k = 0; k < p.bounds.length; k++) h.set(p.bounds[k], (h.get(p.bounds[k]) ?? 0) + (p.counts[k] ?? 0));
    }
    if (p.quantiles) {
      const q = this.summ[i] ??= new Float64Array(2 * SUMMARY_TARGETS.length);
      const w = Math.max(1, p.quantileWeight ?? 1);
      for (let k = 0; k < SUMMARY_TARGETS.length; k++) {
        if (Number.isNaN(p.quantiles[k])) continue;
        q[2 * k] += p.quantiles[k] * w;
        q[2 * k + 1] += w;
      }
    }
  }

  /** The aggregate over seconds [from, to); null without data. */
  aggregate(agg: string, from: number, to: number): number | null {
    const lo = Math.max(from, to - this.seconds);
    let n = 0, vsum = 0, vmin = Infinity, vmax = -Infinity, last = NaN, lastT = -Infinity;
    let inc = 0, incN = 0, counters = 0, oc = 0, os = 0, omin = Infinity, omax = -Infinity;
    let merged: Map<number, number> | undefined;
    const wantHist = agg.startsWith('p');
    const target = wantHist ? SUMMARY_TARGETS.indexOf(Number(agg.slice(1)) / 100 as (typeof SUMMARY_TARGETS)[number]) : -1;
    let qs = 0, qw = 0;
    for (let s = lo; s < to; s++) {
      const i = s % this.seconds;
      if (this.period[i] !== s) continue;
      n += this.n[i]; vsum += this.vsum[i];
      if (this.vmin[i] < vmin) vmin = this.vmin[i];
      if (this.vmax[i] > vmax) vmax = this.vmax[i];
      if (this.n[i] > 0 && this.lastT[i] >= lastT) { lastT = this.lastT[i]; last = this.last[i]; }
      inc += this.inc[i]; incN += this.incN[i]; counters += this.counters[i];
      oc += this.ocount[i]; os += this.osum[i];
      if (this.omin[i] < omin) omin = this.omin[i];
      if (this.omax[i] > omax) omax = this.omax[i];
      const sq = this.summ[i];
      if (target >= 0 && sq) { qs += sq[2 * target]; qw += sq[2 * target + 1]; }
      const h = this.hist[i];
      if (wantHist && h) {
        merged ??= new Map();
        for (const [b, c] of h) merged.set(b, (merged.get(b) ?? 0) + c);
      }
    }
    switch (agg) {
      case 'avg': return n > 0 ? vsum / n : oc > 0 ? os / oc : null;
      // Sums add their increases (cumulative snapshots are not added up); gauges their values.
      case 'sum': return counters > 0 ? (incN > 0 ? inc : null) : n > 0 ? vsum : oc > 0 ? os : null;
      case 'min': return n > 0 ? vmin : Number.isFinite(omin) ? omin : null;
      case 'max': return n > 0 ? vmax : Number.isFinite(omax) ? omax : null;
      case 'last': return n > 0 ? last : null;
      case 'count': return n > 0 ? n : oc > 0 ? oc : null;
      case 'increase': return incN > 0 ? inc : null;
      case 'rate': return incN > 0 ? inc / (to - from) : null;
      // Summaries: the count-weighted mean of the quantiles their points carried.
      default: return merged ? histogramQuantile(merged, Number(agg.slice(1)) / 100) : qw > 0 ? qs / qw : null;
    }
  }
}

/**
 * The q-quantile of merged buckets (upper bound → count), interpolated linearly inside the
 * bucket holding the rank (the first bucket's lower edge is 0 for positive bounds). A rank in
 * the +Inf bucket answers the highest finite bound: nothing better is known.
 */
export function histogramQuantile(buckets: ReadonlyMap<number, number>, q: number): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  let total = 0;
  for (const b of bounds) total += buckets.get(b) ?? 0;
  if (total <= 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let cum = 0;
  for (let i = 0; i < bounds.length; i++) {
    const upper = bounds[i];
    const c = buckets.get(upper) ?? 0;
    if (c > 0 && cum + c >= rank) {
      if (upper === Infinity) return i > 0 ? bounds[i - 1] : null;
      const lower = i > 0 ? bounds[i - 1] : upper > 0 ? 0 : upper;
      return lower + (upper - lower) * ((rank - cum) / c);
    }
    cum += c;
  }
  const finite = bounds.filter((b) => Number.isFinite(b));
  return finite.length > 0 ? finite[finite.length - 1] : null;
}
