import { describe, expect, it } from 'vitest';
import { VerificationAnalysis, type VerifyConfig } from './analysis.js';
import { coarseKeyOfMs, emptyChunk, PreDeployReplay, type ArmChunk } from './traffic.js';

/** Seeded traffic: `rps` requests per virtual second, log-normal latency, Bernoulli errors. */
function traffic(seed: number) {
  let s = seed;
  const rand = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  return (rps: number, errorRate: number, latencyScale = 1): ArmChunk => {
    const c = emptyChunk();
    const n = rps >= 1 ? rps : rand() < rps ? 1 : 0;
    for (let i = 0; i < n; i++) {
      c.count++;
      if (rand() < errorRate) c.errors++;
      const ms = 50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())) * latencyScale;
      const k = coarseKeyOfMs(ms);
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
    }
    return c;
  };
}

function simulate(seed: number, cand: { rps: number; errorRate: number; latencyScale?: number }, base = { rps: 20, errorRate: 0.01 }, config: Partial<VerifyConfig> = {}) {
  const next = traffic(seed);
  const reference = new Map<number, number>();
  for (let i = 0; i < 30; i++) for (const [k, c] of next(20, 0.01).bins) reference.set(k, (reference.get(k) ?? 0) + c);
  const a = new VerificationAnalysis(config, reference);
  for (let t = 1; ; t++) {
    a.observe(next(base.rps, base.errorRate), next(cand.rps, cand.errorRate, cand.latencyScale));
    const v = a.decide(t);
    if (v.outcome !== 'pending') return { ...v, atS: t };
  }
}

