import { describe, expect, it } from 'vitest';
import { loopMetrics, quantile, weekStart, type DeployFacts, type IncidentFacts } from './metrics.js';

/**
 * Hand-computed fixtures. Two weeks (Mon 2026-11-02 → Mon 2026-11-16), services api and web.
 * Every expected figure below is worked out in the comment next to it, not by the code under test.
 */
const at = (s: string): number => Date.parse(`2026-${s}:00Z`);
const iso = (s: string): string => new Date(at(s)).toISOString();
const MIN = 60_000, H = 60 * MIN;

function deploy(id: string, p: Partial<DeployFacts> & { startedAt: string }): DeployFacts {
  return { id, service: 'api', environment: 'prod', status: 'passed', rollbackOf: null, source: 'api', commitTime: null, finishedAt: null, decidedAt: null, ...p };
}

const deploys: DeployFacts[] = [
  deploy('d0', { startedAt: iso('11-01T10:00') }), // before the period
  deploy('d1', { startedAt: iso('11-02T10:00'), commitTime: iso('11-02T08:00'), finishedAt: iso('11-02T10:30'), decidedAt: iso('11-02T10:40') }), // lead 2.5 h
  deploy('d2', { startedAt: iso('11-03T12:00'), commitTime: iso('11-03T11:00'), finishedAt: iso('11-03T12:10'), status: 'rolled_back' }), // lead 70 min
  deploy('d3', { startedAt: iso('11-03T12:20'), source: 'rollback', rollbackOf: 'd2', finishedAt: iso('11-03T12:21'), decidedAt: iso('11-03T12:25') }),
  deploy('d4', { startedAt: iso('11-10T09:00'), commitTime: iso('11-09T09:00'), finishedAt: iso('11-10T09:00'), decidedAt: iso('11-10T09:05') }), // lead 24 h
  deploy('d5', { startedAt: iso('11-10T09:30'), commitTime: iso('11-10T09:20'), finishedAt: iso('11-10T09:35'), decidedAt: iso('11-10T09:40') }), // lead 15 min
  deploy('d6', { service: 'web', startedAt: iso('11-04T00:00'), status: 'failed' }),
  deploy('d7', { service: 'web', environment: 'staging', startedAt: iso('11-16T01:00'), decidedAt: iso('11-16T01:10') }), // other environment, after the period
];

const incidents: IncidentFacts[] = [
  { id: 'i1', service: 'api', environment: 'prod', firstBadAt: at('11-10T09:02'), detectedAt: at('11-10T09:12'), acknowledgedAt: at('11-10T09:15'),
    recoveredAt: at('11-10T09:36'), resolvedAt: at('11-10T09:50'), suspectDeployId: 'd4' },
  { id: 'i2', service: 'api', environment: 'prod', firstBadAt: at('11-03T12:05'), detectedAt: at('11-03T12:06'), acknowledgedAt: null,
    recoveredAt: null, resolvedAt: at('11-03T12:30'), suspectDeployId: 'd2' },
  { id: 'i3', service: 'web', environment: 'prod', firstBadAt: null, detectedAt: at('11-05T00:00'), acknowledgedAt: at('11-05T00:10'),
    recoveredAt: null, resolvedAt: null, suspectDeployId: null },
];

const FROM = at('11-02T00:00'), TO = at('11-16T00:00');

describe('quantiles', () => {
  it('interpolate linearly between order statistics', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([10, 20, 30, 40, 50], 0.9)).toBeCloseTo(46, 9);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([], 0.5)).toBeNull();
  });
  it('weeks start on Monday 00:00 UTC', () => {
    expect(new Date(weekStart(at('11-05T13:00'))).toISOString()).toBe('2026-11-02T00:00:00.000Z');
    expect(new Date(weekStart(at('11-02T00:00'))).toISOString()).toBe('2026-11-02T00:00:00.000Z');
    expect(new Date(weekStart(at('11-01T23:59'))).toISOString()).toBe('2026-10-26T00:00:00.000Z');
  });
});

