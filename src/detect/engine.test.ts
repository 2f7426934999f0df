import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StateStore } from '../state/index.js';
import { openTestStateStore } from '../state/dialects.conformance.js';
import { LatencySketch, type RollupSecond } from '../telemetry/index.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test/helpers/webhook-receiver.js';
import { DetectEngine, detectMigrations, type DetectSource } from './index.js';

/**
 * The engine on a fake clock, fed rollup deltas the way the store hands them over, with the
 * real state store and a real HTTP receiver: lifecycle, N-of-M, keep_firing_for, silences and
 * inhibition, minute by minute without waiting for wall-clock time.
 */

class FakeSource implements DetectSource {
  listener: ((rows: RollupSecond[]) => void) | undefined;
  onCommittedRollups(l: (rows: RollupSecond[]) => void): () => void {
    this.listener = l;
    return () => { this.listener = undefined; };
  }
  services = (): Promise<never[]> => Promise.resolve([]);
  red = (): Promise<never[]> => Promise.resolve([]);
}

let dir: string;
let state: StateStore;
let receiver: WebhookReceiver;
let engine: DetectEngine;
let now: number;
const source = new FakeSource();

async function startEngine(rulesYaml: string): Promise<void> {
  writeFileSync(join(dir, 'rules.yaml'), `receivers:\n  - name: hook\n    url: ${receiver.url}\n${rulesYaml}`);
  engine = new DetectEngine({
    db: state.db, source, rulesFile: join(dir, 'rules.yaml'), nowMs: () => now, tickMs: 0,
    publicUrl: () => 'http://console', send: { attempts: 2, baseDelayMs: 5 },
  });
  await engine.start();
}

/** One second of traffic for a service: `total` requests, `errors` of them failed, at `ms` each. */
function feed(service: string, total: number, errors: number, ms = 20): void {
  feedOps(service, '1.0', [['GET /', total, errors]], ms);
}

/** One committed append of several operations of one version: [operation, requests, errors]. */
function feedOps(service: string, version: string, ops: Array<[string, number, number]>, ms = 20): void {
  source.listener?.(ops.map(([operation, total, errors]) => {
    const sketch = new LatencySketch();
    sketch.add(ms * 1e6, total);
    return { service, operation, version, environment: 'prod', second: Math.floor(now / 1000) * 1e6, count: total, errors, sketch };
  }));
}

/** Moves the clock one second and runs the periodic evaluation. */
function tick(): void {
  now += 1000;
  engine.tick();
}

async function settle(): Promise<void> {
  await engine.dispatcher.drain();
  await engine.flushWrites();
}

type Hook = { status: string; alerts: Array<{ status: string; rule: { name: string }; series: Record<string, string> }> };
const hooks = (): Hook[] => receiver.hooks.map((h) => h.body as unknown as Hook);
const byRule = (name: string): Hook[] => hooks().filter((h) => h.alerts[0].rule.name === name);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-detect-'));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: detectMigrations });
  receiver = await startWebhookReceiver();
  now = Date.UTC(2026, 0, 1, 12, 0, 0);
});

