import { describe, expect, it } from 'vitest';
import type { Deploy, Verification } from '../deploys/contract.js';
import type { Incident } from './model.js';
import { buildTimeline, deployLink, type AuditFact, type StoredEvent } from './timeline.js';

/**
 * The story's order and labels from fixed facts. Audit records have the shapes the gateway and the
 * actions module write (request.created / request.approved / statement / action.run).
 */

const at = (s: number): string => new Date(Date.parse('2026-11-26T10:00:00.000Z') + s * 1000).toISOString();

const incident: Incident = {
  id: 'inc1', title: 'errors: checkout (prod)', service: 'checkout', environment: 'prod', status: 'resolved', signal: 'error_rate',
  openedAt: at(10), detectedAt: at(10), firstBadAt: at(4), firstBadSource: 'signal', recoveredAt: at(60), acknowledgedAt: at(20),
  acknowledgedBy: 'ann', assignee: 'bob', resolvedAt: at(70), resolvedBy: null, resolution: 'auto', suspectDeployId: 'd2', recoveredUnverified: false, alerts: [],
};

function deploy(id: string, version: string, startS: number, p: Partial<Deploy> = {}): Deploy {
  return {
    id, service: 'checkout', version, environment: 'prod', previousVersion: '1.0.0', status: 'passed', source: 'api', commit: `c-${id}`,
    commitTime: null, url: null, actor: 'ci', rollbackOf: null, startedAt: at(startS), finishedAt: null, decidedAt: null, verificationId: null, ...p,
  };
}
const verdict = (deployId: string, outcome: 'pass' | 'fail', s: number): Verification => ({
  id: `v-${deployId}`, deployId, baselineKind: 'pre_deploy', baselineVersion: null, startedAt: at(s - 5), decidedAt: at(s), outcome, reason: 'error rate', evidence: [],
});

const events: StoredEvent[] = [
  { at: at(10), kind: 'alert.fired', actor: null, ref: 'a1', data: { rule: 'errors', links: { traces: 'http://x/api/traces?service=checkout' } } },
  { at: at(10), kind: 'notified', actor: null, ref: 'a1', data: { receiver: 'oncall', status: 'firing', ok: true } },
  { at: at(20), kind: 'acknowledged', actor: 'ann', ref: null, data: {} },
  { at: at(21), kind: 'assigned', actor: 'ann', ref: null, data: { assignee: 'bob' } },
  { at: at(12), kind: 'error_group', actor: null, ref: 'g1', data: { kind: 'new', title: 'Error: card declined' } },
  { at: at(65), kind: 'alert.resolved', actor: null, ref: 'a1', data: { rule: 'errors' } },
  { at: at(70), kind: 'resolved', actor: null, ref: null, data: { resolution: 'auto', note: 'alerts resolved' } },
  { at: at(30), kind: 'deploy.failed', actor: null, ref: 'd2', data: {} },
];

const audit: AuditFact[] = [
  { seq: 7, at: at(25), kind: 'request.created', actor: 'bob', resource: 'orders-db', data: { request: 'r1', kind: 'access', mode: 'read', durationS: 900 } },
  { seq: 8, at: at(27), kind: 'request.approved', actor: 'ann', resource: 'orders-db', data: { request: 'r1', kind: 'access' } },
  { seq: 9, at: at(35), kind: 'statement', actor: 'bob', resource: 'orders-db', data: { protocol: 'simple', sql: 'SELECT * FROM orders WHERE id = $1', decision: 'allow', executions: 3 } },
  { seq: 10, at: at(40), kind: 'action.run', actor: 'ann', resource: 'action:rollback', data: { run: 'run1', kind: 'command', status: 'succeeded', params: { SERVICE: 'checkout' } } },
  { seq: 11, at: at(41), kind: 'connection.open', actor: 'bob', resource: 'orders-db', data: {} },
];

const d2 = deploy('d2', '2.0.0', 3);
const d3 = deploy('d3', '1.0.0', 45, { previousVersion: '2.0.0', source: 'rollback', rollbackOf: 'd2' });

describe('the incident timeline', () => {
  const tl = buildTimeline({
    incident, events, audit,
    deploys: [{ deploy: { ...d2, status: 'rolled_back' }, verification: verdict('d2', 'fail', 30) }, { deploy: d3, verification: verdict('d3', 'pass', 58) }],
    suspect: deployLink(d2),
    signalLinks: { traceIds: ['t1'], traces: 'http://x/traces', logs: 'http://x/logs', errorGroups: ['g1'] },
    baseline: 0.01, bad: 0.5,
  });

  it('orders every step by time, ties in the loop’s order', () => {
    expect(tl.map((e) => [e.at, e.kind])).toEqual([
      [at(3), 'deploy'], [at(4), 'first_bad_signal'], [at(10), 'alert.fired'], [at(10), 'notified'], [at(12), 'error_group'],
      [at(20), 'acknowledged'], [at(21), 'assigned'], [at(25), 'access.requested'], [at(27), 'access.approved'], [at(30), 'verdict'],
      [at(35), 'statement'], [at(40), 'action'], [at(45), 'rollback'], [at(58), 'verdict'], [at(60), 'signal_recovered'],
      [at(65), 'alert.resolved'], [at(70), 'resolved'],
    ]);
  });

  it('labels and links each entry', () => {
    const by = (k: string) => tl.filter((e) => e.kind === k);
    expect(by('deploy')[0]).toMatchObject({ title: 'deploy checkout 1.0.0 → 2.0.0 (suspect)', links: { deploy: { id: 'd2', commit: 'c-d2' } } });
    expect(by('first_bad_signal')[0]).toMatchObject({
      title: 'error_rate left its baseline (1.0 % → 50.0 %)',
      links: { traceIds: ['t1'], logs: 'http://x/logs', errorGroups: ['g1'], suspectDeploy: { id: 'd2', version: '2.0.0', commit: 'c-d2' } },
    });
    expect(by('alert.fired')[0].links).toEqual({ alert: 'a1', traces: 'http://x/api/traces?service=checkout' });
    expect(by('access.requested')[0]).toMatchObject({ actor: 'bob', title: 'bob requested read access on orders-db', links: { auditSeq: 7 } });
    expect(by('statement')[0].title).toBe('allow: SELECT * FROM orders WHERE id = $1 (×3)');
    expect(by('action')[0]).toMatchObject({ title: 'action rollback: succeeded', actor: 'ann', links: { auditSeq: 10 } });
    expect(by('rollback')[0].title).toBe('rollback checkout 2.0.0 → 1.0.0');
    expect(by('verdict').map((v) => [v.data.deployId, v.data.outcome])).toEqual([['d2', 'fail'], ['d3', 'pass']]);
    expect(by('signal_recovered')[0].title).toBe('error_rate back to baseline (1.0 %)');
    expect(by('resolved')[0].title).toBe('resolved (auto): alerts resolved');
    // Records the story does not tell (connections) and internal events (deploy.failed) stay out.
    expect(tl.some((e) => e.data.auditKind === 'connection.open')).toBe(false);
    expect(tl).toHaveLength(17);
  });

  it('says so when no change was found before the alert', () => {
    const t = buildTimeline({ incident: { ...incident, firstBadAt: at(10), firstBadSource: 'alert', recoveredAt: null }, events: [], audit: [], deploys: [], suspect: null, signalLinks: {}, baseline: null, bad: null });
    expect(t.map((e) => [e.kind, e.title])).toEqual([['first_bad_signal', 'error_rate breached (no earlier change found in the rollups)']]);
  });
});
