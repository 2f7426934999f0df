import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppError } from '../core/app-error.js';
import { DeployService, deploysMigrations } from '../deploys/index.js';
import { deploysDb } from '../deploys/storage.js';
import { DetectEvents, type AlertEvent } from '../detect/index.js';
import { stateTestDialects } from '../state/dialects.conformance.js';
import { migrateToLatest } from '../state/index.js';
import type { RedBucket, RedQuery, TraceSummary } from '../telemetry/index.js';
import { IncidentService } from './service.js';
import { incidentsMigrations } from './storage.js';

/**
 * The incident lifecycle on every state dialect (SQLite, PostgreSQL): open or join, the window,
 * acknowledge / assign / resolve, auto-resolve, notifications and the first bad signal. Alerts are
 * the detect pillar's own event type; telemetry answers RED queries from fixed buckets (the real
 * path, rollups from OTel traffic, runs in test/incidents-flow.test.ts).
 */

const dialects = stateTestDialects();
const T0 = Date.parse('2026-11-26T10:00:00.000Z');

/** RED buckets: 100 req/s, 0 errors before `badFromMs`, 50 % after (or flat when undefined). */
class FixtureTelemetry {
  badFromMs: number | undefined;
  queries: RedQuery[] = [];
  red(q: RedQuery): Promise<RedBucket[]> {
    this.queries.push(q);
    const out: RedBucket[] = [];
    for (let t = q.fromUs; t < q.toUs; t += q.stepS * 1e6) {
      const bad = this.badFromMs !== undefined && t >= this.badFromMs * 1000;
      out.push({ timeUs: t, count: 100, errors: bad ? 50 : 0, rate: 100, errorRate: bad ? 0.5 : 0, p50Ms: 10, p95Ms: 20, p99Ms: 30 });
    }
    return Promise.resolve(out);
  }
  searchTraces(): Promise<TraceSummary[]> { return Promise.resolve([]); }
}

function alert(id: string, rule: string, series: Record<string, string>, firedMs: number): AlertEvent {
  return {
    at: new Date(firedMs).toISOString(),
    alert: {
      id, status: 'firing', rule: { id: `file:${rule}`, name: rule, type: 'threshold' }, series, labels: { ...series, alertname: rule },
      value: 0.5, values: {}, threshold: { signal: 'error_rate', threshold: 0.2 }, startsAt: new Date(firedMs).toISOString(), endsAt: null,
      links: { console: '', traces: '' },
    },
  };
}

