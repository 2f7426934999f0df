import { describe, expect, it } from 'vitest';
import { LatencySketch, type RollupSecond } from '../telemetry/index.js';
import type { AnalysisVerdict } from './analysis.js';
import type { Deploy } from './contract.js';
import { Verifier, type RunningVerification } from './verifier.js';

/**
 * The streaming verifier over rollup deltas as the telemetry store commits them (per service ×
 * operation × version × second, with a latency sketch): a rollback is compared with its
 * version's own behaviour before the bad deploy began, never with the version it replaces, and a
 * deploy verified again (rollout steps, holds) continues one test per signal.
 */

const T0 = 1_800_000_000_000;

function deploy(id: string, version: string, previousVersion: string | null, rollbackOf: string | null, startedMs: number): Deploy {
  return {
    id, service: 'shop', version, environment: 'prod', previousVersion, status: 'verifying', source: rollbackOf === null ? 'api' : 'rollback',
    commit: null, commitTime: null, url: null, actor: null, rollbackOf, startedAt: new Date(startedMs).toISOString(), finishedAt: null, decidedAt: null, verificationId: null,
  };
}

function harness(preDeployWindowS: number, verify: Record<string, number> = {}) {
  let nowMs = T0;
  let seed = 11;
  const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  const verdicts: Array<{ run: RunningVerification; verdict: AnalysisVerdict }> = [];
  const v = new Verifier({
    verify: { maxDurationS: 300, ...verify }, preDeployWindowS, nowMs: () => nowMs,
    onVerdict: (run, verdict) => verdicts.push({ run, verdict }), onNewSeries: () => undefined,
  });
  const rows = (version: string, n: number, errorRate: number): RollupSecond => {
    const sketch = new LatencySketch();
    let errors = 0;
    for (let i = 0; i < n; i++) {
      const g = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
      sketch.add(40e6 * Math.exp(0.4 * g));
      if (rand() < errorRate) errors++;
    }
    return { service: 'shop', operation: 'GET /items', version, environment: 'prod', second: Math.floor(nowMs / 1000) * 1e6, count: n, errors, sketch };
  };
  /** One second of traffic: [version, requests, error rate] per serving version; then a tick. */
  const second = (...serving: Array<[string, number, number]>): void => {
    v.onDeltas(serving.map(([ver, n, e]) => rows(ver, n, e)));
    nowMs += 1000;
    v.tick();
  };
  return { v, verdicts, second, now: () => nowMs };
}

