/**
 * Pure statistics for deploy verification (no I/O, no clocks): the conditional likelihood ratio
 * of two binomial arms (Fisher's noncentral hypergeometric), the Mann-Whitney statistic over
 * histograms, and the normal distribution. Everything here is ours, derived from the textbook
 * definitions; see README.md for why the combination is valid under continuous monitoring.
 */

/**
 * One chunk of two-arm binomial data: `k` events among the candidate's `n1` trials and `s − k`
 * among the baseline's `n0`. Conditional on the total `s`, `k` follows Fisher's noncentral
 * hypergeometric distribution with the odds ratio ψ; under ψ = 1 it is the central one, whatever
 * the common rate. Returns, for each ψ in `psis`, the log likelihood ratio log P_ψ(k) / P_1(k).
 * The nuisance rate cancels, so a product of these over chunks is a likelihood ratio martingale.
 */
export function nchLogLikelihoodRatios(k: number, s: number, n1: number, n0: number, psis: readonly number[], out: number[]): void {
  for (let i = 0; i < psis.length; i++) out[i] = 0;
  if (s === 0 || n1 === 0 || n0 === 0) return; // no information in this chunk
  const lo = Math.max(0, s - n0);
  const hi = Math.min(s, n1);
  if (lo === hi) return; // k is determined by the margins
  // log w_j (relative to w_lo), w_j = C(n1, j) · C(n0, s − j)
  const len = hi - lo + 1;
  const logW = scratch(len);
  logW[0] = 0;
  for (let j = lo + 1; j <= hi; j++) {
    logW[j - lo] = logW[j - lo - 1] + Math.log((n1 - j + 1) / j) + Math.log((s - j + 1) / (n0 - s + j));
  }
  const log1 = logSumExp(logW, len, 0, lo);
  for (let i = 0; i < psis.length; i++) {
    const lp = Math.log(psis[i]);
    out[i] = k * lp - (logSumExp(logW, len, lp, lo) - log1);
  }
}

let scratchBuf = new Float64Array(64);
function scratch(n: number): Float64Array {
  if (scratchBuf.length < n) scratchBuf = new Float64Array(Math.max(n, scratchBuf.length * 2));
  return scratchBuf;
}

/** log Σ_j exp(logW[j] + (lo + j)·lp), stably. (The lo·lp offset keeps ratios exact.) */
function logSumExp(logW: Float64Array, len: number, lp: number, lo: number): number {
  let max = -Infinity;
  for (let j = 0; j < len; j++) { const v = logW[j] + (lo + j) * lp; if (v > max) max = v; }
  let sum = 0;
  for (let j = 0; j < len; j++) sum += Math.exp(logW[j] + (lo + j) * lp - max);
  return max + Math.log(sum);
}

/** log(mean_i exp(x_i)): the log of an equally weighted mixture of likelihood ratios. */
export function logMeanExp(xs: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > max) max = xs[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += Math.exp(xs[i] - max);
  return max + Math.log(sum / xs.length);
}

/** Upper tail of the standard normal, P(Z > z): series below 3, continued fraction above. */
export function normalUpperTail(z: number): number {
  if (z < 0) return 1 - normalUpperTail(-z);
  const pdf = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  if (z < 3) {
    // Φ(z) − ½ = pdf(z) · Σ z^(2n+1) / (1·3·5···(2n+1))
    let term = z, sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (z * z) / (2 * n + 1);
      sum += term;
    }
    return 0.5 - pdf * sum;
  }
  // Mills ratio as a continued fraction: R(z) = 1/(z + 1/(z + 2/(z + 3/(z + …))))
  let f = z;
  for (let n = 60; n >= 1; n--) f = z + n / f;
  return pdf / f;
}

