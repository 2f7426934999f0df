/**
 * The fail side of the latency tail test: the baseline's upper tail split into bands (above its
 * p99.9, p99 to p99.9, p95 to p99, from the pre-deploy reference), compared between the arms band
 * by band. One slow count above the p95 throws away where in the tail a request landed; a
 * regression of the slowest requests (8 % of requests ×2.5: 9 times as many above the p99.9, 1.5
 * times as many between p95 and p99) shows much sooner when each band is weighed on its own.
 *
 * Stick-breaking from the top: level 0 counts the requests above the highest threshold among all
 * of the chunk's requests, level j those in band j among the requests not in a higher band. Each
 * level is a two-arm binomial comparison (`RateTest`: conditional on the level's margins, its own
 * burst correction and dispersion prior), and under "the candidate's latency distribution is the
 * baseline's" every level's chunk likelihood ratio has mean 1 given the levels above it. So the
 * product over levels of the per-level mixtures — a mixture over the product grid of
 * alternatives — is again a martingale with mean 1, and Ville's inequality bounds its false fail
 * by α (README.md, latency tail).
 *
 * Bursts: each level's evidence is divided by its own design effect (`RateTest`), but a slow
 * second raises every band at once, so the levels' counts are correlated under bursts (they are
 * not for independent requests) and the per-level correction alone is too small for the product.
 * `CrossLevel` estimates the levels' covariance (stick-broken residuals, each source around its
 * own rates: the pre-deploy seconds and both arms), normalised by the binomial variances; the
 * largest eigenvalue over the largest diagonal entry is the worst-case extra inflation of a
 * weighted sum of levels, and every level's evidence is divided by it as well (≥ 1).
 */
import { RateTest } from './rate-test.js';

/** Baseline quantiles that bound the bands (highest first); the last is the test's tail quantile. */
export const TAIL_BAND_QUANTILES = [0.999, 0.99] as const;

/** A band's threshold is used only when the reference holds at least this many requests above it. */
const MIN_ABOVE = 5;

/** Sums of one source's stick-broken level counts `b` and denominators `m`, chunk by chunk. */
class LevelMoments {
  chunks = 0;
  readonly b: Float64Array;
  readonly m: Float64Array;
  /** Σ b_i b_j, Σ b_i m_j, Σ m_i m_j (row-major L × L). */
  readonly bb: Float64Array;
  readonly bm: Float64Array;
  readonly mm: Float64Array;
  constructor(readonly L: number) {
    this.b = new Float64Array(L); this.m = new Float64Array(L);
    this.bb = new Float64Array(L * L); this.bm = new Float64Array(L * L); this.mm = new Float64Array(L * L);
  }
  add(b: readonly number[], m: readonly number[]): void {
    if (m[0] <= 0) return;
    this.chunks++;
    for (let i = 0; i < this.L; i++) {
      this.b[i] += b[i]; this.m[i] += m[i];
      for (let j = 0; j < this.L; j++) {
        this.bb[i * this.L + j] += b[i] * b[j]; this.bm[i * this.L + j] += b[i] * m[j]; this.mm[i * this.L + j] += m[i] * m[j];
      }
    }
  }
  /** Adds this source's residual covariance (around its own rates) and binomial variances. */
  addTo(cov: Float64Array, binom: Float64Array): void {
    if (this.chunks < 2) return;
    const L = this.L, p = Array.from(this.b, (b, j) => (this.m[j] > 0 ? b / this.m[j] : 0));
    for (let i = 0; i < L; i++) {
      binom[i] += this.m[i] * p[i] * (1 - p[i]);
      for (let j = 0; j < L; j++) {
        const k = i * L + j;
        cov[k] += this.bb[k] - p[j] * this.bm[k] - p[i] * this.bm[j * L + i] + p[i] * p[j] * this.mm[k];
      }
    }
  }
}

/** Worst-case inflation of a weighted sum of levels beyond the largest single level's: λ_max / max diag, ≥ 1. */
export function crossLevelInflation(cov: Float64Array, binom: Float64Array, L: number): number {
  if (L < 2) return 1;
  const r = new Float64Array(L * L);
  let maxDiag = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const d = Math.sqrt(binom[i] * binom[j]);
      r[i * L + j] = d > 0 ? cov[i * L + j] / d : 0;
    }
    maxDiag = Math.max(maxDiag, r[i * L + i]);
  }
  if (!(maxDiag > 0)) return 1;
  // Power iteration from the all-ones vector (the bursts' direction: every band up at once).
  let v = new Float64Array(L).fill(1 / Math.sqrt(L)), lambda = 0;
  for (let it = 0; it < 100; it++) {
    const w = new Float64Array(L);
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) w[i] += r[i * L + j] * v[j];
    let norm = 0;
    for (let i = 0; i < L; i++) norm += w[i] * w[i];
    norm = Math.sqrt(norm);
    if (!(norm > 0)) return 1;
    lambda = 0;
    for (let i = 0; i < L; i++) lambda += v[i] * w[i];
    v = w.map((x) => x / norm);
  }
  return Math.max(1, lambda / maxDiag);
}