afterEach(async () => {
  await engine.stop();
  await receiver.close();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DetectEngine', () => {
  it('error-rate step: one firing, then one resolved, naming the series', async () => {
    await startEngine(`rules:
  - name: checkout errors
    type: threshold
    select: { service: checkout }
    by: [service, environment]
    signal: error_rate
    threshold: 0.1
    window: 5s
`);
    for (let i = 0; i < 10; i++) { feed('checkout', 100, 0); tick(); }
    for (let i = 0; i < 10; i++) { feed('checkout', 100, 50); tick(); }
    for (let i = 0; i < 10; i++) { feed('checkout', 100, 0); tick(); }
    await settle();
    expect(hooks().map((h) => h.status)).toEqual(['firing', 'resolved']);
    const fired = receiver.hooks[0].body as { alerts: Array<Record<string, unknown>> };
    expect(fired.alerts[0]).toMatchObject({
      series: { service: 'checkout', environment: 'prod' }, labels: { alertname: 'checkout errors', service: 'checkout' },
      threshold: { signal: 'error_rate', op: '>', threshold: 0.1 },
    });
    expect(fired.alerts[0].value).toBeGreaterThan(0.1);
    expect(String((fired.alerts[0].links as { traces: string }).traces)).toContain('http://console/api/traces?service=checkout');
    const alerts = await state.db.selectFrom('detect_alert_history' as never).selectAll().execute();
    expect(alerts.map((a) => (a as { state: string }).state)).toEqual(['firing', 'resolved']);
  });

  it('flapping input: N-of-M and keep_firing_for give one firing and one resolved; a naive rule flaps', async () => {
    await startEngine(`rules:
  - name: steady
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.2
    window: 1s
    n_of_m: { n: 2, m: 3 }
    keep_firing_for: 5s
  - name: naive
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.2
    window: 1s
    group_interval: 0s
`);
    for (let i = 0; i < 5; i++) { feed('api', 100, 0); tick(); }
    // bad, bad, good, then a two-second dip, then bad/good alternating: a real but noisy problem.
    const pattern = [1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1];
    for (const bad of pattern) { feed('api', 100, bad ? 60 : 0); tick(); }
    for (let i = 0; i < 12; i++) { feed('api', 100, 0); tick(); }
    await settle();
    expect(byRule('steady').map((h) => h.status)).toEqual(['firing', 'resolved']);
    expect(byRule('naive').length).toBeGreaterThan(4);
  });

  it('silences mute matching alerts only, and expiring one lets the firing through', async () => {
    await startEngine(`rules:
  - name: errors
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.1
    window: 2s
`);
    const silence = await engine.silences.add({ matchers: { service: 'checkout' }, duration: '1h', comment: 'deploy' }, 'test');
    for (let i = 0; i < 3; i++) { feed('checkout', 100, 50); feed('search', 100, 50); tick(); }
    await settle();
    expect(hooks().map((h) => h.alerts[0].series.service)).toEqual(['search']);
    expect(engine.openAlerts().map((a) => a.series.service).sort()).toEqual(['checkout', 'search']);
    await engine.silences.expire(silence.id);
    for (let i = 0; i < 6; i++) { feed('checkout', 100, 50); feed('search', 100, 50); tick(); }
    await settle();
    expect(hooks().map((h) => `${h.status}:${h.alerts[0].series.service}`)).toEqual(['firing:search', 'firing:checkout']);
  });

  it('silence =~ matchers run in linear time; what needs backtracking is refused with the reason', async () => {
    await startEngine('rules: []\n');
    // `^(a|aa)+$` backtracks for seconds over 40 characters with RegExp; here it is one pass.
    const s = await engine.silences.add({ matchers: [{ name: 'service', op: '=~', value: '(a|aa)+' }], duration: '1h' }, 'test');
    expect(engine.silences.mutedBy({ service: 'a'.repeat(40) })?.id).toBe(s.id);
    expect(engine.silences.mutedBy({ service: `${'a'.repeat(100_000)}b` })).toBeUndefined();
    expect(engine.silences.mutedBy({ service: `x${'a'.repeat(40)}` })).toBeUndefined();
    for (const [value, why] of [['(a)\\1', /backreferences/], ['(?=a)a', /lookaround/], ['(?<!b)a', /lookaround/], ['(', /missing/]] as const) {
      await expect(engine.silences.add({ matchers: [{ name: 'service', op: '=~', value }], duration: '1h' }, 'test'))
        .rejects.toMatchObject({ status: 400, message: expect.stringMatching(why) as unknown });
    }
  });

  it('a stored rule whose pattern is no longer accepted is skipped with a warning, not silently', async () => {
    await state.db.insertInto('detect_rules' as never).values({
      id: 'r-old', name: 'old', spec: JSON.stringify({ name: 'old', type: 'log', match: { regex: '(a)\\1' }, threshold: 1 }), created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    }).execute();
    const warned: Array<{ obj: object; msg: string }> = [];
    engine = new DetectEngine({
      db: state.db, source, nowMs: () => now, tickMs: 0, send: { attempts: 1, baseDelayMs: 5 },
      logger: { warn: (obj, msg) => { warned.push({ obj, msg }); } },
    });
    await engine.start();
    expect(engine.rules.list().map((r) => r.spec.name)).not.toContain('old');
    expect(warned).toEqual([expect.objectContaining({ obj: expect.objectContaining({ rule: 'r-old', name: 'old', why: expect.stringContaining('backreferences are not supported') as unknown }) as unknown })]);
  });

  it('inhibition: a firing source mutes targets with equal labels, nothing else', async () => {
    await startEngine(`rules:
  - name: service down
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.9
    window: 2s
    labels: { severity: critical }
  - name: slow
    type: threshold
    by: [service]
    signal: p95_ms
    threshold: 100
    window: 2s
    group_wait: 1s
    labels: { severity: warning }
inhibit_rules:
  - source: { alertname: service down }
    target: { severity: warning }
    equal: [service]
`);
    for (let i = 0; i < 5; i++) { feed('payments', 100, 100, 500); feed('search', 100, 0, 500); tick(); }
    await settle();
    expect(hooks().map((h) => `${h.alerts[0].rule.name}:${h.alerts[0].series.service}`).sort()).toEqual(['service down:payments', 'slow:search']);
    expect(engine.openAlerts().length).toBe(3);
  });

  it('restart while firing: state reloads, no second firing, one resolved', async () => {
    const rules = `rules:
  - name: errors
    type: threshold
    by: [service]
    signal: error_rate
    threshold: 0.1
    window: 2s
    repeat_interval: 1h
`;
    await startEngine(rules);
    for (let i = 0; i < 3; i++) { feed('checkout', 100, 50); tick(); }
    await settle();
    await engine.stop();
    await startEngine(rules);
    expect(engine.openAlerts().map((a) => a.state)).toEqual(['firing']);
    for (let i = 0; i < 5; i++) { feed('checkout', 100, 50); tick(); }
    for (let i = 0; i < 5; i++) { feed('checkout', 100, 0); tick(); }
    await settle();
    expect(hooks().map((h) => h.status)).toEqual(['firing', 'resolved']);
  });

  it('absence: a silent series fires, and resolves when data returns', async () => {
    await startEngine(`rules:
  - name: heartbeat
    type: absence
    by: [service]
    for: 30s
`);
    for (let i = 0; i < 3; i++) { feed('billing', 10, 0); tick(); }
    for (let i = 0; i < 29; i++) tick();
    await settle();
    expect(hooks()).toEqual([]);
    for (let i = 0; i < 3; i++) tick();
    feed('billing', 10, 0);
    for (let i = 0; i < 6; i++) tick(); // the resolved edge waits for group_interval (5 s)
    await settle();
    expect(hooks().map((h) => `${h.status}:${h.alerts[0].series.service}`)).toEqual(['firing:billing', 'resolved:billing']);
  });

  it('SLO burn rate: pages when both windows burn faster than the factor, not on a short blip', async () => {
    await startEngine(`rules:
  - name: slo
    type: slo
    by: [service]
    objective: 0.99
    min_events: 0
    windows: [{ severity: page, factor: 2, long: 10m, short: 1m }]
`);
    for (let i = 0; i < 600; i++) { feed('shop', 100, 0); tick(); }
    // A 10-second blip of 50 % errors: the 1 min window burns 8×, the 10 min window under 1×.
    for (let i = 0; i < 10; i++) { feed('shop', 100, 50); tick(); }
    for (let i = 0; i < 60; i++) { feed('shop', 100, 0); tick(); }
    await settle();
    expect(hooks()).toEqual([]);
    // 3 % errors sustained: burn 3 in both windows.
    for (let i = 0; i < 600; i++) { feed('shop', 100, 3); tick(); }
    await settle();
    expect(hooks().map((h) => h.status)).toEqual(['firing']);
  });

  it('SLO: one budget per service and environment by default, carried across operations and a new version', async () => {
    await startEngine(`rules:
  - name: slo
    type: slo
    objective: 0.99
    min_events: 0
    windows: [{ severity: page, factor: 2, long: 10m, short: 1m }]
`);
    // 3 % errors on one operation, none on another, 10 minutes; then 2.0 replaces 1.0 with 3 % on both.
    // Per operation × version (the old default) the failing operation alone burned 3× at once and
    // the new version's 10-minute window started empty; per service it is 1.5×, then 3 % on both.
    for (let i = 0; i < 600; i++) { feedOps('shop', '1.0', [['GET /a', 100, 3], ['GET /b', 100, 0]]); tick(); }
    await settle();
    expect(hooks()).toEqual([]);
    for (let i = 0; i < 300; i++) { feedOps('shop', '2.0', [['GET /a', 100, 3], ['GET /b', 100, 3]]); tick(); }
    await settle();
    const fired = hooks();
    expect(fired.map((h) => h.status)).toEqual(['firing']);
    expect(fired[0].alerts[0].series).toEqual({ service: 'shop', environment: 'prod' });
  });
});