describe.each(dialects.names)('incident lifecycle on %s', (name) => {
  beforeAll(() => dialects.start(name));
  afterAll(() => dialects.stop());

  async function setup(): Promise<{ svc: IncidentService; events: DetectEvents; telemetry: FixtureTelemetry; clock: { now: number } }> {
    const store = await dialects.open(name, { migrate: false });
    await migrateToLatest(store.db, incidentsMigrations);
    const events = new DetectEvents();
    const telemetry = new FixtureTelemetry();
    const clock = { now: T0 };
    const svc = new IncidentService({ db: store.db, telemetry, detectEvents: events, windowMs: 10 * 60_000, nowMs: () => clock.now });
    svc.start();
    return { svc, events, telemetry, clock };
  }

  it('opens on a firing alert, joins within the window, splits by environment and after the window', async () => {
    const { svc, events } = await setup();
    const prod = { service: 'checkout', environment: 'prod' };
    events.emit('alert.fired', alert('a1', 'errors', prod, T0));
    events.emit('alert.fired', alert('a2', 'latency', prod, T0 + 60_000));
    events.emit('alert.fired', alert('a3', 'errors', { service: 'checkout', environment: 'staging' }, T0 + 60_000));
    await svc.idle();
    let list = await svc.list();
    // Most recently detected first.
    expect(list.map((i) => [i.environment, i.alerts.map((a) => a.id)])).toEqual([['staging', ['a3']], ['prod', ['a1', 'a2']]]);
    // 11 minutes after the last activity: a new incident.
    events.emit('alert.fired', alert('a4', 'errors', prod, T0 + 60_000 + 11 * 60_000));
    await svc.idle();
    // A rule not fanned out by environment joins the service's latest open incident.
    events.emit('alert.fired', alert('a5', 'latency-any-env', { service: 'checkout' }, T0 + 60_000 + 12 * 60_000));
    await svc.idle();
    list = await svc.list({ service: 'checkout' });
    expect(list.filter((i) => i.environment === 'prod').map((i) => i.alerts.map((a) => a.id).sort())).toEqual([['a4', 'a5'], ['a1', 'a2']]);
    expect(list.every((i) => i.status === 'open')).toBe(true);
    await svc.stop();
  });

  it('acknowledge (idempotent), assign, resolve once; clear errors', async () => {
    const { svc, events, clock } = await setup();
    events.emit('alert.fired', alert('b1', 'errors', { service: 'cart', environment: 'prod' }, T0));
    await svc.idle();
    const [inc] = await svc.list();
    clock.now = T0 + 30_000;
    expect((await svc.acknowledge(inc.id, 'ann')).status).toBe('acknowledged');
    clock.now = T0 + 40_000;
    const again = await svc.acknowledge(inc.id, 'bob');
    expect([again.acknowledgedBy, again.acknowledgedAt]).toEqual(['ann', new Date(T0 + 30_000).toISOString()]);
    expect((await svc.assign(inc.id, ' bob ', 'ann')).assignee).toBe('bob');
    await expect(svc.assign(inc.id, '', 'ann')).rejects.toMatchObject({ code: 'bad_request', status: 400 });
    const done = await svc.resolve(inc.id, 'bob', 'restarted the pool');
    expect([done.status, done.resolution, done.resolvedBy]).toEqual(['resolved', 'manual', 'bob']);
    await expect(svc.resolve(inc.id, 'bob')).rejects.toMatchObject({ code: 'conflict', status: 409 } satisfies Partial<AppError>);
    await expect(svc.acknowledge(inc.id, 'bob')).rejects.toMatchObject({ status: 409 });
    await expect(svc.get('nope')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    await expect(svc.list({ status: 'maybe' })).rejects.toMatchObject({ code: 'bad_request' });
    const kinds = (await svc.events(inc.id)).map((e) => e.kind);
    expect(kinds).toEqual(['alert.fired', 'acknowledged', 'assigned', 'resolved']);
    await svc.stop();
  });

  it('auto-resolves when its alerts resolve; records notifications, the first bad signal and the recovery', async () => {
    const { svc, events, telemetry, clock } = await setup();
    telemetry.badFromMs = T0 - 7000;
    const series = { service: 'pay', environment: 'prod' };
    events.emit('alert.fired', alert('c1', 'errors', series, T0));
    events.emit('alert.notified', { receiver: 'oncall', status: 'firing', alertIds: ['c1'], ok: true, at: new Date(T0 + 200).toISOString() });
    await svc.idle();
    let [inc] = await svc.list();
    expect([inc.firstBadAt, inc.firstBadSource]).toEqual([new Date(T0 - 7000).toISOString(), 'signal']);
    // Recovery: the fixture turns healthy again 20 s after the alert.
    telemetry.badFromMs = undefined;
    const red = telemetry.red.bind(telemetry);
    telemetry.red = async (q) => (await red(q)).map((b) => (b.timeUs >= (T0 - 7000) * 1000 && b.timeUs < (T0 + 20_000) * 1000 ? { ...b, errors: 50, errorRate: 0.5 } : b));
    clock.now = T0 + 30_000;
    events.emit('alert.resolved', { ...alert('c1', 'errors', series, T0), at: new Date(T0 + 25_000).toISOString() });
    await svc.idle();
    [inc] = await svc.list();
    expect([inc.status, inc.resolution, inc.resolvedAt]).toEqual(['resolved', 'auto', new Date(T0 + 30_000).toISOString()]);
    expect(inc.recoveredAt).toBe(new Date(T0 + 20_000).toISOString());
    const evs = await svc.events(inc.id);
    expect(evs.map((e) => e.kind)).toEqual(['alert.fired', 'notified', 'alert.resolved', 'resolved']);
    expect(evs[3].data).toEqual({ resolution: 'auto', note: 'alerts resolved' });
    await svc.stop();
  });

  it('opened by a failed verdict, no alert: the auto-resolution note says no alert fired, not "alerts resolved"', async () => {
    const store = await dialects.open(name, { migrate: false });
    await migrateToLatest(store.db, { ...incidentsMigrations, ...deploysMigrations });
    const events = new DetectEvents();
    const clock = { now: T0 - 30_000 };
    const svc = new IncidentService({ db: store.db, telemetry: new FixtureTelemetry(), detectEvents: events, windowMs: 10 * 60_000, nowMs: () => clock.now });
    svc.start();
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, nowMs: () => clock.now });
    await deploys.start();
    svc.attachDeploys(deploys);
    const bad = await deploys.record({ service: 'till', version: '5.0', environment: 'prod', previousVersion: '4.9', verify: false, startedAt: new Date(T0 - 20_000).toISOString() });
    clock.now = T0;
    const at = new Date(T0).toISOString();
    deploys.events.emit('deploy.verdict', {
      deploy: { ...bad, status: 'failed' }, at,
      verification: { id: 'v3', deployId: bad.id, baselineKind: 'canary', baselineVersion: '4.9', startedAt: bad.startedAt, decidedAt: at, outcome: 'fail', reason: 'error rate up', evidence: [] },
    });
    await svc.idle();
    // The fix ships and passes (its verification's result written as the deploys pillar does).
    clock.now = T0 + 10_000;
    const fix = await deploys.record({ service: 'till', version: '5.0.1', environment: 'prod', previousVersion: '5.0', verify: false, startedAt: new Date(T0 + 10_000).toISOString() });
    await deploysDb(store.db).updateTable('deploys').set({ status: 'passed' }).where('id', '=', fix.id).execute();
    clock.now = T0 + 20_000;
    const passedAt = new Date(T0 + 20_000).toISOString();
    deploys.events.emit('deploy.verdict', {
      deploy: { ...fix, status: 'passed' }, at: passedAt,
      verification: { id: 'v4', deployId: fix.id, baselineKind: 'canary', baselineVersion: '4.9', startedAt: fix.startedAt, decidedAt: passedAt, outcome: 'pass', reason: 'healthy', evidence: [] },
    });
    await svc.idle();
    const [inc] = await svc.list({ service: 'till' });
    expect([inc.status, inc.resolution]).toEqual(['resolved', 'auto']);
    const resolved = (await svc.events(inc.id)).find((e) => e.kind === 'resolved');
    expect(resolved?.data).toEqual({ resolution: 'auto', note: 'no alert fired; till 5.0.1 passed verification' });
    await deploys.stop();
    await svc.stop();
  });

  it('an inconclusive fix leaves the incident open, recovered but unverified; only a pass resolves by itself', async () => {
    const store = await dialects.open(name, { migrate: false });
    await migrateToLatest(store.db, { ...incidentsMigrations, ...deploysMigrations });
    const events = new DetectEvents();
    const clock = { now: T0 - 60_000 };
    const svc = new IncidentService({ db: store.db, telemetry: new FixtureTelemetry(), detectEvents: events, windowMs: 10 * 60_000, nowMs: () => clock.now });
    svc.start();
    // The real deploys pillar; its rollup feed stays silent, so nothing shows the rollback healthy.
    const deploys = new DeployService({
      db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, nowMs: () => clock.now,
      verify: { maxDurationS: 5 },
    });
    await deploys.start();
    svc.attachDeploys(deploys);
    const series = { service: 'ledger', environment: 'prod' };
    const bad = await deploys.record({ service: 'ledger', version: '2.0', environment: 'prod', previousVersion: '1.0', verify: false });
    clock.now = T0;
    events.emit('alert.fired', alert('u1', 'errors', series, T0));
    await svc.idle();
    clock.now = T0 + 10_000;
    const rb = await deploys.record({ service: 'ledger', version: '1.0', environment: 'prod', previousVersion: '2.0', rollbackOf: bad.id, source: 'rollback' });
    expect(rb.status).toBe('verifying');
    clock.now = T0 + 20_000;
    events.emit('alert.resolved', { ...alert('u1', 'errors', series, T0), at: new Date(T0 + 20_000).toISOString() });
    await svc.idle();
    // The rollback's verification ends inconclusive (no history of 1.0 serving alone).
    clock.now = T0 + 30_000;
    deploys.tick();
    const v = await deploys.waitForVerdict(rb.id, 5_000);
    expect(v.outcome).toBe('inconclusive');
    // The verdict's status event reaches incidents through the deploys' background write.
    for (let i = 0; i < 100 && !(await svc.list())[0].recoveredUnverified; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await svc.idle();
    }
    const [inc] = await svc.list();
    expect([inc.status, inc.resolvedAt, inc.recoveredUnverified]).toEqual(['open', null, true]);
    const evs = await svc.events(inc.id);
    expect(evs.map((e) => e.kind)).toEqual(['alert.fired', 'alert.resolved', 'fix.unverified']);
    expect(evs[2]).toMatchObject({ ref: rb.id, data: { version: '1.0', rollback: true } });
    expect(String(evs[2].data.reason)).toMatch(/^no history/);
    // A person closes it; the flag goes with the resolution.
    const done = await svc.resolve(inc.id, 'ann', 'checked by hand');
    expect([done.status, done.recoveredUnverified]).toEqual(['resolved', false]);
    await deploys.stop();
    await svc.stop();
  });

  it('a failed deploy: the first bad signal is its version\'s first failed request (MTTD > 0), the deploy its suspect', async () => {
    const store = await dialects.open(name, { migrate: false });
    await migrateToLatest(store.db, { ...incidentsMigrations, ...deploysMigrations });
    const events = new DetectEvents();
    const telemetry = new FixtureTelemetry();
    // The service: clean before the deploy. Version 3.0 serves from T0 − 20 s; its first failed
    // request is at T0 − 12.4 s (bucket T0 − 13 s); the verdict fails at T0.
    const red = telemetry.red.bind(telemetry);
    telemetry.red = async (q) => (await red(q)).map((b) => {
      const mine = q.version === '3.0', sec = b.timeUs / 1000;
      if (mine && sec < T0 - 20_000) return { ...b, count: 0, errors: 0, rate: 0, errorRate: 0 };
      const errors = mine && sec >= T0 - 13_000 ? 30 : 0;
      return { ...b, errors, errorRate: errors / b.count };
    });
    const clock = { now: T0 - 30_000 };
    const svc = new IncidentService({ db: store.db, telemetry, detectEvents: events, windowMs: 10 * 60_000, nowMs: () => clock.now });
    svc.start();
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, nowMs: () => clock.now });
    await deploys.start();
    svc.attachDeploys(deploys);
    const other = await deploys.record({ service: 'cart', version: '2.9', environment: 'prod', previousVersion: '2.8', verify: false, startedAt: new Date(T0 - 100_000).toISOString() });
    const bad = await deploys.record({ service: 'cart', version: '3.0', environment: 'prod', previousVersion: '2.9', verify: false, startedAt: new Date(T0 - 20_000).toISOString() });
    clock.now = T0;
    const at = new Date(T0).toISOString();
    deploys.events.emit('deploy.verdict', {
      deploy: { ...bad, status: 'failed' }, at,
      verification: { id: 'v1', deployId: bad.id, baselineKind: 'canary', baselineVersion: '2.9', startedAt: bad.startedAt, decidedAt: at, outcome: 'fail', reason: 'error rate up', evidence: [] },
    });
    await svc.idle();
    const [inc] = await svc.list({ service: 'cart' });
    expect([inc.firstBadAt, inc.firstBadSource, inc.suspectDeployId]).toEqual([new Date(T0 - 13_000).toISOString(), 'deploy', bad.id]);
    expect(inc.suspectDeployId).not.toBe(other.id);
    expect(Date.parse(inc.detectedAt) - Date.parse(inc.firstBadAt!)).toBe(13_000);
    // The levels the recovery search needs: the service before the deploy, the version after its first error.
    const row = await svc.row(inc.id);
    expect([row.baseline_level, row.bad_level]).toEqual([0, 0.3]);
    await deploys.stop();
    await svc.stop();
  });

  it('a failed deploy whose spans arrive after its verdict: its first failed request is read again as they land', async () => {
    const store = await dialects.open(name, { migrate: false });
    await migrateToLatest(store.db, { ...incidentsMigrations, ...deploysMigrations });
    const events = new DetectEvents();
    const telemetry = new FixtureTelemetry();
    // Version 4.0 serves from T0 − 5 s, first failed request in bucket T0 − 3 s; the verdict fails
    // at T0, before the exporter's batch with those spans has reached the rollups.
    let arrived = false;
    const red = telemetry.red.bind(telemetry);
    telemetry.red = async (q) => (await red(q)).map((b) => {
      const mine = q.version === '4.0', sec = b.timeUs / 1000;
      if (mine && (!arrived || sec < T0 - 5_000)) return { ...b, count: 0, errors: 0, rate: 0, errorRate: 0 };
      const errors = mine && sec >= T0 - 3_000 ? 40 : 0;
      return { ...b, errors, errorRate: errors / b.count };
    });
    const clock = { now: T0 - 10_000 };
    const svc = new IncidentService({ db: store.db, telemetry, detectEvents: events, windowMs: 10 * 60_000, nowMs: () => clock.now });
    svc.start();
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, nowMs: () => clock.now });
    await deploys.start();
    svc.attachDeploys(deploys);
    const bad = await deploys.record({ service: 'basket', version: '4.0', environment: 'prod', previousVersion: '3.9', verify: false, startedAt: new Date(T0 - 5_000).toISOString() });
    clock.now = T0;
    const at = new Date(T0).toISOString();
    deploys.events.emit('deploy.verdict', {
      deploy: { ...bad, status: 'failed' }, at,
      verification: { id: 'v2', deployId: bad.id, baselineKind: 'canary', baselineVersion: '3.9', startedAt: bad.startedAt, decidedAt: at, outcome: 'fail', reason: 'error rate up', evidence: [] },
    });
    await svc.idle();
    const [before] = await svc.list({ service: 'basket' });
    expect(before.firstBadSource).toBe('alert');
    arrived = true;
    let inc = before;
    for (let i = 0; i < 40 && inc.firstBadSource !== 'deploy'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await svc.idle();
      [inc] = await svc.list({ service: 'basket' });
    }
    expect([inc.firstBadAt, inc.firstBadSource, inc.suspectDeployId]).toEqual([new Date(T0 - 3_000).toISOString(), 'deploy', bad.id]);
    await deploys.stop();
    await svc.stop();
  });

  it('falls back to the alert time when the rollups show no change', async () => {
    const { svc, events } = await setup();
    events.emit('alert.fired', alert('d1', 'errors', { service: 'search', environment: 'prod' }, T0));
    await svc.idle();
    const [inc] = await svc.list();
    expect([inc.firstBadAt, inc.firstBadSource]).toEqual([new Date(T0).toISOString(), 'alert']);
    await svc.stop();
  });
});