/** z such that P(Z > z) = p (0 < p < 1), by bisection on `normalUpperTail`. */
export function normalUpperQuantile(p: number): number {
  let lo = -40, hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (normalUpperTail(mid) > p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Mann-Whitney over two histograms with shared bin keys (values in a bin are ties):
 * AUC = P(X₁ > X₀) + ½·P(X₁ = X₀), and the null standard deviation of U with the tie correction.
 */
export function mannWhitney(base: ReadonlyMap<number, number>, cand: ReadonlyMap<number, number>): { n0: number; n1: number; auc: number; sdAuc: number } {
  const keys = new Set<number>([...base.keys(), ...cand.keys()]);
  const sorted = [...keys].sort((a, b) => a - b);
  let n0 = 0, n1 = 0;
  for (const c of base.values()) n0 += c;
  for (const c of cand.values()) n1 += c;
  if (n0 === 0 || n1 === 0) return { n0, n1, auc: 0.5, sdAuc: Infinity };
  let below0 = 0, u = 0, ties = 0;
  for (const k of sorted) {
    const c0 = base.get(k) ?? 0, c1 = cand.get(k) ?? 0;
    u += c1 * (below0 + c0 / 2);
    below0 += c0;
    const t = c0 + c1;
    ties += t * t * t - t;
  }
  const n = n0 + n1;
  const varU = (n0 * n1 / 12) * ((n + 1) - ties / (n * (n - 1)));
  return { n0, n1, auc: u / (n0 * n1), sdAuc: Math.sqrt(Math.max(varU, 0)) / (n0 * n1) };
}

/**
 * Cluster-robust standard deviation of the AUC: DeLong's placement variance with each chunk as
 * one cluster. A candidate request's placement is P(X₀ < x) + ½P(X₀ = x), a baseline request's
 * P(X₁ > y) + ½P(X₁ = y); both average to the AUC. Summing the deviations per chunk before
 * squaring lets requests of one chunk move together (a slow second), which the null variance of
 * `mannWhitney` (independent requests) ignores.
 */
export function clusteredAucSd(
  base: ReadonlyMap<number, number>, cand: ReadonlyMap<number, number>,
  baseChunks: ReadonlyArray<ReadonlyArray<readonly [number, number]>>, candChunks: ReadonlyArray<ReadonlyArray<readonly [number, number]>>,
  auc: number,
): number {
  const sorted = [...new Set<number>([...base.keys(), ...cand.keys()])].sort((a, b) => a - b);
  let n0 = 0, n1 = 0;
  for (const c of base.values()) n0 += c;
  for (const c of cand.values()) n1 += c;
  if (n0 === 0 || n1 === 0) return Infinity;
  const f0 = new Map<number, number>(), s1 = new Map<number, number>();
  let below0 = 0, above1 = n1;
  for (const k of sorted) {
    const c0 = base.get(k) ?? 0, c1 = cand.get(k) ?? 0;
    above1 -= c1;
    f0.set(k, (below0 + c0 / 2) / n0);
    s1.set(k, (above1 + c1 / 2) / n1);
    below0 += c0;
  }
  // Σ over clusters of the squared placement deviations, × J/(J − 1) for J clusters.
  const spread = (chunks: ReadonlyArray<ReadonlyArray<readonly [number, number]>>, place: Map<number, number>): number => {
    let v = 0;
    for (const chunk of chunks) {
      let t = 0;
      for (const [k, c] of chunk) t += c * ((place.get(k) ?? 0.5) - auc);
      v += t * t;
    }
    return chunks.length > 1 ? (v * chunks.length) / (chunks.length - 1) : Infinity;
  };
  return Math.sqrt(spread(candChunks, f0) / (n1 * n1) + spread(baseChunks, s1) / (n0 * n0));
}

/**
 * Student's t upper quantile with `df` degrees of freedom, from the normal one by the
 * Cornish-Fisher expansion (Hill's first four terms; within a few % of the exact value for
 * df ≥ 5 at the levels used here, on the high side of the normal quantile always).
 */
export function tUpperQuantile(p: number, df: number): number {
  const z = normalUpperQuantile(p);
  if (!Number.isFinite(df) || df <= 0) return Infinity;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2)
    + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

/** Logit-space grid of the Beta quadrature below: z from −12 to 10 standard deviations, step 0.2. */
const BETA_GRID = Array.from({ length: 111 }, (_, i) => -12 + 0.2 * i);

/**
 * One chunk against a reference sample (a replayed pre-deploy window), for each ψ in `psis`: the
 * log likelihood ratio of `k` events in `m` trials whose probability p, unknown, is distributed
 * Beta(a, b) — what the reference says of it — when the candidate's odds are ψ times the
 * reference's, against ψ = 1:
 * log ∫ Bin(k; m, ψp / (1 − p + ψp)) dBeta(a, b) / ∫ Bin(k; m, p) dBeta(a, b)
 *   = k·log ψ + log E_{Beta(a + k, b + m − k)}[(1 + (ψ − 1)p)^(−m)].
 * Under ψ = 1 its expectation over the Beta-binomial law of k is 1 (a martingale increment when
 * a, b hold everything seen of p before the chunk). The expectation is a quadrature in logit
 * space (the Beta density there is log-concave, sd ≈ √(1/α + 1/β)).
 */
export function betaPredictiveLogLrs(k: number, m: number, a: number, b: number, psis: readonly number[], out: number[]): void {
  for (let i = 0; i < psis.length; i++) out[i] = 0;
  if (m <= 0) return;
  const al = a + k, be = b + m - k;
  const mu = Math.log(al / be), sd = Math.sqrt(1 / al + 1 / be);
  const len = BETA_GRID.length;
  const logW = scratch(len);
  let maxW = -Infinity;
  const ps = new Float64Array(len);
  for (let j = 0; j < len; j++) {
    const x = mu + sd * BETA_GRID[j];
    // log p = −log(1 + e^−x), log(1 − p) = −log(1 + e^x), stably.
    const logP = -softplus(-x), log1mP = -softplus(x);
    ps[j] = Math.exp(logP);
    logW[j] = al * logP + be * log1mP;
    if (logW[j] > maxW) maxW = logW[j];
  }
  let norm = 0;
  for (let j = 0; j < len; j++) norm += Math.exp(logW[j] - maxW);
  for (let i = 0; i < psis.length; i++) {
    const psi = psis[i];
    if (psi === 1) continue;
    let s = 0;
    for (let j = 0; j < len; j++) s += Math.exp(logW[j] - maxW - m * Math.log1p((psi - 1) * ps[j]));
    out[i] = k * Math.log(psi) + Math.log(s / norm);
  }
}

function softplus(x: number): number {
  return x > 30 ? x : Math.log1p(Math.exp(x));
}
