/**
 * The information floor of `npm run bench -- verify`: sequential likelihood ratio tests that know
 * the true alternative (one odds ratio per signal, binomial requests, no mixture over
 * alternatives, no burst correction), at the same α and the same traffic as the analysis. What
 * they need to detect a regression (p95 over runs) no test can beat by much at that α and traffic,
 * so it tells which speed goals are reachable. Both arms serve `rps` requests a second; the test
 * decides after every second, once each arm has `minSamples` requests.
 */
import { nchLogLikelihoodRatios, normalUpperTail } from '../src/deploys/stats.js';

export interface OracleAt { rps: number; alpha: number; minSamples: number; runs: number }

function pct95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)];
}

/**
 * Stick-broken categories: `p0[j]`, `p1[j]` are the baseline's and candidate's probabilities of
 * category j (the last category is "none of the above"). Level j compares the arms' category-j
 * counts among their requests not in a category before j, with its true odds ratio.
 */
function detectS(p0: readonly number[], p1: readonly number[], rand: () => number, at: OracleAt): number {
  const levels = p0.length - 1;
  const psis: number[] = [];
  let r0 = 1, r1 = 1;
  for (let j = 0; j < levels; j++) {
    const q0 = p0[j] / r0, q1 = p1[j] / r1;
    psis.push((q1 / (1 - q1)) / (q0 / (1 - q0)));
    r0 -= p0[j]; r1 -= p1[j];
  }
  const draw = (p: readonly number[]): number[] => {
    const c = new Array<number>(p.length).fill(0);
    for (let i = 0; i < at.rps; i++) {
      let u = rand(), j = 0;
      while (j < p.length - 1 && u >= p[j]) { u -= p[j]; j++; }
      c[j]++;
    }
    return c;
  };
  const out = [0], times: number[] = [];
  const bound = Math.log(1 / at.alpha);
  for (let r = 0; r < at.runs; r++) {
    let log = 0, t = 1;
    for (; t < 5000; t++) {
      const c1 = draw(p1), c0 = draw(p0);
      let m1 = at.rps, m0 = at.rps;
      for (let j = 0; j < levels; j++) {
        nchLogLikelihoodRatios(c1[j], c1[j] + c0[j], m1, m0, [psis[j]], out);
        log += out[0];
        m1 -= c1[j]; m0 -= c0[j];
      }
      if (t * at.rps >= at.minSamples && log >= bound) break;
    }
    times.push(t);
  }
  return pct95(times);
}

/** Errors 1 % → 5 %: p95 seconds to fail for the test that knows the odds ratio. */
export function oracleErr5(rand: () => number, at: OracleAt): number {
  return detectS([0.01, 0.99], [0.05, 0.95], rand, at);
}

/**
 * The bench's tail-only regression (log-normal σ 0.5; 8 % of requests ×2.5): the share above
 * the baseline's quantile q is 0.92·(1 − q) + 0.08·P(Z > z_q − ln 2.5 / 0.5).
 */
function aboveShare(q: number): number {
  let lo = -10, hi = 10;
  for (let i = 0; i < 100; i++) { const m = (lo + hi) / 2; if (normalUpperTail(m) > 1 - q) lo = m; else hi = m; }
  const z = (lo + hi) / 2;
  return 0.92 * (1 - q) + 0.08 * normalUpperTail(z - Math.log(2.5) / 0.5);
}

/** Tail-only, read at the baseline's p95 alone (one slow count: 5 % → 9.2 %). */
export function oracleTailP95(rand: () => number, at: OracleAt): number {
  const a = aboveShare(0.95);
  return detectS([0.05, 0.95], [a, 1 - a], rand, at);
}

/** Tail-only, read in the analysis's bands: above p99.9, p99–p99.9, p95–p99, the rest. */
export function oracleTailBands(rand: () => number, at: OracleAt): number {
  const qs = [0.999, 0.99, 0.95];
  const up1 = qs.map(aboveShare);
  const p0 = [0.001, 0.009, 0.04, 0.95];
  const p1 = [up1[0], up1[1] - up1[0], up1[2] - up1[1], 1 - up1[2]];
  return detectS(p0, p1, rand, at);
}

/** log of the binomial probabilities P(X = x), x = 0..K, for n trials at rate p. */
function logBinomial(n: number, p: number, K: number): Float64Array {
  const out = new Float64Array(K + 1);
  out[0] = n * Math.log(1 - p);
  for (let x = 1; x <= K; x++) out[x] = out[x - 1] + Math.log((n - x + 1) / x) + Math.log(p / (1 - p));
  return out;
}

