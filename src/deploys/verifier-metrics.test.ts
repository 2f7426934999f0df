import { describe, expect, it } from 'vitest';
import { emptyMetricBatch, type MetricBatch } from '../telemetry/index.js';
import type { AnalysisVerdict } from './analysis.js';
import type { Deploy } from './contract.js';
import { metricChecksSchema } from './metric-checks.js';
import { Verifier, type RunningVerification } from './verifier.js';

/** A cumulative monotonic counter point (what SDK counters export by default). */
function counterPoint(b: MetricBatch, version: string, instance: string, startUs: number, timeUs: number, total: number): void {
  b.service.push('mailer'); b.version.push(version); b.environment.push('prod');
  b.resourceAttrs.push(JSON.stringify({ 'service.name': 'mailer', 'service.version': version, 'service.instance.id': instance }));
  b.scopeName.push('t'); b.scopeVersion.push('');
  b.name.push('mails.bounced'); b.description.push(''); b.unit.push('1'); b.type.push('sum');
  b.temporality.push(2); b.isMonotonic.push(true); b.timeUs.push(timeUs); b.startTimeUs.push(startUs);
  b.value.push(total); b.count.push(0); b.sum.push(0); b.min.push(NaN); b.max.push(NaN); b.detail.push(''); b.attrs.push('{}');
  b.length++;
}

const deploy = (version: string): Deploy => ({
  id: `d-${version}`, service: 'mailer', version, environment: 'prod', previousVersion: '1.0.0', status: 'verifying', source: 'api',
  commit: null, commitTime: null, url: null, actor: null, rollbackOf: null, startedAt: '', finishedAt: null, decidedAt: null, verificationId: null,
});

describe('Verifier metric checks', () => {
  it('a full rollout: counter rates (cumulative → increases per second) against the pre-deploy window', () => {
    let nowMs = 1_700_000_000_000;
    const verdicts: AnalysisVerdict[] = [];
    const checks = metricChecksSchema.parse([{ metric: 'mails.bounced', agg: 'rate', tolerance: 0.5, minSamples: 10 }]);
    const v = new Verifier({
      verify: { maxDurationS: 120 }, preDeployWindowS: 600, nowMs: () => nowMs,
      onVerdict: (_run: RunningVerification, verdict) => verdicts.push(verdict), onNewSeries: () => undefined,
      metricChecks: (service) => (service === 'mailer' ? checks : []),
    });
    const t0Us = nowMs * 1000;
    // 1.0.0 alone for 60 s: two instances, ~5 bounces/s each, one export per second.
    const totals = new Map<string, number>();
    let seed = 3;
    const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
    const second = (version: string, perS: number, startUs: number): void => {
      nowMs += 1000;
      const b = emptyMetricBatch();
      for (const inst of ['a', 'b']) {
        const k = `${version}/${inst}`;
        totals.set(k, (totals.get(k) ?? 0) + Math.round(perS * (0.7 + 0.6 * rand())));
        counterPoint(b, version, inst, startUs, nowMs * 1000, totals.get(k)!);
      }
      v.onMetrics(b);
      v.tick();
    };
    for (let s = 0; s < 60; s++) second('1.0.0', 5, t0Us);
    // 1.1.0 replaces it entirely and bounces 4× as often.
    const run = v.start('ver-1', deploy('1.1.0'), 120);
    const startUs = nowMs * 1000;
    for (let s = 0; s < 30 && verdicts.length === 0; s++) second('1.1.0', 20, startUs);
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0].outcome).toBe('fail');
    const e = verdicts[0].evidence.find((x) => x.signal === 'metric:mails.bounced')!;
    expect(e.outcome).toBe('fail');
    expect(e.baseline.preDeployPoints).toBeGreaterThanOrEqual(100); // the window: 2 instances × ~58 s
    expect(e.baseline.median).toBeGreaterThan(3);
    expect(e.baseline.median).toBeLessThan(7);
    expect(e.candidate.median).toBeGreaterThan(14);
    expect(run.analysis.metrics[0].name).toBe('mails.bounced');
  });
});