describe('VerificationAnalysis', () => {
  it('passes identical versions and almost never fails them', () => {
    const runs = Array.from({ length: 100 }, (_, i) => simulate(1000 + i, { rps: 20, errorRate: 0.01 }));
    expect(runs.filter((r) => r.outcome === 'fail').length).toBeLessThanOrEqual(2);
    expect(runs.filter((r) => r.outcome === 'pass').length).toBeGreaterThanOrEqual(95);
  });

  it('fails errors 1 % → 20 % within 15 s of traffic at 20 rps', () => {
    for (let i = 0; i < 20; i++) {
      const r = simulate(2000 + i, { rps: 20, errorRate: 0.2 });
      expect(r.outcome).toBe('fail');
      expect(r.atS).toBeLessThanOrEqual(15);
      expect(r.evidence.find((e) => e.signal === 'error_rate')!.outcome).toBe('fail');
    }
  });

  it('fails a latency ×1.5 on the latency signal with error rate unchanged', () => {
    const r = simulate(3000, { rps: 20, errorRate: 0.01, latencyScale: 1.5 });
    expect(r.outcome).toBe('fail');
    const lat = r.evidence.find((e) => e.signal === 'latency')!;
    expect(lat.outcome).toBe('fail');
    expect(lat.stats.probCandidateSlower).toBeGreaterThan(0.6);
  });

  it('is inconclusive, never failed, when traffic stays under the minimum', () => {
    const r = simulate(4000, { rps: 0.1, errorRate: 0.5 }, { rps: 0.1, errorRate: 0.01 }, { maxDurationS: 600 });
    expect(r.outcome).toBe('inconclusive');
    expect(r.atS).toBe(600);
    expect(r.reason).toMatch(/not enough traffic/);
  });

  it('is inconclusive at the max duration when the evidence does not settle', () => {
    // A 1.6× error odds ratio sits between "not worse" (< 2) and clearly bad: 60 s is too short.
    const r = simulate(5000, { rps: 20, errorRate: 0.016 }, { rps: 20, errorRate: 0.01 }, { maxDurationS: 60 });
    expect(r.outcome).toBe('inconclusive');
    expect(r.reason).toMatch(/error rate/);
  });

  it('fails on a new error group unless that signal is off', () => {
    for (const failAt of [1, 0]) {
      const a = new VerificationAnalysis({ newErrorGroupsFailAt: failAt, newErrorGroupMinShare: 0 });
      a.newErrorGroup('g1', 'TypeError: x is undefined');
      const v = a.decide(1);
      expect(v.outcome).toBe(failAt === 1 ? 'fail' : 'pending');
      if (failAt === 1) expect(v.reason).toMatch(/new error group rule/);
    }
  });

  it('fixes the latency threshold from the first baseline requests when there is no reference', () => {
    const next = traffic(6000);
    const a = new VerificationAnalysis({ minReferenceSamples: 200 });
    for (let t = 1; t <= 9; t++) a.observe(next(20, 0.01), next(20, 0.01));
    expect(a.peek().evidence.find((e) => e.signal === 'latency')!.stats.tailThresholdMs).toBe(-1);
    a.observe(next(20, 0.01), next(20, 0.01));
    const lat = a.peek().evidence.find((e) => e.signal === 'latency')!;
    expect(lat.stats.tailThresholdMs).toBeGreaterThan(50);
    expect(lat.baseline.slowRate).toBe(0); // burn-in requests stay out of the tail test
  });

  /** A full rollout against a `windowS`-second pre-deploy window at `rps`, fed as the Verifier does. */
  function fullRollout(seed: number, windowS: number, rps: number, cand: { errorRate: number; latencyScale?: number }, maxDurationS = 120) {
    const next = traffic(seed);
    const window = Array.from({ length: windowS }, () => next(rps, 0.01));
    const reference = new Map<number, number>();
    for (const c of window) for (const [k, n] of c.bins) reference.set(k, (reference.get(k) ?? 0) + n);
    const replay = new PreDeployReplay(window);
    const a = new VerificationAnalysis({ maxDurationS }, reference);
    for (let t = 1; ; t++) {
      const c = next(rps, cand.errorRate, cand.latencyScale);
      const base = emptyChunk();
      if (replay.exhausted) a.baselineFixed();
      replay.fill(base, c.count);
      a.observe(base, c);
      const v = a.decide(t);
      if (v.outcome !== 'pending') return { ...v, atS: t, replayed: replay.served, window: replay.requests };
    }
  }

  it('replays each pre-deploy second once, then passes a healthy version against the whole window', () => {
    const runs = Array.from({ length: 20 }, (_, i) => fullRollout(7000 + i, 14, 200, { errorRate: 0.01 }));
    for (const r of runs) expect(r.replayed).toBeLessThanOrEqual(r.window);
    const passes = runs.filter((r) => r.outcome === 'pass');
    expect(passes.length).toBeGreaterThanOrEqual(18);
    // The chunk tests alone stop gathering evidence at 14 s; the window checkpoints (28 s, 56 s…) decide.
    expect(passes.some((r) => r.atS > 14)).toBe(true);
    expect(runs.filter((r) => r.outcome === 'fail').length).toBe(0);
  });

  it('fails a regression that shows only against the whole window', () => {
    // errors 1 % → 2.5 %: too small for the first 14 s of paired chunks, clear against 4× the window.
    const r = fullRollout(7100, 14, 200, { errorRate: 0.025 });
    expect(r.outcome).toBe('fail');
    expect(r.atS).toBeGreaterThan(14);
    expect(r.reason).toMatch(/against the whole pre-deploy window/);
    expect(r.evidence.find((e) => e.signal === 'error_rate')!.stats.windowZ).toBeGreaterThan(2.5);
  });

  it('stays inconclusive, never failing, when the pre-deploy window is too small to judge', () => {
    // 10 s at 20 rps: 200 baseline requests, about 2 errors; no amount of new traffic settles it.
    const runs = Array.from({ length: 10 }, (_, i) => fullRollout(7200 + i, 10, 20, { errorRate: 0.01 }, 600));
    expect(runs.filter((r) => r.outcome === 'fail')).toHaveLength(0);
    expect(runs.filter((r) => r.outcome === 'inconclusive').length).toBeGreaterThanOrEqual(8);
    for (const r of runs) expect(r.replayed).toBe(r.window);
  });

  it('does not fail a latency shift the tests can prove but nobody would notice (latencyMinEffect)', () => {
    // A tight service (20 ms ± 1 %, like a fixed delay) that got 4 % slower, e.g. on a busier host:
    // the rank test proves the shift at once, yet it is far below the 15 % floor.
    const run = (scale: number, config: Partial<VerifyConfig>) => {
      let seed = 7400;
      const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
      const chunk = (ms: number, errorRate: number): ArmChunk => {
        const c = emptyChunk();
        for (let i = 0; i < 200; i++) {
          c.count++;
          if (rand() < errorRate) c.errors++;
          const k = coarseKeyOfMs(ms * (1 + 0.01 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())));
          c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
        }
        return c;
      };
      const reference = chunk(20, 0.01).bins;
      const a = new VerificationAnalysis({ maxDurationS: 30, ...config }, reference);
      for (let t = 1; ; t++) {
        a.observe(chunk(20, 0.01), chunk(20 * scale, 0.01));
        const v = a.decide(t);
        if (v.outcome !== 'pending') return v;
      }
    };
    expect(run(1.04, {}).outcome).not.toBe('fail');
    const proven = run(1.04, { latencyMinEffect: 0 });
    expect(proven.outcome).toBe('fail');
    expect(proven.reason).toMatch(/latency/);
    expect(run(1.3, {}).outcome).toBe('fail');
  });
});
