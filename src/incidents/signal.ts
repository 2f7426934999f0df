/**
 * Where a signal left its baseline, and where it came back: one change point over per-second
 * rollup buckets. Pure functions, so the first-bad-signal and recovery times are testable with
 * hand-made buckets.
 *
 * An alert fires some time after things went wrong (its window must fill, `for` must pass). The
 * story starts earlier: at the first bucket of the segment that differs from what came before.
 * We split the buckets at every position and keep the split with the largest likelihood ratio
 * of "two levels" over "one level" — binomial for error rates (each request is a trial, so busy
 * seconds weigh more than quiet ones), Gaussian on log latency for latency signals. Empty
 * buckets carry no evidence and are skipped, so the first bad bucket is always one with traffic.
 */

export type SignalName = 'error_rate' | 'p50_ms' | 'p95_ms' | 'p99_ms';

/** The part of a RED bucket the change point reads. */
export interface SignalBucket {
  timeUs: number;
  count: number;
  errors: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface Shift {
  /** Start of the first bucket after the change (µs). */
  atUs: number;
  /** Signal level before and after (error rate, or latency in ms). */
  before: number;
  after: number;
  /** Log-likelihood ratio of the split (larger = clearer). */
  score: number;
}

/** Below this log-likelihood ratio a split is noise (e^10 ≈ 22,000 : 1). */
export const MIN_SHIFT_SCORE = 10;

/** The signal a rule watches, as far as the change point can follow it. */
export function signalOf(name: string | undefined): SignalName {
  return name === 'p50_ms' || name === 'p95_ms' || name === 'p99_ms' ? name : 'error_rate';
}

const xlogy = (x: number, y: number): number => (x === 0 ? 0 : x * Math.log(y));

/** Binomial log-likelihood of e errors in c requests at their own rate. */
function binLl(e: number, c: number): number {
  if (c === 0) return 0;
  const p = e / c;
  return xlogy(e, p) + xlogy(c - e, 1 - p);
}

function latencyOf(b: SignalBucket, s: SignalName): number | null {
  const v = s === 'p50_ms' ? b.p50Ms : s === 'p95_ms' ? b.p95Ms : s === 'p99_ms' ? b.p99Ms : null;
  return v === null || !(v > 0) ? null : v;
}

/**
 * The strongest single change in the buckets (ascending by time) in the given direction, or
 * null when no split reaches `minScore`.
 */
export function findShift(buckets: readonly SignalBucket[], signal: SignalName, direction: 'up' | 'down', minScore = MIN_SHIFT_SCORE): Shift | null {
  return signal === 'error_rate' ? rateShift(buckets, direction, minScore) : latencyShift(buckets, signal, direction, minScore);
}

function rateShift(buckets: readonly SignalBucket[], direction: 'up' | 'down', minScore: number): Shift | null {
  const xs = buckets.filter((b) => b.count > 0);
  if (xs.length < 2) return null;
  let totalC = 0, totalE = 0;
  for (const b of xs) { totalC += b.count; totalE += b.errors; }
  const all = binLl(totalE, totalC);
  let best: Shift | null = null;
  let c = 0, e = 0;
  for (let k = 1; k < xs.length; k++) {
    c += xs[k - 1].count;
    e += xs[k - 1].errors;
    const before = e / c;
    const after = (totalE - e) / (totalC - c);
    if (direction === 'up' ? after <= before : after >= before) continue;
    const score = binLl(e, c) + binLl(totalE - e, totalC - c) - all;
    if (score >= minScore && (best === null || score > best.score)) best = { atUs: xs[k].timeUs, before, after, score };
  }
  return best;
}

function latencyShift(buckets: readonly SignalBucket[], signal: SignalName, direction: 'up' | 'down', minScore: number): Shift | null {
  const xs: Array<{ timeUs: number; v: number }> = [];
  for (const b of buckets) {
    const v = latencyOf(b, signal);
    if (v !== null) xs.push({ timeUs: b.timeUs, v: Math.log(v) });
  }
  const n = xs.length;
  if (n < 4) return null;
  let sum = 0, sumSq = 0;
  for (const x of xs) { sum += x.v; sumSq += x.v * x.v; }
  const sse0 = sumSq - (sum * sum) / n;
  let best: Shift | null = null;
  let s = 0, sq = 0;
  for (let k = 1; k < n; k++) {
    s += xs[k - 1].v;
    sq += xs[k - 1].v * xs[k - 1].v;
    const meanA = s / k, meanB = (sum - s) / (n - k);
    if (direction === 'up' ? meanB <= meanA : meanB >= meanA) continue;
    const sse1 = (sq - (s * s) / k) + ((sumSq - sq) - ((sum - s) * (sum - s)) / (n - k));
    // Gaussian with a common unknown variance: LLR = n/2 · ln(SSE0 / SSE1). A floor on SSE1
    // keeps perfectly flat test data (or identical sketch bins) from dividing by zero.
    const score = (n / 2) * Math.log(Math.max(sse0, 1e-12) / Math.max(sse1, 1e-6 * n));
    if (score >= minScore && (best === null || score > best.score)) best = { atUs: xs[k].timeUs, before: Math.exp(meanA), after: Math.exp(meanB), score };
  }
  return best;
}

export interface FirstBadSignal {
  atUs: number;
  baseline: number;
  bad: number;
}

/** The first bad bucket before an alert: buckets cover [alert − lookback, alert]. */
export function firstBadSignal(buckets: readonly SignalBucket[], signal: SignalName): FirstBadSignal | null {
  const s = findShift(buckets, signal, 'up');
  return s === null ? null : { atUs: s.atUs, baseline: s.before, bad: s.after };
}

/**
 * Where the signal came back: buckets from the first bad one on; the later segment must sit
 * nearer the baseline than the bad level (halfway or below), or it is an improvement, not a
 * recovery.
 */
export function backToBaseline(buckets: readonly SignalBucket[], signal: SignalName, baseline: number, bad: number): number | null {
  const s = findShift(buckets, signal, 'down');
  if (s === null) return null;
  return s.after <= (baseline + bad) / 2 ? s.atUs : null;
}

export interface FirstBadRequest extends FirstBadSignal {
  /** What counted as bad: an error, or a latency above the baseline's worst bucket (ms). */
  slowerThanMs: number | null;
}

/**
 * The earliest bad evidence of a new version: the first one-second bucket of its own traffic that
 * holds a failed request (error rate), or a request slower than the slowest the service showed
 * before the deploy (latency signals: the bucket's p99 above the highest bucket p99 of
 * `before`). `baseline` is the service's level before the deploy, `bad` the version's level from
 * that bucket on (the recovery search needs both). Null when the version shows no such request,
 * or its level is not worse than the baseline's.
 */
export function firstBadOfVersion(version: readonly SignalBucket[], before: readonly SignalBucket[], signal: SignalName): FirstBadRequest | null {
  if (signal === 'error_rate') {
    const i = version.findIndex((b) => b.errors > 0);
    if (i === -1) return null;
    let c0 = 0, e0 = 0, c1 = 0, e1 = 0;
    for (const b of before) { c0 += b.count; e0 += b.errors; }
    for (const b of version.slice(i)) { c1 += b.count; e1 += b.errors; }
    const baseline = c0 === 0 ? 0 : e0 / c0, bad = e1 / c1;
    return bad > baseline ? { atUs: version[i].timeUs, baseline, bad, slowerThanMs: null } : null;
  }
  const worst = Math.max(...before.map((b) => b.p99Ms ?? 0));
  if (!(worst > 0)) return null;
  const i = version.findIndex((b) => (b.p99Ms ?? 0) > worst);
  if (i === -1) return null;
  const level = (xs: readonly SignalBucket[]): number => {
    const vs = xs.map((b) => latencyOf(b, signal)).filter((v): v is number => v !== null);
    return vs.length === 0 ? 0 : Math.exp(vs.reduce((s, v) => s + Math.log(v), 0) / vs.length);
  };
  const baseline = level(before), bad = level(version.slice(i));
  return bad > baseline ? { atUs: version[i].timeUs, baseline, bad, slowerThanMs: worst } : null;
}
