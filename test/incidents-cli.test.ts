import { describe, expect, it } from 'vitest';
import { human, renderReport } from '../src/cli/incidents.js';
import { loopMetrics } from '../src/incidents/index.js';

/** The terminal rendering of `tightloop report` (the numbers come from the pure metrics). */

describe('tightloop report rendering', () => {
  it('formats durations for people', () => {
    expect([human(null), human(1500), human(42_000), human(190_000), human(7_500_000), human(97_200_000)])
      .toEqual(['—', '1.5 s', '42 s', '3 m 10 s', '2 h 5 m', '1 d 3 h']);
  });

  it('prints every key, the weekly trend and says when deploys are not available', () => {
    const from = Date.parse('2026-11-02T00:00:00Z');
    const m = loopMetrics({
      fromMs: from, toMs: from + 7 * 86_400_000,
      incidents: [{ id: 'i1', service: 'api', environment: 'prod', firstBadAt: from + 1000, detectedAt: from + 31_000, acknowledgedAt: from + 91_000, recoveredAt: from + 601_000, resolvedAt: from + 700_000, suspectDeployId: 'd1' }],
      deploys: [{ id: 'd1', service: 'api', environment: 'prod', status: 'rolled_back', rollbackOf: null, source: 'api', commitTime: new Date(from - 3_600_000).toISOString(), startedAt: new Date(from).toISOString(), finishedAt: new Date(from + 60_000).toISOString(), decidedAt: null }],
    });
    const text = renderReport({ ...m, deploysAvailable: false });
    expect(text).toContain('Incidents: 1');
    expect(text).toMatch(/MTTD \(first bad signal → detected\)\s+median 30 s\s+p90 30 s\s+\(n=1\)/);
    expect(text).toMatch(/MTTR \(first bad signal → recovered\)\s+median 10 m 0 s/);
    expect(text).toContain('0.14/day');
    expect(text).toMatch(/change fail rate\s+100\.0 %\s+\(1 of 1\)/);
    expect(text).toMatch(/lead time for changes\s+median 1 h 1 m/);
    expect(text).toContain('no deploy records available');
    expect(text).toMatch(/2026-11-02\s+1\s+100\.0 %/);
  });
});
