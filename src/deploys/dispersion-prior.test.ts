import { describe, expect, it } from 'vitest';
import { LatencySketch, type RollupSecond } from '../telemetry/index.js';
import { VerificationAnalysis } from './analysis.js';
import type { Deploy } from './contract.js';
import { RateTest } from './rate-test.js';
import { coarseKeyOfMs, emptyChunk, PreDeployReplay, type ArmChunk } from './traffic.js';
import { Verifier } from './verifier.js';

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

describe('a short pre-deploy window that happened to be calm (full rollout, bursty traffic)', () => {
  /** One 20-request second: errors at `rate`, or in bursts (10 % of seconds at 10 × `rate`). */
  function second(rand: () => number, rate: number, bursty: boolean): ArmChunk {
    const c = emptyChunk();
    c.count = 20;
    const r = bursty ? (rand() < 0.1 ? rate * 10 : 0) : rate;
    for (let i = 0; i < 20; i++) if (rand() < r) c.errors++;
    for (let i = 0; i < 20; i++) {
      const k = coarseKeyOfMs(50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())));
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
    }
    return c;
  }

  /**
   * A full rollout as the server runs it: 60 s of bursty 1 % traffic before the deploy (seed 40:
   * it held 2 errors, 0.17 %), replayed whole seconds at a time, then the whole-window checkpoints.
   */
  function rollout(candRate: number, candBursty: boolean, historyRhoConfidence?: number): { outcome: string; atS: number; reason: string | null; rho: number } {
    const rand = seeded(40);
    const window = Array.from({ length: 60 }, () => second(rand, 0.01, true));
    expect(window.reduce((n, c) => n + c.errors, 0)).toBe(2);
    const reference = new Map<number, number>();
    for (const c of window) for (const [k, n] of c.bins) reference.set(k, (reference.get(k) ?? 0) + n);
    const replay = new PreDeployReplay(window);
    const a = new VerificationAnalysis(historyRhoConfidence === undefined ? {} : { historyRhoConfidence }, reference, [], window);
    const cand = seeded(1040);
    for (let t = 1; ; t++) {
      const base = emptyChunk(), c = second(cand, candRate, candBursty);
      if (replay.exhausted) a.baselineFixed();
      replay.fill(base, c.count);
      a.observe(base, c, true);
      const v = a.decide(t);
      const rho = Number(v.evidence.find((e) => e.signal === 'error_rate')!.stats.dispersionRho);
      if (v.outcome !== 'pending') return { outcome: v.outcome, atS: t, reason: v.reason, rho };
    }
  }

  it('a healthy bursty version is not failed: the window\'s 2 errors cannot vouch that errors do not cluster', () => {
    // The history's point estimate (ρ = 0 from 2 errors, weighted by 1 200 requests) failed it.
    const before = rollout(0.01, true, 0);
    expect(before.outcome).toBe('fail');
    expect(before.reason).toMatch(/^error rate up/);
    expect(before.rho).toBeLessThan(0.05); // the simulation's true ρ: 0.01 · 9 / 0.99 ≈ 0.091
    const now = rollout(0.01, true);
    expect(now.outcome).not.toBe('fail');
    expect(now.rho).toBeGreaterThan(0.05);
  });

  it('a bad version (1 % → 5 % errors, bursty or not) still fails against the same window', () => {
    for (const bursty of [false, true]) {
      const r = rollout(0.05, bursty);
      expect(r.outcome).toBe('fail');
      expect(r.reason).toMatch(/^error rate up/);
    }
  });
});

describe('the streaming verifier gives the window as the prior', () => {
  function deploy(id: string, version: string, rollbackOf: string | null, startedMs: number): Deploy {
    return {
      id, service: 'shop', version, environment: 'prod', previousVersion: '1.0.0', status: 'verifying', source: rollbackOf === null ? 'api' : 'rollback',
      commit: null, commitTime: null, url: null, actor: null, rollbackOf, startedAt: new Date(startedMs).toISOString(), finishedAt: null, decidedAt: null, verificationId: null,
    };
  }

  it('to a canary (its baseline\'s seconds before the start), not to a rollback (its own history is its baseline arm, timing unchanged)', () => {
    let nowMs = 1_800_000_000_000;
    const rand = seeded(3);
    const v = new Verifier({ verify: { maxDurationS: 300 }, preDeployWindowS: 600, nowMs: () => nowMs, onVerdict: () => undefined, onNewSeries: () => undefined });
    const row = (version: string, errorRate: number): RollupSecond => {
      const sketch = new LatencySketch();
      let errors = 0;
      for (let i = 0; i < 20; i++) { sketch.add(40e6 * (1 + rand())); if (rand() < errorRate) errors++; }
      return { service: 'shop', operation: 'GET /', version, environment: 'prod', second: Math.floor(nowMs / 1000) * 1e6, count: 20, errors, sketch };
    };
    const second = (...serving: Array<[string, number]>): void => { v.onDeltas(serving.map(([ver, e]) => row(ver, e))); nowMs += 1000; v.tick(); };
    const priorOf = (r: { analysis: VerificationAnalysis }): unknown => r.analysis.peek().evidence.find((e) => e.signal === 'error_rate')!.stats.dispersionPriorRequests;
    for (let s = 0; s < 60; s++) second(['1.0.0', 0.01]);
    const badStart = nowMs;
    const canary = v.start('v-c', deploy('d-bad', '2.0.0', null, badStart), 300);
    expect(priorOf(canary)).toBe(60 * 20);
    for (let s = 0; s < 30; s++) second(['1.0.0', 0.01], ['2.0.0', 0.01]);
    const rb = v.start('v-rb', deploy('d-rb', '1.0.0', 'd-bad', nowMs), 300, { deployId: 'd-bad', version: '2.0.0', startedMs: badStart });
    expect(rb.immediate).toBeUndefined();
    expect(priorOf(rb)).toBe(0);
  });
});
