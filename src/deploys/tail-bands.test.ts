import { describe, expect, it } from 'vitest';
import { RateTest } from './rate-test.js';
import { crossLevelInflation, TailBands } from './tail-bands.js';
import { coarseKeyOfMs, emptyChunk, slowCount, thresholdKey, type ArmChunk } from './traffic.js';

/** Seeded arm, one second per call: 20 requests, log-normal latency (median 50 ms, σ 0.5). */
function arm(seed: number, tailShare = 0, slowShare = 0) {
  let s = seed;
  const rand = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  return (): ArmChunk => {
    const c = emptyChunk();
    const slow = slowShare > 0 && rand() < slowShare ? 1.5 : 1;
    for (let i = 0; i < 20; i++) {
      let ms = 50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())) * slow;
      if (tailShare > 0 && rand() < tailShare) ms *= 2.5;
      const k = coarseKeyOfMs(ms);
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
      c.count++;
    }
    return c;
  };
}

function setUp(history: () => ArmChunk, seconds = 300) {
  const hist = Array.from({ length: seconds }, history);
  const ref = new Map<number, number>();
  let n = 0;
  for (const c of hist) for (const [k, x] of c.bins) { ref.set(k, (ref.get(k) ?? 0) + x); n += x; }
  const bands = TailBands.of((q) => thresholdKey(ref, q), n, 0.95, 1.5);
  for (const c of hist) bands.prior(c.bins, c.count);
  return { bands, p95: thresholdKey(ref, 0.95) };
}

describe('tail bands', () => {
  it('splits the tail at the baseline p99.9, p99 and p95 (highest first)', () => {
    const { bands } = setUp(arm(1));
    expect(bands.quantiles).toEqual([0.999, 0.99, 0.95]);
    expect(bands.keys[0]).toBeGreaterThan(bands.keys[1]);
    expect(bands.keys[1]).toBeGreaterThan(bands.keys[2]);
    // A small reference has no p99.9 worth the name: the band is left out.
    expect(setUp(arm(1), 60).bands.quantiles).toEqual([0.99, 0.95]);
  });

  it('cross-level inflation: 1 for uncorrelated levels, the largest eigenvalue over the largest variance otherwise', () => {
    expect(crossLevelInflation(new Float64Array([1, 0, 0, 1]), new Float64Array([1, 1]), 2)).toBeCloseTo(1, 6);
    expect(crossLevelInflation(new Float64Array([1, 0.5, 0.5, 1]), new Float64Array([1, 1]), 2)).toBeCloseTo(1.5, 6);
    // Independent requests: ≈ 1; slow seconds (every band up at once): clearly above.
    expect(setUp(arm(2)).bands.inflation).toBe(1); // not computed before the first chunk
    const flat = setUp(arm(3)).bands, bursty = setUp(arm(4, 0, 0.05)).bands;
    flat.observe(arm(5)().bins, 20, arm(6)().bins, 20, false);
    bursty.observe(arm(7, 0, 0.05)().bins, 20, arm(8, 0, 0.05)().bins, 20, false);
    expect(flat.inflation).toBeLessThan(1.08);
    expect(bursty.inflation).toBeGreaterThan(1.1);
  });

  it('shows a tail-only regression sooner than the slow count above the p95 alone', () => {
    const bound = Math.log(1 / 0.003);
    const bandsAt: number[] = [], singleAt: number[] = [];
    for (let r = 0; r < 30; r++) {
      const { bands, p95 } = setUp(arm(100 + r));
      const single = new RateTest(1.5);
      const base = arm(200 + r), cand = arm(300 + r, 0.08);
      let b = 0, s = 0;
      for (let t = 1; t <= 1000 && (b === 0 || s === 0); t++) {
        const c0 = base(), c1 = cand();
        bands.observe(c1.bins, c1.count, c0.bins, c0.count, false);
        single.observe(slowCount(c1.bins, p95), c1.count, slowCount(c0.bins, p95), c0.count);
        if (b === 0 && t >= 5 && bands.failLogLr >= bound) b = t;
        if (s === 0 && t >= 5 && single.failLogLr >= bound) s = t;
      }
      bandsAt.push(b); singleAt.push(s);
    }
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    expect(bandsAt.every((t) => t > 0)).toBe(true);
    expect(median(bandsAt)).toBeLessThan(0.85 * median(singleAt));
  });

  it('identical versions: the bands stay below the fail bound (independent requests and slow seconds)', () => {
    const bound = Math.log(1 / 0.003);
    for (const slowShare of [0, 0.05]) {
      let worst = -Infinity;
      for (let r = 0; r < 10; r++) {
        const { bands } = setUp(arm(400 + r, 0, slowShare));
        const base = arm(500 + r, 0, slowShare), cand = arm(600 + r, 0, slowShare);
        for (let t = 1; t <= 300; t++) {
          const c0 = base(), c1 = cand();
          bands.observe(c1.bins, c1.count, c0.bins, c0.count, false);
        }
        worst = Math.max(worst, bands.maxFailLog);
      }
      expect(worst).toBeLessThan(bound);
    }
  });
});
