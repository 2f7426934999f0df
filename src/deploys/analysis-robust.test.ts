import { describe, expect, it } from 'vitest';
import { VerificationAnalysis, type VerifyConfig } from './analysis.js';
import { ArmDispersion, pooledRho } from './rate-test.js';
import { coarseKeyOfMs, emptyChunk, type ArmChunk } from './traffic.js';

/**
 * Seeded traffic of one arm, one virtual second per call: `rps` requests, log-normal latency.
 * `burstShare` > 0: errors come in bursts (a second is a burst with this probability, at rate
 * errorRate / burstShare, else error-free); `slowShare` > 0: a second is ×1.5 slower.
 */
function arm(seed: number, rps: number, errorRate: number, burstShare = 0, slowShare = 0) {
  let s = seed;
  const rand = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  return (): ArmChunk => {
    const c = emptyChunk();
    const rate = burstShare > 0 ? (rand() < burstShare ? errorRate / burstShare : 0) : errorRate;
    const slow = slowShare > 0 && rand() < slowShare ? 1.5 : 1;
    for (let i = 0; i < rps; i++) {
      c.count++;
      if (rand() < rate) c.errors++;
      const ms = 50 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand())) * slow;
      const k = coarseKeyOfMs(ms);
      c.bins.set(k, (c.bins.get(k) ?? 0) + 1);
    }
    return c;
  };
}

/** A canary watched every second, the pass side off, until it fails or `maxS` passes. */
function watch(base: () => ArmChunk, cand: () => ArmChunk, maxS: number, config: Partial<VerifyConfig> = {}) {
  const reference = new Map<number, number>();
  for (let i = 0; i < 30; i++) for (const [k, c] of base().bins) reference.set(k, (reference.get(k) ?? 0) + c);
  const a = new VerificationAnalysis({ beta: 1e-300, maxDurationS: maxS, ...config }, reference);
  for (let t = 1; ; t++) {
    a.observe(base(), cand());
    const v = a.decide(t);
    if (v.outcome !== 'pending') return { ...v, atS: t };
  }
}

describe('overdispersion (errors in bursts)', () => {
  it('reads binomial chunks as ρ ≈ 0 and bursty ones as ρ > 0', () => {
    const flat = arm(11, 20, 0.02), bursty = arm(12, 20, 0.02, 0.1);
    const a = new ArmDispersion(), b = new ArmDispersion(), c = new ArmDispersion(), d = new ArmDispersion();
    for (let i = 0; i < 2000; i++) {
      const x = flat(), y = flat(), u = bursty(), v = bursty();
      a.add(x.errors, x.count); b.add(y.errors, y.count); c.add(u.errors, u.count); d.add(v.errors, v.count);
    }
    expect(pooledRho(a, b)).toBeLessThan(0.01);
    // 10 % of seconds at 20 %: Var = 20·0.02·0.98 + 400·0.1·0.9·0.2² → ρ ≈ 1.44 / (0.392 · 19) ≈ 0.19
    expect(pooledRho(c, d)).toBeGreaterThan(0.12);
    expect(pooledRho(c, d)).toBeLessThan(0.3);
  });

  it('does not fail identical bursty versions watched for 600 s, and still fails a real regression', () => {
    // Both versions: 1 % errors on average, all of them in 5 % of seconds (20 % errors then).
    // Counted as independent requests, a burst in one arm reads as strong evidence: the old test
    // failed 5 of these 20.
    const runs = Array.from({ length: 20 }, (_, i) => watch(arm(100 + i, 20, 0.01, 0.05), arm(200 + i, 20, 0.01, 0.05), 600));
    const errorFails = runs.filter((r) => r.evidence.find((e) => e.signal === 'error_rate')!.outcome === 'fail');
    expect(errorFails.map((r) => r.reason)).toEqual([]);
    for (const r of runs) expect(r.evidence.find((e) => e.signal === 'error_rate')!.stats.dispersionRho).toBeGreaterThan(0.05);
    // 1 % → 5 % with binomial traffic: the design effect stays ≈ 1, detection as fast as before.
    for (let i = 0; i < 10; i++) {
      const r = watch(arm(300 + i, 20, 0.01), arm(400 + i, 20, 0.05), 600);
      expect(r.outcome).toBe('fail');
      expect(r.reason).toMatch(/error rate up/);
      expect(r.atS).toBeLessThanOrEqual(90);
    }
    // …and with bursty traffic on both sides, a fivefold error rate still fails.
    for (let i = 0; i < 5; i++) {
      const r = watch(arm(500 + i, 20, 0.01, 0.05), arm(600 + i, 20, 0.05, 0.25), 600);
      expect(r.outcome).toBe('fail');
      expect(r.reason).toMatch(/error rate up/);
    }
  });

  it('does not fail identical versions with slow seconds on the latency tests', () => {
    const runs = Array.from({ length: 20 }, (_, i) => watch(arm(700 + i, 20, 0.01, 0, 0.1), arm(800 + i, 20, 0.01, 0, 0.1), 600));
    expect(runs.filter((r) => r.outcome === 'fail').map((r) => r.reason)).toEqual([]);
  });
});

