import { describe, expect, it } from 'vitest';
import { VerificationAnalysis } from './analysis.js';
import { coarseKeyOfMs, emptyChunk, type ArmChunk } from './traffic.js';

/**
 * The practical-effect guard of the latency tests ("the candidate's median or p95 at least 15 %
 * above the baseline's") reads the baseline's quantiles from its concurrent requests and its
 * pre-deploy reference together. Deterministic traffic: latencies are log-normal quantiles
 * (median 50 ms, σ 0.5) handed out in a fixed scrambled order, 20 a second.
 */
const Q = 2000;
const grid = Array.from({ length: Q }, (_, i) => {
  // Normal quantile by bisection on the error function's series (no dependency needed here).
  const p = (i + 0.5) / Q;
  let lo = -8, hi = 8;
  for (let j = 0; j < 80; j++) {
    const mid = (lo + hi) / 2;
    if (0.5 * (1 + erf(mid / Math.SQRT2)) < p) lo = mid; else hi = mid;
  }
  return 50 * Math.exp(0.5 * (lo + hi) / 2);
});
function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for the tails; the Taylor series converges for |x| ≤ 6.
  let sum = 0, term = x;
  for (let n = 0; n < 200; n++) { sum += term / (2 * n + 1); term *= (-x * x) / (n + 1); }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** An arm serving the quantile grid in a scrambled order; `map` changes each latency. */
function source(offset: number, map: (ms: number) => number = (ms) => ms) {
  let i = offset;
  return (): ArmChunk => {
    const c = emptyChunk();
    for (let r = 0; r < 20; r++, i++) {
      const k = coarseKeyOfMs(map(grid[(i * 7919) % Q]));
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
      c.count++;
    }
    return c;
  };
}

function watch(base: () => ArmChunk, cand: () => ArmChunk, seconds: number) {
  const reference = new Map<number, number>(), history: ArmChunk[] = [];
  const past = source(0);
  for (let s = 0; s < 300; s++) {
    const c = past();
    history.push(c);
    for (const [k, n] of c.bins) reference.set(k, (reference.get(k) ?? 0) + n);
  }
  const a = new VerificationAnalysis({ beta: 1e-300, maxDurationS: seconds }, reference, [], history);
  for (let t = 1; ; t++) {
    a.observe(base(), cand());
    const v = a.decide(t);
    if (v.outcome !== 'pending') return { ...v, atS: t };
  }
}

describe('latency practical effect against the baseline\'s pre-deploy reference', () => {
  it('a baseline arm that is fast by chance does not make an unchanged candidate "noticeably slower"', () => {
    // The baseline's concurrent requests happen to miss its slowest 10 % (its p95 reads ≈ 20 %
    // low); the candidate serves exactly what the baseline served for the 300 s before. The
    // slow-request counts differ (cand ≈ 5 %, baseline 0), but the candidate is not slower than
    // the baseline version is: the old guard compared it with the fast arm only and failed it.
    const p90 = grid[Math.floor(0.9 * Q)];
    const v = watch(source(1, (ms) => Math.min(ms, p90)), source(2), 60);
    expect(v.outcome).toBe('inconclusive');
    const lat = v.evidence.find((e) => e.signal === 'latency')!;
    expect(lat.outcome).toBe('inconclusive');
    expect(lat.stats.slowOddsRatio).toBeGreaterThan(5); // the statistic alone would have failed it
  });

  it('a real tail regression still fails, as fast as before', () => {
    // 8 % of the candidate's requests ×2.5 (p95 ≈ +50 %), median unchanged.
    let n = 0;
    const v = watch(source(1), source(2, (ms) => (++n % 25 < 2 ? ms * 2.5 : ms)), 600);
    expect(v.outcome).toBe('fail');
    expect(v.reason).toMatch(/latency tail up/);
  });
});