describe('loop metrics over two weeks, all services', () => {
  const m = loopMetrics({ fromMs: FROM, toMs: TO, incidents, deploys });

  it('per-incident MTTD, MTTA, MTTR', () => {
    expect(m.incidents.count).toBe(3);
    expect(m.incidents.each).toEqual([
      { id: 'i1', service: 'api', mttdMs: 10 * MIN, mttaMs: 3 * MIN, mttrMs: 34 * MIN },
      { id: 'i2', service: 'api', mttdMs: 1 * MIN, mttaMs: null, mttrMs: 25 * MIN }, // no recovery seen: resolution time
      { id: 'i3', service: 'web', mttdMs: null, mttaMs: 10 * MIN, mttrMs: null },
    ]);
    // MTTD [1, 10] min: median 5.5 min, p90 1 + 0.9·9 = 9.1 min.
    expect(m.incidents.mttd).toEqual({ count: 2, medianMs: 5.5 * MIN, p90Ms: 9.1 * MIN });
    // MTTA [3, 10] min: median 6.5, p90 3 + 0.9·7 = 9.3.
    expect(m.incidents.mtta.medianMs).toBeCloseTo(6.5 * MIN, 6);
    expect(m.incidents.mtta.p90Ms).toBeCloseTo(9.3 * MIN, 6);
    // MTTR [25, 34] min: median 29.5, p90 25 + 0.9·9 = 33.1.
    expect(m.incidents.mttr.medianMs).toBeCloseTo(29.5 * MIN, 6);
    expect(m.incidents.mttr.p90Ms).toBeCloseTo(33.1 * MIN, 6);
  });

  it('DORA keys', () => {
    const d = m.dora;
    expect(d.deployments).toBe(6); // d1-d6
    expect(d.deploymentFrequency.perDay).toBeCloseTo(6 / 14, 9);
    expect(d.deploymentFrequency.perWeek).toBeCloseTo(3, 9);
    // Lead times 15 min, 70 min, 150 min, 1440 min: median (70+150)/2 = 110 min; p90 150 + 0.7·1290 = 1053 min.
    expect(d.leadTime.count).toBe(4);
    expect(d.leadTime.medianMs).toBeCloseTo(110 * MIN, 6);
    expect(d.leadTime.p90Ms).toBeCloseTo(1053 * MIN, 6);
    // Failed: d2 (rolled back, suspect of i2), d4 (suspect of i1), d6 (failed verdict) → 3 of 6.
    expect(d.failedDeployments).toBe(3);
    expect(d.changeFailRate).toBe(0.5);
    // d2: min(d3 passed 12:25, i2 resolved 12:30) − 12:00 = 25 min; d4: min(d5 passed 09:40, i1 recovered 09:36) − 09:00 = 36 min;
    // d6: unrecovered (d7 is another environment). Median 30.5 min, p90 25 + 0.9·11 = 34.9 min.
    expect(d.failedDeploymentRecovery.count).toBe(2);
    expect(d.failedDeploymentRecovery.unrecovered).toBe(1);
    expect(d.failedDeploymentRecovery.medianMs).toBeCloseTo(30.5 * MIN, 6);
    expect(d.failedDeploymentRecovery.p90Ms).toBeCloseTo(34.9 * MIN, 6);
    // Rework: d3 (a rollback) and d5 (made while i1 was open) → 2 of 6.
    expect(d.reworkDeployments).toBe(2);
    expect(d.reworkRate).toBeCloseTo(1 / 3, 9);
  });

  it('weekly trend', () => {
    expect(m.weeks).toEqual([
      // d1, d2, d3, d6; failed d2, d6; leads 150, 70 min; incidents i2, i3.
      { weekStart: '2026-11-02T00:00:00.000Z', deployments: 4, changeFailRate: 0.5, leadTimeMedianMs: 110 * MIN, incidents: 2, mttdMedianMs: 1 * MIN, mttrMedianMs: 25 * MIN },
      // d4, d5; failed d4; leads 1440, 15 min; incident i1.
      { weekStart: '2026-11-09T00:00:00.000Z', deployments: 2, changeFailRate: 0.5, leadTimeMedianMs: 727.5 * MIN, incidents: 1, mttdMedianMs: 10 * MIN, mttrMedianMs: 34 * MIN },
    ]);
  });
});

describe('edge periods', () => {
  it('an empty period has counts of zero and no rates', () => {
    const m = loopMetrics({ fromMs: at('10-01T00:00'), toMs: at('10-08T00:00'), incidents, deploys });
    expect(m.incidents).toEqual({ count: 0, each: [], mttd: { count: 0, medianMs: null, p90Ms: null }, mtta: { count: 0, medianMs: null, p90Ms: null }, mttr: { count: 0, medianMs: null, p90Ms: null } });
    expect(m.dora).toEqual({
      deployments: 0, deploymentFrequency: { perDay: 0, perWeek: 0 }, leadTime: { count: 0, medianMs: null, p90Ms: null },
      failedDeployments: 0, changeFailRate: null, failedDeploymentRecovery: { count: 0, medianMs: null, p90Ms: null, unrecovered: 0 },
      reworkDeployments: 0, reworkRate: null,
    });
    // Thu 10-01 → Thu 10-08 touches the weeks of Mon 09-28 and Mon 10-05.
    expect(m.weeks.map((w) => [w.weekStart, w.deployments, w.changeFailRate])).toEqual([
      ['2026-09-28T00:00:00.000Z', 0, null], ['2026-10-05T00:00:00.000Z', 0, null],
    ]);
  });

  it('a single healthy deploy in one day', () => {
    const m = loopMetrics({ fromMs: FROM, toMs: at('11-03T00:00'), service: 'api', incidents, deploys });
    expect(m.dora.deployments).toBe(1);
    expect(m.dora.deploymentFrequency).toEqual({ perDay: 1, perWeek: 7 });
    expect(m.dora.leadTime).toEqual({ count: 1, medianMs: 2.5 * H, p90Ms: 2.5 * H });
    expect(m.dora.changeFailRate).toBe(0);
    expect(m.dora.reworkRate).toBe(0);
    expect(m.incidents.count).toBe(0);
  });

  it('a single failed deploy of one service, never recovered', () => {
    const m = loopMetrics({ fromMs: FROM, toMs: TO, service: 'web', incidents, deploys });
    expect(m.service).toBe('web');
    expect(m.dora.deployments).toBe(1);
    expect(m.dora.leadTime.count).toBe(0);
    expect(m.dora.changeFailRate).toBe(1);
    expect(m.dora.failedDeploymentRecovery).toEqual({ count: 0, medianMs: null, p90Ms: null, unrecovered: 1 });
    expect(m.incidents.each).toEqual([{ id: 'i3', service: 'web', mttdMs: null, mttaMs: 10 * MIN, mttrMs: null }]);
  });
});