describe('new error groups', () => {
  /** A healthy canary of `seconds` at 20 rps; `groupEvery`: the candidate logs the group once per that many requests. */
  function withGroup(groupEvery: number, seconds: number, config: Partial<VerifyConfig> = {}) {
    const base = arm(900, 20, 0.01), cand = arm(901, 20, 0.01);
    const a = new VerificationAnalysis({ maxDurationS: seconds, beta: 1e-300, ...config });
    let requests = 0, logged = 0;
    for (let t = 1; ; t++) {
      const c = cand();
      a.observe(base(), c);
      requests += c.count;
      while (logged < Math.ceil(requests / groupEvery)) {
        if (logged === 0) a.newErrorGroup('g1', "TypeError: cannot read properties of undefined (reading 'sku')");
        a.errorGroupEvents('g1', 1);
        logged++;
      }
      const v = a.decide(t);
      if (v.outcome !== 'pending') return { ...v, atS: t, logged };
    }
  }

  it('a rare new exception (1 in 5 000 requests) does not fail the deploy', () => {
    const v = withGroup(5000, 600);
    expect(v.logged).toBe(3); // at requests 1, 5 001 and 10 001 of 12 000
    expect(v.outcome).toBe('inconclusive'); // the pass side is off: nothing failed in 600 s
    const g = v.evidence.find((e) => e.signal === 'new_error_groups')!;
    expect(g).toMatchObject({ outcome: 'pass', candidate: { newGroups: 1, frequentNewGroups: 0 } });
    // With the pass side on, the verdict passes and says the group was weighed by its share.
    const pass = withGroup(5000, 600, { beta: 0.05 });
    expect(pass.outcome).toBe('pass');
    expect(pass.reason).toMatch(/new error group\(s\) below the new-group share rule/);
  });

  it('a new group on 2 % of requests fails within seconds, and the verdict names the rule', () => {
    const v = withGroup(50, 600);
    expect(v.outcome).toBe('fail');
    expect(v.atS).toBeLessThanOrEqual(20);
    expect(v.reason).toMatch(/^new error group rule: "TypeError: cannot read properties of undefined \(reading 'sku'\)" new in this version: \d+ event\(s\) in \d+ requests/);
    expect(v.reason).not.toMatch(/error rate up/);
    expect(v.evidence.find((e) => e.signal === 'new_error_groups')).toMatchObject({ outcome: 'fail', candidate: { frequentNewGroups: 1 } });
  });

  it('newErrorGroupMinShare 0 keeps the old rule: any new group fails at once', () => {
    const a = new VerificationAnalysis({ newErrorGroupMinShare: 0 });
    a.newErrorGroup('g1', 'TypeError: x is undefined');
    const v = a.decide(1);
    expect(v.outcome).toBe('fail');
    expect(v.reason).toMatch(/new error group rule: "TypeError: x is undefined" new in this version \(new-group share rule off/);
  });
});
