import { describe, expect, it } from 'vitest';
import { betaPredictiveLogLrs, mannWhitney, nchLogLikelihoodRatios, normalUpperQuantile, normalUpperTail } from './stats.js';

function binom(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Fisher's noncentral hypergeometric pmf, straight from the definition. */
function nchPmf(k: number, s: number, n1: number, n0: number, psi: number): number {
  let z = 0;
  for (let j = Math.max(0, s - n0); j <= Math.min(s, n1); j++) z += binom(n1, j) * binom(n0, s - j) * psi ** j;
  return (binom(n1, k) * binom(n0, s - k) * psi ** k) / z;
}

describe('nchLogLikelihoodRatios', () => {
  const psis = [0.5, 1.5, 2, 5, 25];
  const out = new Array<number>(psis.length);

  it('equals log P_ψ(k) / P_1(k) computed from the definition', () => {
    for (const [n1, n0, s] of [[20, 20, 3], [7, 30, 9], [50, 5, 12], [3, 3, 5], [100, 80, 1]]) {
      for (let k = Math.max(0, s - n0); k <= Math.min(s, n1); k++) {
        nchLogLikelihoodRatios(k, s, n1, n0, psis, out);
        psis.forEach((psi, i) => expect(out[i]).toBeCloseTo(Math.log(nchPmf(k, s, n1, n0, psi) / nchPmf(k, s, n1, n0, 1)), 9));
      }
    }
  });

  it('has expectation 1 under ψ = 1 (a martingale increment), whatever the margins', () => {
    for (const [n1, n0, s] of [[20, 20, 4], [10, 190, 15], [400, 300, 40]]) {
      const expectation = psis.map(() => 0);
      for (let k = Math.max(0, s - n0); k <= Math.min(s, n1); k++) {
        nchLogLikelihoodRatios(k, s, n1, n0, psis, out);
        psis.forEach((_, i) => { expectation[i] += nchPmf(k, s, n1, n0, 1) * Math.exp(out[i]); });
      }
      for (const e of expectation) expect(e).toBeCloseTo(1, 9);
    }
  });

  it('carries no information when an arm is empty or no event happened', () => {
    for (const [k, s, n1, n0] of [[0, 0, 20, 20], [3, 3, 20, 0], [0, 3, 0, 20], [2, 2, 2, 0]]) {
      nchLogLikelihoodRatios(k, s, n1, n0, psis, out);
      expect(out.every((x) => x === 0)).toBe(true);
    }
  });

  it('stays finite for large chunks', () => {
    nchLogLikelihoodRatios(3000, 5000, 100_000, 100_000, psis, out);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(out[4]).toBeLessThan(0); // 60 % of events in the candidate is far from ψ = 25
  });
});

/** Beta-binomial pmf of k in m, Beta(a, b), by the ratio recurrence (no gamma function needed). */
function betaBinomial(m: number, a: number, b: number): number[] {
  const p = [1];
  for (let k = 0; k < m; k++) p.push((p[k] * (m - k) * (a + k)) / ((k + 1) * (b + m - k - 1)));
  const z = p.reduce((x, y) => x + y, 0);
  return p.map((x) => x / z);
}

/** ∫ Bin(k; m, ψp/(1 − p + ψp)) dBeta(a, b) by a fine midpoint rule in p (the definition). */
function predictive(k: number, m: number, a: number, b: number, psi: number): number {
  const steps = 200_000;
  let num = 0, den = 0;
  for (let i = 0; i < steps; i++) {
    const p = (i + 0.5) / steps, w = Math.exp((a - 1) * Math.log(p) + (b - 1) * Math.log1p(-p));
    const q = (psi * p) / (1 - p + psi * p);
    num += w * binom(m, k) * q ** k * (1 - q) ** (m - k);
    den += w;
  }
  return num / den;
}

describe('betaPredictiveLogLrs (a chunk against a reference window)', () => {
  const psis = [1, 1.25, 2, 5, 25];
  const out = new Array<number>(psis.length);

  it('equals the ratio of the Beta-binomial mixtures computed from the definition', () => {
    for (const [k, m, a, b] of [[0, 20, 13, 1188], [3, 20, 13, 1188], [2, 10, 3, 60], [7, 40, 61, 1140], [1, 1, 1.5, 30]]) {
      betaPredictiveLogLrs(k, m, a, b, psis, out);
      psis.forEach((psi, i) => expect(out[i]).toBeCloseTo(Math.log(predictive(k, m, a, b, psi) / predictive(k, m, a, b, 1)), 5));
    }
  });

  it('has expectation 1 under the reference\'s own Beta-binomial law (a martingale increment)', () => {
    for (const [m, a, b] of [[20, 13, 1188], [20, 1, 1200], [40, 61, 1140], [100, 6.5, 594]]) {
      const pmf = betaBinomial(m, a, b), expectation = psis.map(() => 0);
      pmf.forEach((pk, k) => {
        betaPredictiveLogLrs(k, m, a, b, psis, out);
        psis.forEach((_, i) => { expectation[i] += pk * Math.exp(out[i]); });
      });
      for (const e of expectation) expect(e).toBeCloseTo(1, 4); // the quadrature: within 2e-6
    }
  });
});

describe('normal distribution', () => {
  it('matches known tail probabilities and quantiles', () => {
    expect(normalUpperTail(0)).toBeCloseTo(0.5, 12);
    expect(normalUpperTail(1.959963985)).toBeCloseTo(0.025, 9);
    expect(normalUpperTail(3.090232306)).toBeCloseTo(0.001, 9);
    expect(normalUpperTail(5)).toBeCloseTo(2.8665157e-7, 12);
    expect(normalUpperTail(-1.644853627)).toBeCloseTo(0.95, 9);
    expect(normalUpperQuantile(0.05)).toBeCloseTo(1.644853627, 6);
    expect(normalUpperQuantile(0.003 / 8)).toBeCloseTo(3.3706, 3);
  });
});

describe('mannWhitney', () => {
  it('equals the pairwise count with ties as halves', () => {
    const base = new Map([[1, 3], [2, 5], [4, 1]]);
    const cand = new Map([[2, 2], [3, 4], [4, 2], [0, 1]]);
    let u = 0, n0 = 0, n1 = 0;
    for (const [k1, c1] of cand) {
      n1 += c1;
      for (const [k0, c0] of base) u += c1 * c0 * (k1 > k0 ? 1 : k1 === k0 ? 0.5 : 0);
    }
    for (const c of base.values()) n0 += c;
    const mw = mannWhitney(base, cand);
    expect(mw.auc).toBeCloseTo(u / (n0 * n1), 12);
    expect(mw.n0).toBe(n0);
    expect(mw.n1).toBe(n1);
    // Without ties the variance is n0·n1·(n+1)/12; ties only shrink it.
    expect(mw.sdAuc).toBeLessThan(Math.sqrt((n0 * n1 * (n0 + n1 + 1)) / 12) / (n0 * n1));
  });
});
