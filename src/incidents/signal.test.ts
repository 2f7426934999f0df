import { describe, expect, it } from 'vitest';
import { backToBaseline, findShift, firstBadOfVersion, firstBadSignal, type SignalBucket } from './signal.js';

const T0 = 1_764_000_000_000_000; // µs
const bucket = (i: number, count: number, errors: number, p95Ms: number | null = null): SignalBucket =>
  ({ timeUs: T0 + i * 1_000_000, count, errors, p50Ms: p95Ms, p95Ms, p99Ms: p95Ms });

/** Deterministic pseudo-random numbers (a linear congruential generator). */
function rng(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 1_103_515_245 + 12_345) % 2_147_483_648; return s / 2_147_483_648; };
}

describe('first bad signal (error rate)', () => {
  it('finds the first bucket of a step from 1 % to 50 %', () => {
    const bs = [...Array.from({ length: 30 }, (_, i) => bucket(i, 100, 1)), ...Array.from({ length: 10 }, (_, i) => bucket(30 + i, 100, 50))];
    const f = firstBadSignal(bs, 'error_rate');
    expect(f).not.toBeNull();
    expect(f?.atUs).toBe(T0 + 30 * 1_000_000);
    expect(f?.baseline).toBeCloseTo(0.01, 6);
    expect(f?.bad).toBeCloseTo(0.5, 6);
  });

  it('skips empty buckets: the first bad bucket is one with traffic', () => {
    const bs = [...Array.from({ length: 30 }, (_, i) => bucket(i, 100, 1)), bucket(30, 0, 0), bucket(31, 0, 0),
      ...Array.from({ length: 8 }, (_, i) => bucket(32 + i, 100, 40))];
    expect(firstBadSignal(bs, 'error_rate')?.atUs).toBe(T0 + 32 * 1_000_000);
  });

  it('places a step that starts mid-bucket within one bucket', () => {
    const bs = [...Array.from({ length: 30 }, (_, i) => bucket(i, 100, 1)), bucket(30, 100, 26), ...Array.from({ length: 8 }, (_, i) => bucket(31 + i, 100, 50))];
    const at = firstBadSignal(bs, 'error_rate')?.atUs ?? 0;
    expect([T0 + 30 * 1_000_000, T0 + 31 * 1_000_000]).toContain(at);
  });

  it('finds nothing in binomial noise around a steady 2 %', () => {
    const r = rng(42);
    const bs = Array.from({ length: 120 }, (_, i) => {
      let e = 0;
      for (let k = 0; k < 100; k++) if (r() < 0.02) e++;
      return bucket(i, 100, e);
    });
    expect(firstBadSignal(bs, 'error_rate')).toBeNull();
  });

  it('ignores a drop when looking for a rise', () => {
    const bs = [...Array.from({ length: 20 }, (_, i) => bucket(i, 100, 30)), ...Array.from({ length: 20 }, (_, i) => bucket(20 + i, 100, 1))];
    expect(findShift(bs, 'error_rate', 'up')).toBeNull();
    expect(findShift(bs, 'error_rate', 'down')?.atUs).toBe(T0 + 20 * 1_000_000);
  });
});

describe('first bad signal (latency)', () => {
  it('finds a p95 step from ~100 ms to ~300 ms', () => {
    const r = rng(7);
    const bs = [...Array.from({ length: 20 }, (_, i) => bucket(i, 50, 0, 95 + r() * 10)), ...Array.from({ length: 10 }, (_, i) => bucket(20 + i, 50, 0, 290 + r() * 20))];
    const f = firstBadSignal(bs, 'p95_ms');
    expect(f?.atUs).toBe(T0 + 20 * 1_000_000);
    expect(f?.baseline).toBeGreaterThan(95);
    expect(f?.baseline).toBeLessThan(105);
    expect(f?.bad).toBeGreaterThan(290);
  });

  it('needs a few buckets with latency', () => {
    expect(firstBadSignal([bucket(0, 1, 0, 100), bucket(1, 1, 0, 900), bucket(2, 0, 0, null)], 'p95_ms')).toBeNull();
  });
});

describe('back to baseline', () => {
  it('finds where the error rate came back', () => {
    const bs = [...Array.from({ length: 10 }, (_, i) => bucket(i, 100, 50)), ...Array.from({ length: 10 }, (_, i) => bucket(10 + i, 100, 1))];
    expect(backToBaseline(bs, 'error_rate', 0.01, 0.5)).toBe(T0 + 10 * 1_000_000);
  });

  it('an improvement that stays above halfway is not a recovery', () => {
    const bs = [...Array.from({ length: 10 }, (_, i) => bucket(i, 100, 50)), ...Array.from({ length: 10 }, (_, i) => bucket(10 + i, 100, 30))];
    expect(findShift(bs, 'error_rate', 'down')).not.toBeNull();
    expect(backToBaseline(bs, 'error_rate', 0.01, 0.5)).toBeNull();
  });

  it('still bad: no recovery', () => {
    expect(backToBaseline(Array.from({ length: 20 }, (_, i) => bucket(i, 100, 50)), 'error_rate', 0.01, 0.5)).toBeNull();
  });
});

describe('first bad request of a new version', () => {
  const before = Array.from({ length: 20 }, (_, i) => bucket(i, 100, 1, 40 + (i % 5)));
  it('errors: the first bucket of the version holding a failed request, when its rate is above the baseline', () => {
    const mine = [bucket(20, 10, 0, 42), bucket(21, 10, 0, 41), bucket(22, 10, 3, 43), bucket(23, 10, 4, 40)];
    expect(firstBadOfVersion(mine, before, 'error_rate')).toEqual({ atUs: T0 + 22 * 1_000_000, baseline: 0.01, bad: 7 / 20, slowerThanMs: null });
    // A version that errs no more than the service did: not evidence of anything.
    expect(firstBadOfVersion([bucket(20, 100, 0), bucket(21, 100, 1)], before, 'error_rate')).toBeNull();
  });
  it('latency: the first bucket slower than the slowest bucket before the deploy', () => {
    const mine = [bucket(20, 10, 0, 43), bucket(21, 10, 0, 90), bucket(22, 10, 0, 95)];
    const f = firstBadOfVersion(mine, before, 'p95_ms');
    expect(f?.atUs).toBe(T0 + 21 * 1_000_000);
    expect(f?.slowerThanMs).toBe(44);
    expect(f?.bad).toBeCloseTo(Math.sqrt(90 * 95), 6);
    expect(firstBadOfVersion([bucket(20, 10, 0, 43)], before, 'p95_ms')).toBeNull();
  });
});
