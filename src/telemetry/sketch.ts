/**
 * LatencySketch: a mergeable quantile sketch over span durations (nanoseconds), using the
 * DDSketch logarithmic mapping at 1% relative accuracy (gamma = 1.01/0.99, key = ceil(log_gamma v),
 * value(key) = 2·gamma^key/(1+gamma)) — the same mapping as `@datadog/sketches-js`'
 * LogarithmicMapping, so bins are interchangeable with DDSketch's.
 *
 * Bins are a sparse key → count map. Keys of nanosecond durations stay within ±1200, so they fit a
 * SMALLINT column; storage keeps them as parallel keys/counts lists that SQL can merge with
 * unnest + GROUP BY. Durations below 1 ns (zero) are counted in the 1 ns bin.
 */
import { at } from '../core/indexed.js';

export const SKETCH_RELATIVE_ACCURACY = 0.01;
const GAMMA = (1 + SKETCH_RELATIVE_ACCURACY) / (1 - SKETCH_RELATIVE_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);

/** The bin key of a duration in nanoseconds. */
export function sketchKey(valueNs: number): number {
  return valueNs > 1 ? Math.ceil(Math.log(valueNs) / LN_GAMMA) : 0;
}

/** The representative duration (ns) of a bin: within 1% of every value the bin holds. */
export function sketchValue(key: number): number {
  return (2 * Math.pow(GAMMA, key)) / (1 + GAMMA);
}

/**
 * Quantile over bins sorted by key, DDSketch's rank rule: the first bin whose cumulative count
 * exceeds q·(n−1). Shared by the in-memory sketch and the SQL merge (which applies the same rule).
 */
export function quantileFromSortedBins(keys: ArrayLike<number>, counts: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += at(counts, i);
  if (total === 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * (total - 1);
  let cum = 0;
  for (let i = 0; i < keys.length; i++) {
    cum += at(counts, i);
    if (cum > rank) return sketchValue(at(keys, i));
  }
  return sketchValue(at(keys, keys.length - 1));
}

export class LatencySketch {
  private readonly bins = new Map<number, number>();
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(valueNs: number, weight = 1): void {
    const k = sketchKey(valueNs);
    this.bins.set(k, (this.bins.get(k) ?? 0) + weight);
    this.n += weight;
  }

  addBin(key: number, count: number): void {
    this.bins.set(key, (this.bins.get(key) ?? 0) + count);
    this.n += count;
  }

  merge(other: LatencySketch): void {
    for (const [k, c] of other.bins) this.bins.set(k, (this.bins.get(k) ?? 0) + c);
    this.n += other.n;
  }

  /** Estimated q-quantile in nanoseconds (null when empty), within 1% of an exact rank value. */
  quantile(q: number): number | null {
    const { keys, counts } = this.toBins();
    return quantileFromSortedBins(keys, counts, q);
  }

  /** Bins sorted by key, as the parallel lists storage keeps. */
  toBins(): { keys: number[]; counts: number[] } {
    const keys = [...this.bins.keys()].sort((a, b) => a - b);
    return { keys, counts: keys.map((k) => this.bins.get(k) ?? 0) };
  }

  static fromBins(keys: ArrayLike<number>, counts: ArrayLike<number>): LatencySketch {
    const s = new LatencySketch();
    for (let i = 0; i < keys.length; i++) s.addBin(at(keys, i), at(counts, i));
    return s;
  }
}
