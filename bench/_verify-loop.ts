/**
 * Scenarios of `npm run bench -- verify` that need the streaming side: the server's Verifier
 * (src/deploys/verifier.ts) fed rollup deltas as the telemetry store commits them, in virtual
 * time (a clock the bench advances one second per step, a tick per second).
 *
 * - bad rollback target: 1.0.0 healthy alone, 2.0.0 (20 % errors) takes over for longer than the
 *   rings keep, the rollback restores 1.0.0 which is now bad too (20 % errors) while 2.0.0 still
 *   takes a share: it must not pass.
 * - multi-step: healthy rollouts 50 % → hold → 100 %, the pass side off so each of the three
 *   verifications runs its whole duration: the false-fail rate of one deploy over all its steps.
 */
import { LatencySketch, type RollupSecond } from '../src/telemetry/index.js';
import type { AnalysisVerdict } from '../src/deploys/analysis.js';
import type { Deploy } from '../src/deploys/contract.js';
import { Verifier } from '../src/deploys/verifier.js';

export interface LoopRun { outcome: string; reason: string | null; atS: number }

function deployOf(id: string, version: string, previousVersion: string, rollbackOf: string | null, startedMs: number): Deploy {
  return {
    id, service: 'shop', version, environment: 'prod', previousVersion, status: 'verifying', source: rollbackOf === null ? 'api' : 'rollback',
    commit: null, commitTime: null, url: null, actor: null, rollbackOf, startedAt: new Date(startedMs).toISOString(), finishedAt: null, decidedAt: null, verificationId: null,
  };
}

class Sim {
  nowMs = 1_800_000_000_000;
  readonly verdicts: Array<{ id: string; verdict: AnalysisVerdict }> = [];
  readonly v: Verifier;
  constructor(private readonly rand: () => number, private readonly gauss: () => number, verify: Record<string, number>, preDeployWindowS: number) {
    this.v = new Verifier({
      verify, preDeployWindowS, nowMs: () => this.nowMs,
      onVerdict: (run, verdict) => this.verdicts.push({ id: run.deploy.id, verdict }), onNewSeries: () => undefined,
    });
  }
  private row(version: string, n: number, errorRate: number): RollupSecond {
    const sketch = new LatencySketch();
    let errors = 0;
    for (let i = 0; i < n; i++) {
      sketch.add(50e6 * Math.exp(0.5 * this.gauss()));
      if (this.rand() < errorRate) errors++;
    }
    return { service: 'shop', operation: 'GET /', version, environment: 'prod', second: Math.floor(this.nowMs / 1000) * 1e6, count: n, errors, sketch };
  }
  second(...serving: Array<[string, number, number]>): void {
    this.v.onDeltas(serving.map(([ver, n, e]) => this.row(ver, n, e)));
    this.nowMs += 1000;
    this.v.tick();
  }
}

/** A rollback to a version that is bad too; its pre-deploy history (healthy) is the only fair baseline. */
export function badRollback(rand: () => number, gauss: () => number, rps: number): LoopRun {
  const sim = new Sim(rand, gauss, { maxDurationS: 120 }, 120);
  for (let s = 0; s < 120; s++) sim.second(['1.0.0', rps, 0.01]);
  const badStart = sim.nowMs;
  sim.v.start('v-bad', deployOf('d-bad', '2.0.0', '1.0.0', null, badStart), 120);
  for (let s = 0; s < 150; s++) sim.second(['2.0.0', rps, 0.2]);
  sim.v.start('v-rb', deployOf('d-rb', '1.0.0', '2.0.0', 'd-bad', sim.nowMs), 120, { deployId: 'd-bad', version: '2.0.0', startedMs: badStart });
  for (let s = 1; s <= 125; s++) {
    sim.second(['1.0.0', Math.round(rps * 0.8), 0.2], ['2.0.0', Math.round(rps * 0.2), 0.2]);
    const d = sim.verdicts.find((x) => x.id === 'd-rb');
    if (d !== undefined) return { outcome: d.verdict.outcome, reason: d.verdict.reason, atS: s };
  }
  return { outcome: 'none', reason: null, atS: 125 };
}

/**
 * A healthy deploy verified three times (50 %, a hold at 50 %, 100 %), each for its whole
 * duration (pass side off): fails anywhere over the deploy.
 */
export function multiStep(rand: () => number, gauss: () => number, rps: number, stepS: number): LoopRun {
  const sim = new Sim(rand, gauss, { maxDurationS: stepS, beta: 1e-300 }, 600);
  for (let s = 0; s < 300; s++) sim.second(['1.0.0', rps, 0.01]);
  const d = deployOf('d-new', '1.1.0', '1.0.0', null, sim.nowMs);
  const steps: Array<Array<[string, number, number]>> = [
    [['1.0.0', rps / 2, 0.01], ['1.1.0', rps / 2, 0.01]],
    [['1.0.0', rps / 2, 0.01], ['1.1.0', rps / 2, 0.01]],
    [['1.1.0', rps, 0.01]],
  ];
  let t = 0;
  for (const [k, serving] of steps.entries()) {
    sim.v.start(`v-${k}`, d, stepS);
    const before = sim.verdicts.length;
    for (let s = 0; s <= stepS + 1 && sim.verdicts.length === before; s++, t++) sim.second(...serving);
    const v = sim.verdicts.at(-1)?.verdict;
    if (v?.outcome === 'fail') return { outcome: 'fail', reason: v.reason, atS: t };
  }
  return { outcome: 'no fail', reason: null, atS: t };
}
