/**
 * Configured metric checks: "this OTLP metric, aggregated per point, must not get worse than the
 * baseline by more than a relative tolerance". Configured per service (`metricChecks:` in
 * services.yaml). This file holds the schema, the per-point sample (what one metric point says
 * about the checked aggregation) and `MetricCheckTest`, the pure sequential test — a Mann-Whitney
 * rank test at checkpoints with alpha spending, the method verification already uses for latency
 * ranks. README.md ("Configured metric checks") explains it.
 */
import { z } from 'zod';
import { histogramQuantile, type PointDelta } from '../detect/index.js';
import type { SignalEvidence } from './contract.js';
import { mannWhitney, normalUpperQuantile } from './stats.js';

const AGG = /^(avg|min|max|rate|p(\d{1,2}(\.\d+)?))$/;

export const metricCheckSchema = z.strictObject({
  /** The signal is `metric:<name>`; default: the metric name. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/).optional(),
  /** OTLP metric name. */
  metric: z.string().min(1).max(255),
  /**
   * What one point says: `avg` (gauge/sum value, histogram sum/count of the point's new
   * observations), `min` / `max`, `pNN` (histogram quantile of the point's new observations),
   * `rate` (counter increase per second since the stream's previous point).
   */
  agg: z.string().regex(AGG, 'expected avg, min, max, rate or pNN (e.g. p95)'),
  /** Which way is worse. */
  worse: z.enum(['higher', 'lower']).default('higher'),
  /** Relative tolerance: `higher` fails when values are shown above baseline × (1 + tolerance), `lower` below baseline × (1 − tolerance). */
  tolerance: z.number().min(0).max(100).default(0.1),
  /** Only points whose attributes (point, else resource) have these values. */
  attributes: z.record(z.string().min(1), z.string()).default({}),
  /** Points needed in each arm before the first test. */
  minSamples: z.number().int().min(5).max(1_000_000).default(20),
}).refine((c) => c.worse === 'higher' || c.tolerance < 1, { message: "with worse: lower, tolerance must be below 1", path: ['tolerance'] });

export type MetricCheck = z.infer<typeof metricCheckSchema>;

/** Schema of a service's list (names unique: each is one signal). */
export const metricChecksSchema = z.array(metricCheckSchema).max(50).default([]).refine(
  (list) => new Set(list.map(checkName)).size === list.length,
  { message: 'metric check names must be unique (name defaults to the metric)' },
);

export function checkName(c: Pick<MetricCheck, 'name' | 'metric'>): string {
  return c.name ?? c.metric;
}

/**
 * The sample one point gives a check, or NaN when it says nothing (a gauge asked for a
 * quantile, a cumulative stream's first point, a histogram point with no new observations).
 * `intervalS`: seconds the point's increase covers (for `rate`).
 */
export function pointSample(agg: string, p: PointDelta, intervalS: number): number {
  switch (agg) {
    case 'avg': return !Number.isNaN(p.value) ? p.value : p.obsCount > 0 ? p.obsSum / p.obsCount : NaN;
    case 'min': return !Number.isNaN(p.value) ? p.value : p.obsCount > 0 && Number.isFinite(p.obsMin) ? p.obsMin : NaN;
    case 'max': return !Number.isNaN(p.value) ? p.value : p.obsCount > 0 && Number.isFinite(p.obsMax) ? p.obsMax : NaN;
    case 'rate': return !Number.isNaN(p.increase) && intervalS > 0 ? p.increase / intervalS : NaN;
    default: {
      if (!p.bounds || !p.counts) return NaN;
      const m = new Map<number, number>();
      for (let k = 0; k < p.bounds.length; k++) m.set(p.bounds[k], (m.get(p.bounds[k]) ?? 0) + (p.counts[k] ?? 0));
      return histogramQuantile(m, Number(agg.slice(1)) / 100) ?? NaN;
    }
  }
}

export interface MetricTestSettings {
  alpha: number;
  beta: number;
  /** Checkpoints at minSamples · 2^j (j < this); alpha and beta are split evenly over them. */
  checkpoints: number;
}

/**
 * One metric check of one verification. Baseline samples come from concurrent points of other
 * versions, or — until those reach the minimum — from the pre-deploy window as well. At each
 * checkpoint the candidate's values, scaled by the tolerance, are rank-compared with the
 * baseline's: fail when P(scaled candidate worse than baseline) is shown above ½ at α/K, pass
 * when it is shown below ½ at β/K.
 */
export class MetricCheckTest {
  readonly name: string;
  private readonly pre: number[] = [];
  private readonly base: number[] = [];
  private readonly cand: number[] = [];
  private checkpoint = 0;
  failed = false;
  passed = false;
  private last = { auc: 0.5, z: 0, n0: 0, n1: 0, zCritFail: 0, zCritPass: 0, usedPre: 0 };

  constructor(readonly check: MetricCheck, private readonly s: MetricTestSettings) {
    this.name = checkName(check);
  }

  /** A baseline point's sample: `concurrent` (another version serving now) or pre-deploy. */
  addBaseline(v: number, concurrent: boolean): void {
    if (!Number.isFinite(v) || this.decided) return;
    (concurrent ? this.base : this.pre).push(v);
  }

