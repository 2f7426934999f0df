import { describe, expect, it } from 'vitest';
import { VerificationAnalysis } from './analysis.js';
import { metricChecksSchema, pointSample, type MetricCheck } from './metric-checks.js';
import { coarseKeyOfMs, emptyChunk, type ArmChunk } from './traffic.js';

function rng(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
}

/** Healthy paired request traffic (so the traffic signals pass) plus one gauge-like metric. */
function run(seed: number, check: Partial<MetricCheck>, candMean: number, opts: { candPoints?: number; basePoints?: number; maxS?: number } = {}) {
  const rand = rng(seed);
  const chunk = (): ArmChunk => {
    const c = emptyChunk();
    for (let i = 0; i < 20; i++) {
      c.count++;
      if (rand() < 0.01) c.errors++;
      const k = coarseKeyOfMs(50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())));
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
    }
    return c;
  };
  const reference = new Map<number, number>();
  for (let i = 0; i < 30; i++) for (const [k, c] of chunk().bins) reference.set(k, (reference.get(k) ?? 0) + c);
  const full = metricChecksSchema.parse([{ metric: 'queue.depth', agg: 'avg', ...check }]);
  const a = new VerificationAnalysis({ maxDurationS: opts.maxS ?? 600 }, reference, full);
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  for (let t = 1; ; t++) {
    a.observe(chunk(), chunk());
    // One point per second per arm (e.g. two instances exporting every 2 s), ±20 % noise.
    for (let i = 0; i < (opts.basePoints ?? 1); i++) a.observeMetric(0, false, 100 * (1 + 0.2 * gauss()));
    for (let i = 0; i < (opts.candPoints ?? 1); i++) a.observeMetric(0, true, candMean * (1 + 0.2 * gauss()));
    const v = a.decide(t);
    if (v.outcome !== 'pending') return { ...v, atS: t, metric: v.evidence.find((e) => e.signal === 'metric:queue.depth')! };
  }
}

describe('metric checks in VerificationAnalysis', () => {
  it('fails a clearly worse metric early, with the evidence', () => {
    const r = run(1, { tolerance: 0.1 }, 200);
    expect(r.outcome).toBe('fail');
    expect(r.reason).toContain('metric queue.depth worse');
    expect(r.metric.outcome).toBe('fail');
    expect(r.metric.candidate.median).toBeGreaterThan(150);
    expect(r.metric.baseline.median).toBeLessThan(120);
    expect(r.metric.stats.probCandidateWorse).toBeGreaterThan(0.8);
    expect(r.atS).toBeLessThanOrEqual(25);
  });

  it('lower-is-worse fails a drop and ignores a rise', () => {
    expect(run(2, { worse: 'lower', tolerance: 0.1 }, 50).metric.outcome).toBe('fail');
    const up = run(3, { worse: 'lower', tolerance: 0.1 }, 200);
    expect(up.outcome).toBe('pass');
    expect(up.metric.outcome).toBe('pass');
  });

  it('passes an unchanged metric and almost never fails it', () => {
    const runs = Array.from({ length: 60 }, (_, i) => run(100 + i, { tolerance: 0.1 }, 100));
    expect(runs.filter((r) => r.metric.outcome === 'fail').length).toBeLessThanOrEqual(1);
    expect(runs.filter((r) => r.outcome === 'pass').length).toBeGreaterThanOrEqual(55);
  });

  it('a change within tolerance is not a failure', () => {
    const runs = Array.from({ length: 20 }, (_, i) => run(300 + i, { tolerance: 0.3 }, 110));
    expect(runs.every((r) => r.metric.outcome !== 'fail')).toBe(true);
  });

  it('too few points: inconclusive for the signal, never fail; no candidate points do not block the pass', () => {
    const sparse = run(4, { minSamples: 1000 }, 300, { maxS: 120 });
    expect(sparse.outcome).toBe('inconclusive');
    expect(sparse.metric.outcome).toBe('inconclusive');
    expect(sparse.reason).toContain('metric:queue.depth not enough data');
    const silent = run(5, {}, 300, { candPoints: 0 });
    expect(silent.outcome).toBe('pass');
    expect(silent.metric.outcome).toBe('inconclusive');
  });

  it('pointSample: per-point aggregations, histogram quantiles and counter rates', () => {
    const gauge = { value: 7, increase: NaN, obsCount: 0, obsSum: 0, obsMin: NaN, obsMax: NaN };
    expect(pointSample('avg', gauge, 0)).toBe(7);
    expect(pointSample('p95', gauge, 0)).toBeNaN();
    const hist = { value: NaN, increase: 10, obsCount: 10, obsSum: 500, obsMin: 5, obsMax: 300, bounds: [10, 100, 1000, Infinity], counts: [2, 7, 1, 0] };
    expect(pointSample('avg', hist, 2)).toBe(50);
    expect(pointSample('max', hist, 2)).toBe(300);
    expect(pointSample('p50', hist, 2)).toBeGreaterThan(10);
    expect(pointSample('p50', hist, 2)).toBeLessThan(100);
    expect(pointSample('rate', { ...gauge, value: 40, increase: 20 }, 4)).toBe(5);
    expect(pointSample('rate', { ...gauge, increase: NaN }, 4)).toBeNaN();
  });

  it('schema: clear errors for bad aggregations, tolerances and duplicate names', () => {
    expect(() => metricChecksSchema.parse([{ metric: 'm', agg: 'median' }])).toThrow(/avg, min, max, rate or pNN/);
    expect(() => metricChecksSchema.parse([{ metric: 'm', agg: 'avg', worse: 'lower', tolerance: 1 }])).toThrow(/tolerance must be below 1/);
    expect(() => metricChecksSchema.parse([{ metric: 'm', agg: 'avg' }, { metric: 'm', agg: 'p95' }])).toThrow(/unique/);
    expect(metricChecksSchema.parse([{ metric: 'm', agg: 'p99.9' }])[0]).toMatchObject({ worse: 'higher', tolerance: 0.1, minSamples: 20 });
  });
});