/**
 * The most any test can do, not only a sequential one: the power of the Neyman-Pearson test of
 * "both arms at the common error rate `common`" against "baseline 1 %, candidate 5 %" after `n`
 * requests per arm, at level α (randomized at the boundary). A test that is valid for every
 * common rate is valid for this one, so no test — fixed-sample, sequential, knowing the
 * alternative or not — rejects the 5 % candidate by n requests with a higher probability. A
 * sequential test whose p95 time to fail is T seconds rejects by T·rps requests with probability
 * ≥ 0.95 and is a level-α test of its data up to then.
 */
export function neymanPearsonPowerErr5(n: number, common: number, alpha: number): number {
  const K = Math.min(n, Math.ceil(n * 0.12) + 30);
  const b1 = logBinomial(n, 0.05, K), b0 = logBinomial(n, 0.01, K), bn = logBinomial(n, common, K);
  const cells: Array<{ lr: number; alt: number; nul: number }> = [];
  for (let x1 = 0; x1 <= K; x1++) {
    for (let x0 = 0; x0 <= K; x0++) {
      const la = b1[x1] + b0[x0], ln = bn[x1] + bn[x0];
      cells.push({ lr: la - ln, alt: Math.exp(la), nul: Math.exp(ln) });
    }
  }
  cells.sort((a, b) => b.lr - a.lr);
  let size = 0, power = 0;
  for (const c of cells) {
    if (size + c.nul <= alpha) { size += c.nul; power += c.alt; continue; }
    return power + ((alpha - size) / c.nul) * c.alt;
  }
  return power;
}

/**
 * The bound on any test for 1 % → 5 % errors at `rps` requests a second per arm: the highest
 * rejection probability by `seconds` (the least over common rates 1 %–5 % of the Neyman-Pearson
 * power), and the fewest seconds after which it reaches 0.95 — no valid test's p95 is shorter.
 */
export function anyTestErr5(rps: number, alpha: number, seconds: number): { powerAt: number; p95FloorS: number } {
  const commons = Array.from({ length: 17 }, (_, i) => 0.01 + i * 0.0025);
  const bound = (s: number): number => Math.min(...commons.map((p) => neymanPearsonPowerErr5(s * rps, p, alpha)));
  // The power grows with the requests: bisect for the first second at 0.95.
  let lo = 0, hi = 120;
  while (hi - lo > 1) { const mid = Math.floor((lo + hi) / 2); if (bound(mid) >= 0.95) hi = mid; else lo = mid; }
  if (hi === 120 && bound(hi) < 0.95) hi = Infinity;
  return { powerAt: bound(seconds), p95FloorS: hi };
}

/**
 * The tail-only regression for a fixed-sample test that knows the alternative: the sum over the
 * bands (baseline quantiles `qs`, highest first) of the conditional log likelihood ratios of the
 * totals after `seconds`, its level-α critical value simulated under "same distribution"
 * (`nullRuns` runs), and the share of `altRuns` regressed runs above it. A sequential test with a
 * p95 of `seconds` has at least 0.95 here; what this falls short of 0.95 by, no test reading
 * these bands can make up.
 */
export function fixedSampleTailPower(rand: () => number, rps: number, alpha: number, seconds: number, qs: readonly number[], nullRuns = 20000, altRuns = 2000): number {
  const up0 = qs.map((q) => 1 - q), up1 = qs.map(aboveShare);
  const cats = (up: number[]): number[] => [up[0], ...up.slice(1).map((u, i) => u - up[i]), 1 - up[up.length - 1]];
  const p0 = cats(up0), p1 = cats(up1);
  const psis: number[] = [];
  let r0 = 1, r1 = 1;
  for (let j = 0; j < qs.length; j++) {
    const q0 = p0[j] / r0, q1 = p1[j] / r1;
    psis.push((q1 / (1 - q1)) / (q0 / (1 - q0)));
    r0 -= p0[j]; r1 -= p1[j];
  }
  const n = rps * seconds, out = [0];
  const draw = (p: number[]): number[] => {
    const c = new Array<number>(p.length).fill(0);
    for (let i = 0; i < n; i++) {
      let u = rand(), j = 0;
      while (j < p.length - 1 && u >= p[j]) { u -= p[j]; j++; }
      c[j]++;
    }
    return c;
  };
  const stat = (cand: number[]): number => {
    const c1 = draw(cand), c0 = draw(p0);
    let m1 = n, m0 = n, s = 0;
    for (let j = 0; j < qs.length; j++) {
      nchLogLikelihoodRatios(c1[j], c1[j] + c0[j], m1, m0, [psis[j]], out);
      s += out[0];
      m1 -= c1[j]; m0 -= c0[j];
    }
    return s;
  };
  const nul = Array.from({ length: nullRuns }, () => stat(p0)).sort((a, b) => b - a);
  const crit = nul[Math.floor(alpha * nullRuns)];
  let hits = 0;
  for (let r = 0; r < altRuns; r++) if (stat(p1) > crit) hits++;
  return hits / altRuns;
}