  addCandidate(v: number): void {
    if (Number.isFinite(v) && !this.decided) this.cand.push(v);
  }

  get decided(): boolean { return this.failed || this.passed; }

  /** Both arms have data: the check can decide, and a pass waits for it. */
  get live(): boolean { return this.cand.length > 0 && this.base.length + this.pre.length > 0; }

  private baseline(): { values: number[]; usedPre: number } {
    const min = this.check.minSamples;
    return this.base.length >= min ? { values: this.base, usedPre: 0 } : { values: [...this.pre, ...this.base], usedPre: this.pre.length };
  }

  /** Runs the test when min(n0, n1) crosses the next checkpoint. */
  evaluate(): void {
    if (this.decided || this.checkpoint >= this.s.checkpoints) return;
    const min = this.check.minSamples;
    const nb = this.base.length >= min ? this.base.length : this.base.length + this.pre.length;
    const n = Math.min(nb, this.cand.length);
    if (n < min * 2 ** this.checkpoint) return;
    const { values: baseVals, usedPre } = this.baseline();
    while (this.checkpoint < this.s.checkpoints && n >= min * 2 ** this.checkpoint) this.checkpoint++;
    // Scale the candidate by the tolerance and orient so that "higher" means worse.
    const tol = this.check.tolerance;
    const sign = this.check.worse === 'higher' ? 1 : -1;
    const scale = this.check.worse === 'higher' ? 1 / (1 + tol) : 1 / (1 - tol);
    const b = new Map<number, number>(), c = new Map<number, number>();
    for (const v of baseVals) b.set(sign * v, (b.get(sign * v) ?? 0) + 1);
    for (const v of this.cand) { const x = sign * v * scale; c.set(x, (c.get(x) ?? 0) + 1); }
    const mw = mannWhitney(b, c);
    const zFail = normalUpperQuantile(this.s.alpha / this.s.checkpoints);
    const zPass = normalUpperQuantile(this.s.beta / this.s.checkpoints);
    const z = mw.sdAuc > 0 && Number.isFinite(mw.sdAuc) ? (mw.auc - 0.5) / mw.sdAuc : 0;
    this.last = { auc: mw.auc, z, n0: mw.n0, n1: mw.n1, zCritFail: zFail, zCritPass: zPass, usedPre };
    if (mw.sdAuc === 0) {
      // Every value equal in both arms (e.g. a gauge stuck at 0): the candidate is no worse.
      this.passed = mw.auc <= 0.5;
      return;
    }
    if (z >= zFail) this.failed = true;
    else if (-z >= zPass) this.passed = true;
  }

  /** The deploy's next verification: a pass must be shown again (a fail stays). */
  nextStep(): void {
    if (this.checkpoint < this.s.checkpoints) this.passed = false;
  }

  /** Why the check is undecided (for the inconclusive reason), or null when decided. */
  pendingReason(): string | null {
    if (this.decided) return null;
    const nb = this.base.length >= this.check.minSamples ? this.base.length : this.base.length + this.pre.length;
    if (this.cand.length < this.check.minSamples || nb < this.check.minSamples) {
      return `metric:${this.name} not enough data (baseline ${nb}, candidate ${this.cand.length} points; need ${this.check.minSamples} each)`;
    }
    return `metric:${this.name}`;
  }

  evidence(overall: 'pass' | 'fail' | 'inconclusive' | 'pending'): SignalEvidence {
    const c = this.check;
    const { values: baseVals } = this.baseline();
    const bm = summary(baseVals), cm = summary(this.cand);
    const outcome = this.failed ? 'fail' : this.passed ? 'pass' : overall === 'pending' ? 'pending' : 'inconclusive';
    const bad = c.worse === 'higher' ? `above baseline × ${(1 + c.tolerance).toFixed(2)}` : `below baseline × ${(1 - c.tolerance).toFixed(2)}`;
    return {
      signal: `metric:${this.name}`,
      outcome,
      baseline: { points: baseVals.length, preDeployPoints: this.last.usedPre, ...bm },
      candidate: { points: this.cand.length, ...cm },
      stats: {
        relativeChange: bm.median !== 0 ? cm.median / bm.median - 1 : 0,
        tolerance: c.tolerance,
        probCandidateWorse: this.last.auc, rankZ: this.last.z, rankZCritFail: this.last.zCritFail, rankZCritPass: this.last.zCritPass,
        checkpoints: this.checkpoint, minSamples: c.minSamples,
      },
      detail: `${c.agg} of ${c.metric} per point${Object.keys(c.attributes).length > 0 ? ` where ${Object.entries(c.attributes).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}; worse = ${bad}; Mann-Whitney at checkpoints with alpha split over ${this.s.checkpoints}` +
        (outcome === 'inconclusive' && !this.live ? ' (no data in one arm)' : ''),
    };
  }
}

function summary(vs: readonly number[]): { mean: number; median: number; p95: number } {
  if (vs.length === 0) return { mean: 0, median: 0, p95: 0 };
  const s = [...vs].sort((a, b) => a - b);
  let sum = 0;
  for (const v of s) sum += v;
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
  return { mean: sum / s.length, median: q(0.5), p95: q(0.95) };
}
