import { describe, expect, it } from 'vitest';
import { VerificationAnalysis } from './analysis.js';
import { RateTest } from './rate-test.js';
import { coarseKeyOfMs, emptyChunk, type ArmChunk } from './traffic.js';

/**
 * The rate tests' burst dispersion ρ from the baseline's own seconds before the deploy
 * (rate-test.ts `prior`, analysis.ts `history`): known from the first chunk, not learned from the
 * arms' early noise or from a regression.
 */

function seeded(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
}

/** Error counts of one 20-request second: 1 % on average, bursty (10 % of seconds at 10 %) or not. */
function errorSecond(rand: () => number, bursty: boolean): number {
  const rate = bursty ? (rand() < 0.1 ? 0.1 : 0) : 0.01;
  let k = 0;
  for (let i = 0; i < 20; i++) if (rand() < rate) k++;
  return k;
}

function chunk(rand: () => number, bursty: boolean): ArmChunk {
  const c = emptyChunk();
  c.count = 20;
  c.errors = errorSecond(rand, bursty);
  for (let i = 0; i < 20; i++) {
    const k = coarseKeyOfMs(50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())));
    c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
  }
  return c;
}

describe('dispersion prior from the baseline\'s pre-deploy seconds', () => {
  it('bursty history sets ρ from the first chunk; the arms alone see no dispersion yet', () => {
    const rand = seeded(5);
    const withPrior = new RateTest(2), without = new RateTest(2);
    for (let i = 0; i < 300; i++) withPrior.prior(errorSecond(rand, true), 20);
    // Two quiet chunks (no burst yet) in both arms.
    for (let i = 0; i < 2; i++) { withPrior.observe(0, 20, 0, 20); without.observe(0, 20, 0, 20); }
    expect(without.rho).toBe(0);
    // 10 % of seconds at 10 %: ρ ≈ (20·0.009 + 400·0.0009 − 0.198) / (0.198 · 19) ≈ 0.09
    expect(withPrior.rho).toBeGreaterThan(0.05);
    expect(withPrior.rho).toBeLessThan(0.15);
    // Only ρ: the history never enters the counts or a likelihood ratio.
    expect(withPrior.n0).toBe(40);
    expect(withPrior.failLogLr).toBe(without.failLogLr);
  });

  it('binomial history keeps ρ near 0 where the arms\' own noise alone reads as dispersion', () => {
    let sumWith = 0, sumWithout = 0;
    for (let r = 0; r < 20; r++) {
      const rand = seeded(100 + r);
      const withPrior = new RateTest(2), without = new RateTest(2);
      for (let i = 0; i < 600; i++) withPrior.prior(errorSecond(rand, false), 20);
      for (let i = 0; i < 20; i++) {
        const e1 = errorSecond(rand, false), e0 = errorSecond(rand, false);
        withPrior.observe(e1, 20, e0, 20);
        without.observe(e1, 20, e0, 20);
      }
      sumWith += withPrior.maxDesignEffect - 1;
      sumWithout += without.maxDesignEffect - 1;
    }
    // The positive parts of the arms' early X² excess: a design effect of ≈ 1.2 without history.
    expect(sumWith / 20).toBeLessThan(0.5 * (sumWithout / 20));
  });

  it('a replayed pre-deploy window is not counted twice (history and baseline arm)', () => {
    const rand = seeded(9);
    const window = Array.from({ length: 60 }, () => chunk(rand, true));
    const reference = new Map<number, number>();
    for (const c of window) for (const [k, n] of c.bins) reference.set(k, (reference.get(k) ?? 0) + n);
    const a = new VerificationAnalysis({}, reference, [], window);
    for (const c of window.slice(0, 30)) a.observe(c, chunk(rand, true), true);
    const e = a.peek().evidence.find((x) => x.signal === 'error_rate')!;
    expect(e.stats.dispersionPriorRequests).toBe(1200);
    expect(e.baseline.requests).toBe(600);
    // Without history the replayed chunks are the baseline arm's dispersion evidence, as before.
    const b = new VerificationAnalysis({}, reference);
    for (const c of window.slice(0, 30)) b.observe(c, chunk(rand, true), true);
    expect(b.peek().evidence.find((x) => x.signal === 'error_rate')!.stats.dispersionPriorRequests).toBe(0);
  });
});