describe('rollback verification: against the restored version\'s own history', () => {
  it('a rollback whose target is bad too fails, though it is no worse than the bad version still serving beside it', () => {
    const h = harness(120);
    for (let s = 0; s < 120; s++) h.second(['1.0.0', 100, 0.01]);
    const badStart = h.now();
    const bad = deploy('d-bad', '2.0.0', '1.0.0', null, badStart);
    h.v.start('v-bad', bad, 300);
    // 2.0.0 takes all traffic for 200 s (longer than the 120 s the rings keep) at 30 % errors.
    for (let s = 0; s < 200; s++) h.second(['2.0.0', 100, 0.3]);
    expect(h.verdicts.map((x) => x.verdict.outcome)).toEqual(['fail']);
    // The rollback restores 1.0.0, but it is broken now as well (say, by 2.0.0's migration);
    // 2.0.0 still takes a share while the switch completes.
    const rb = deploy('d-rb', '1.0.0', '2.0.0', 'd-bad', h.now());
    const run = h.v.start('v-rb', rb, 300, { deployId: 'd-bad', version: '2.0.0', startedMs: badStart });
    for (let s = 0; s < 300 && h.verdicts.length < 2; s++) h.second(['1.0.0', 80, 0.3], ['2.0.0', 20, 0.3]);
    expect(h.verdicts).toHaveLength(2);
    const { verdict } = h.verdicts[1];
    expect(verdict.outcome).toBe('fail');
    expect(verdict.reason).toMatch(/error rate up/);
    // Its baseline was 1.0.0 alone before 2.0.0 began: no concurrent request of 2.0.0 was used.
    expect(run.concurrentN).toBe(0);
    expect(run.baselineVersion).toBe('1.0.0');
    expect(run.baselineNote).toMatch(/^own history: 1\.0\.0 serving alone before 2\.0\.0 began \(120 s/);
    const e = verdict.evidence.find((x) => x.signal === 'error_rate')!;
    expect(e.baseline.rate).toBeLessThan(0.02);
  });

  it('a healthy rollback passes against its own history', () => {
    const h = harness(300);
    for (let s = 0; s < 300; s++) h.second(['1.0.0', 100, 0.01]);
    const badStart = h.now();
    h.v.start('v-bad', deploy('d-bad', '2.0.0', '1.0.0', null, badStart), 300);
    for (let s = 0; s < 30; s++) h.second(['2.0.0', 100, 0.3]);
    const rb = deploy('d-rb', '1.0.0', '2.0.0', 'd-bad', h.now());
    h.v.start('v-rb', rb, 300, { deployId: 'd-bad', version: '2.0.0', startedMs: badStart });
    for (let s = 0; s < 300 && h.verdicts.length < 2; s++) h.second(['1.0.0', 100, 0.01]);
    expect(h.verdicts.map((x) => x.verdict.outcome)).toEqual(['fail', 'pass']);
  });

  it('without history of the restored version serving alone the rollback is inconclusive, and says why', () => {
    const h = harness(120);
    // 1.0.0 only ever served beside 2.0.0.
    const badStart = h.now();
    h.v.start('v-bad', deploy('d-bad', '2.0.0', '1.0.0', null, badStart), 300);
    for (let s = 0; s < 60; s++) h.second(['1.0.0', 50, 0.01], ['2.0.0', 50, 0.3]);
    const rb = deploy('d-rb', '1.0.0', '2.0.0', 'd-bad', h.now());
    h.v.start('v-rb', rb, 300, { deployId: 'd-bad', version: '2.0.0', startedMs: badStart });
    h.second(['1.0.0', 100, 0.01]);
    const last = h.verdicts.at(-1)!;
    expect(last.run.deploy.id).toBe('d-rb');
    expect(last.verdict.outcome).toBe('inconclusive');
    expect(last.verdict.reason).toMatch(/^no history: shop 1\.0\.0 never served alone in prod within 120 s before 2\.0\.0 began/);
  });
});

describe('one test per signal across the whole deploy', () => {
  it('a two-step rollout (50 % → 100 %) continues the same tests: α is spent once', () => {
    const h = harness(300);
    for (let s = 0; s < 300; s++) h.second(['1.0.0', 100, 0.01]);
    const d = deploy('d-2', '1.1.0', '1.0.0', null, h.now());
    const step1 = h.v.start('v-1', d, 300);
    for (let s = 0; s < 300 && h.verdicts.length < 1; s++) h.second(['1.0.0', 50, 0.01], ['1.1.0', 50, 0.01]);
    expect(h.verdicts.map((x) => x.verdict.outcome)).toEqual(['pass']);
    const after1 = h.verdicts[0].verdict.evidence.find((x) => x.signal === 'error_rate')!;
    // Step 2: 100 %. The analysis goes on: the candidate's requests and the fail-side statistic
    // carry over, and the pass side must be shown again with this step's traffic.
    const step2 = h.v.start('v-2', d, 300);
    expect(step2.analysis).toBe(step1.analysis);
    expect(step2.steps).toBe(2);
    const live = step2.analysis.peek().evidence.find((x) => x.signal === 'error_rate')!;
    expect(live.outcome).toBe('pending');
    expect(live.candidate.requests).toBe(after1.candidate.requests);
    expect(live.stats.failLogLr).toBe(after1.stats.failLogLr);
    expect(live.stats.passLogLr).toBe(0);
    for (let s = 0; s < 300 && h.verdicts.length < 2; s++) h.second(['1.1.0', 100, 0.01]);
    expect(h.verdicts).toHaveLength(2);
    expect(h.verdicts[1].verdict.outcome).not.toBe('fail');
    const e2 = h.verdicts[1].verdict.evidence.find((x) => x.signal === 'error_rate')!;
    expect(e2.candidate.requests).toBeGreaterThan(after1.candidate.requests);
  });
});