export class TailBands {
  readonly levels: RateTest[];
  maxFailLog = -Infinity;
  /** The cross-level inflation applied to the last chunk. */
  inflation = 1;
  private readonly moments: { history: LevelMoments; cand: LevelMoments; base: LevelMoments };

  /** `keys`: coarse latency keys, strictly decreasing (highest band first). */
  constructor(readonly keys: readonly number[], readonly quantiles: readonly number[], passRatio: number) {
    this.levels = keys.map(() => new RateTest(passRatio));
    const L = keys.length;
    this.moments = { history: new LevelMoments(L), cand: new LevelMoments(L), base: new LevelMoments(L) };
  }

  /** Stick-broken denominators: requests not in a higher band. */
  private denominators(b: readonly number[], count: number): number[] {
    const m: number[] = [];
    let r = count;
    for (const x of b) { m.push(r); r -= x; }
    return m;
  }

  private updateInflation(): void {
    const L = this.keys.length;
    if (L < 2) return;
    const cov = new Float64Array(L * L), binom = new Float64Array(L);
    for (const src of [this.moments.history, this.moments.cand, this.moments.base]) src.addTo(cov, binom);
    this.inflation = crossLevelInflation(cov, binom, L);
  }

  /**
   * The band thresholds of a reference histogram: `thresholdOf(q)` for each band quantile with
   * enough reference requests above it, then the tail quantile's; duplicates (a small reference)
   * merged into the lower band.
   */
  static of(thresholdOf: (q: number) => number, referenceN: number, tailQuantile: number, passRatio: number): TailBands {
    const keys: number[] = [], qs: number[] = [];
    for (const q of [...TAIL_BAND_QUANTILES.filter((x) => x > tailQuantile && referenceN * (1 - x) >= MIN_ABOVE), tailQuantile]) {
      const k = thresholdOf(q);
      if (keys.length > 0 && k >= keys[keys.length - 1]) { keys[keys.length - 1] = k; qs[qs.length - 1] = q; continue; }
      keys.push(k); qs.push(q);
    }
    return new TailBands(keys, qs, passRatio);
  }

  /** Requests of a histogram per level's band (index j: above keys[j], at most keys[j − 1]). */
  private split(bins: ReadonlyMap<number, number>): number[] {
    const out = new Array<number>(this.keys.length).fill(0);
    for (const [k, c] of bins) {
      for (let j = 0; j < this.keys.length; j++) {
        if (k > this.keys[j]) { out[j] += c; break; }
      }
    }
    return out;
  }

  /** One pre-deploy second of the baseline: each level's dispersion prior. */
  prior(bins: ReadonlyMap<number, number>, count: number): void {
    const b = this.split(bins), m = this.denominators(b, count);
    for (let j = 0; j < this.levels.length; j++) this.levels[j].prior(b[j], m[j]);
    this.moments.history.add(b, m);
  }

  /**
   * The thresholds were read from this histogram (the pre-deploy window), and the baseline arm of
   * replayed chunks is made of its seconds: each level keeps the window's count in its band and
   * its denominator, and tests a replayed chunk's candidate against the whole window
   * (`RateTest.observeAgainstWindow`; README.md, latency tail, "a window is not a sample of itself").
   */
  windowReference(bins: ReadonlyMap<number, number>, count: number): void {
    const b = this.split(bins), m = this.denominators(b, count);
    for (let j = 0; j < this.levels.length; j++) this.levels[j].windowReference(b[j], m[j]);
  }

  /**
   * One chunk. `againstWindow`: the baseline chunk is replayed seconds of the window given to
   * `windowReference`; the candidate is then compared with the whole window, not with them.
   */
  observe(candBins: ReadonlyMap<number, number>, candCount: number, baseBins: ReadonlyMap<number, number>, baseCount: number, baseSeenBefore: boolean, againstWindow = false): void {
    const b1 = this.split(candBins), b0 = this.split(baseBins);
    const m1 = this.denominators(b1, candCount), m0 = this.denominators(b0, baseCount);
    this.moments.cand.add(b1, m1);
    if (!baseSeenBefore) this.moments.base.add(b0, m0);
    // Includes the current chunk, as each level's ρ does.
    this.updateInflation();
    for (let j = 0; j < this.levels.length; j++) {
      const l = this.levels[j];
      if (againstWindow && l.hasWindow) l.observeAgainstWindow(b1[j], m1[j], b0[j], m0[j], baseSeenBefore, this.inflation);
      else l.observe(b1[j], m1[j], b0[j], m0[j], baseSeenBefore, this.inflation);
    }
    const f = this.failLogLr;
    if (f > this.maxFailLog) this.maxFailLog = f;
  }

  /** log of the product over levels of each level's mixture likelihood ratio. */
  get failLogLr(): number {
    let s = 0;
    for (const l of this.levels) s += l.failLogLr;
    return s;
  }

  /** Per band: its lower quantile and the odds ratio of landing in it (candidate vs baseline). */
  bandOddsRatios(): Array<{ aboveQuantile: number; oddsRatio: number }> {
    return this.levels.map((l, j) => ({ aboveQuantile: this.quantiles[j], oddsRatio: l.oddsRatio() }));
  }
}
