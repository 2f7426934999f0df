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
