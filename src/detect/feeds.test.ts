import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorEventMap, ErrorGroup, GroupEventCount } from '../errors/index.js';
import type { StateStore } from '../state/index.js';
import { openTestStateStore } from '../state/dialects.conformance.js';
import { emptyLogBatch, emptyMetricBatch, type CommittedBatches, type LogBatch, type MetricBatch, type RollupSecond } from '../telemetry/index.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test/helpers/webhook-receiver.js';
import { DetectEngine, detectMigrations, type DetectErrorSource, type DetectSource } from './index.js';
import { histogramQuantile } from './metric-window.js';
import { parseRulesYaml } from './rules-file.js';

/**
 * Metric, log and error rules on a fake clock: the engine is handed committed batches and error
 * counts the way the store and the errors pillar hand them over. (End to end with the real SDKs:
 * test/detect-signals.test.ts.)
 */

class FakeSource implements DetectSource {
  batches: ((c: CommittedBatches) => void) | undefined;
  rollups: RollupSecond[] = [];
  onCommittedRollups(): () => void { return () => undefined; }
  onCommittedBatches(l: (c: CommittedBatches) => void): () => void { this.batches = l; return () => { this.batches = undefined; }; }
  services = (): Promise<never[]> => Promise.resolve([]);
  operationRollups = (): Promise<RollupSecond[]> => Promise.resolve([]);
}

class FakeErrors implements DetectErrorSource {
  private readonly ls = new Map<string, Array<(p: never) => void>>();
  on<K extends keyof ErrorEventMap>(name: K, l: (p: ErrorEventMap[K]) => void): () => void {
    this.ls.set(name, [...(this.ls.get(name) ?? []), l]);
    return () => undefined;
  }
  emit<K extends keyof ErrorEventMap>(name: K, p: ErrorEventMap[K]): void {
    for (const l of this.ls.get(name) ?? []) l(p as never);
  }
}

let dir: string;
let state: StateStore;
let receiver: WebhookReceiver;
let engine: DetectEngine | undefined;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
let now: number;
let source: FakeSource;
let errors: FakeErrors;

async function startEngine(rulesYaml: string): Promise<void> {
  writeFileSync(join(dir, 'rules.yaml'), `receivers:\n  - name: hook\n    url: ${receiver.url}\nrules:\n${rulesYaml}`);
  engine = new DetectEngine({ db: state.db, source, errors, rulesFile: join(dir, 'rules.yaml'), nowMs: () => now, tickMs: 0, send: { attempts: 2, baseDelayMs: 5 } });
  await engine.start();
}

const tick = (): void => { now += 1000; engine?.tick(); };
const settle = async (): Promise<void> => { await engine?.dispatcher.drain(); await engine?.flushWrites(); };
type Hook = { status: string; alerts: Array<{ rule: { name: string }; series: Record<string, string>; value: number | null }> };
const byRule = (name: string): Hook[] => receiver.hooks.map((h) => h.body as unknown as Hook).filter((h) => h.alerts[0].rule.name === name);

function metricPoint(b: MetricBatch, p: { name: string; type: MetricBatch['type'][number]; temporality?: number; value?: number; count?: number; sum?: number; detail?: string; attrs?: string; startUs?: number }): void {
  b.service.push('worker'); b.version.push('1'); b.environment.push('prod'); b.resourceAttrs.push('{"service.name":"worker"}');
  b.scopeName.push(''); b.scopeVersion.push('');
  b.name.push(p.name); b.description.push(''); b.unit.push(''); b.type.push(p.type); b.temporality.push(p.temporality ?? 0);
  b.isMonotonic.push(p.type === 'sum'); b.timeUs.push(now * 1000); b.startTimeUs.push(p.startUs ?? (T0 - 60_000) * 1000);
  b.value.push(p.value ?? NaN); b.count.push(p.count ?? 0); b.sum.push(p.sum ?? 0); b.min.push(NaN); b.max.push(NaN);
  b.detail.push(p.detail ?? ''); b.attrs.push(p.attrs ?? '{}');
  b.length++;
}

function logRecord(b: LogBatch, body: string, severityText: string, attrs = '{}'): void {
  b.service.push('shop'); b.version.push('1'); b.environment.push('prod'); b.resourceAttrs.push('{}'); b.scopeName.push(''); b.scopeVersion.push('');
  b.timeUs.push(now * 1000); b.observedTimeUs.push(now * 1000); b.severityNumber.push(0); b.severityText.push(severityText);
  b.body.push(body); b.traceId.push(''); b.spanId.push(''); b.flags.push(0); b.attrs.push(attrs);
  b.length++;
}

const commit = (c: Partial<CommittedBatches>): void => source.batches?.({ spans: [], logs: [], metrics: [], ...c });

function errorCommit(group: string, count: number, flag?: 'new_group' | 'regressed'): void {
  if (flag) errors.emit(flag === 'new_group' ? 'error.new_group' : 'error.regressed', { group: { id: group } as ErrorGroup });
  const c: GroupEventCount = { groupId: group, projectId: 1, service: 'shop', release: '1.0', environment: 'prod', title: `Error ${group}`, count, lastUs: now * 1000 };
  errors.emit('error.events', { counts: [c] });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-feeds-'));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: detectMigrations });
  receiver = await startWebhookReceiver();
  now = T0;
  source = new FakeSource();
  errors = new FakeErrors();
});

afterEach(async () => {
  await engine?.stop();
  engine = undefined;
  await receiver.close();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('histogramQuantile', () => {
  it('interpolates inside the bucket holding the rank (hand-computed)', () => {
    // 10 in (0,10], 30 in (10,50], 60 in (50,100]: p50 rank 50 → 10 into the third bucket of 60.
    const b = new Map([[10, 10], [50, 30], [100, 60], [Infinity, 0]]);
    expect(histogramQuantile(b, 0.5)).toBeCloseTo(50 + 50 * (10 / 60), 9);
    expect(histogramQuantile(b, 0.1)).toBeCloseTo(10, 9);
    expect(histogramQuantile(b, 0.05)).toBeCloseTo(5, 9);
    // A rank in +Inf answers the highest finite bound.
    expect(histogramQuantile(new Map([[10, 1], [Infinity, 9]]), 0.99)).toBe(10);
    expect(histogramQuantile(new Map([[10, 0]]), 0.5)).toBeNull();
  });
});

describe('metric rules', () => {
  it('cumulative counter: rate from differences per stream, a reset counts the new value only', async () => {
    await startEngine(`  - name: failures
    type: metric
    metric: jobs.failed
    agg: rate
    threshold: 50
    window: 2s
    group_interval: 0s
`);
    // Two streams (attributes differ), each +10/s: 20/s in total.
    let a = 1000, b = 5000;
    const step = (incA: number, incB: number, resetA = false): void => {
      a = resetA ? incA : a + incA;
      b += incB;
      const m = emptyMetricBatch();
      metricPoint(m, { name: 'jobs.failed', type: 'sum', temporality: 2, value: a, attrs: '{"queue":"a"}' });
      metricPoint(m, { name: 'jobs.failed', type: 'sum', temporality: 2, value: b, attrs: '{"queue":"b"}' });
      commit({ metrics: [m] });
      tick();
    };
    for (let i = 0; i < 5; i++) step(10, 10);
    // Counter a restarts at 3 (a reset: +3, not -1027).
    step(3, 10, true);
    for (let i = 0; i < 3; i++) step(10, 10);
    await settle();
    expect(byRule('failures')).toEqual([]);
    for (let i = 0; i < 3; i++) step(100, 100);
    for (let i = 0; i < 4; i++) step(10, 10);
    await settle();
    expect(byRule('failures').map((h) => h.status)).toEqual(['firing', 'resolved']);
    expect(byRule('failures')[0].alerts[0].value).toBeGreaterThan(50);
  });

  it('cumulative histogram: p95 of what the window added, not of the whole history', async () => {
    await startEngine(`  - name: slow
    type: metric
    metric: rpc.duration
    agg: p95
    threshold: 400
    window: 2s
`);
    const counts = [0, 0, 0, 0];
    const point = (fast: number, slow: number): void => {
      counts[0] += fast; counts[2] += slow;
      const m = emptyMetricBatch();
      const total = counts.reduce((x, y) => x + y, 0);
      metricPoint(m, { name: 'rpc.duration', type: 'histogram', temporality: 2, count: total, sum: 0, detail: JSON.stringify({ bounds: [100, 500, 1000], counts }) });
      commit({ metrics: [m] });
      tick();
    };
    for (let i = 0; i < 10; i++) point(100, 0);
    for (let i = 0; i < 3; i++) point(0, 100);
    await settle();
    expect(byRule('slow').map((h) => h.status)).toEqual(['firing']);
    // History is 1,000 fast and 300 slow; the window now only sees fast ones again.
    for (let i = 0; i < 10; i++) point(100, 0);
    await settle();
    expect(byRule('slow').map((h) => h.status)).toEqual(['firing', 'resolved']);
  });
});

describe('metric rules over exponential histograms and summaries', () => {
  it('exponential histogram p95 (delta points) fires on slow observations and resolves', async () => {
    await startEngine(`  - name: slow-exp
    type: metric
    metric: rpc.exp
    agg: p95
    threshold: 100
    window: 2s
`);
    // scale 0: index 2 = (4, 8] ms, index 7 = (128, 256] ms
    const point = (fast: number, slow: number): void => {
      const m = emptyMetricBatch();
      const counts = [fast, 0, 0, 0, 0, slow];
      metricPoint(m, { name: 'rpc.exp', type: 'exp_histogram', temporality: 1, count: fast + slow, sum: 0,
        detail: JSON.stringify({ scale: 0, zeroCount: 0, positive: { offset: 2, counts }, negative: { offset: 0, counts: [] } }) });
      commit({ metrics: [m] });
      tick();
    };
    for (let i = 0; i < 4; i++) point(100, 0);
    await settle();
    expect(byRule('slow-exp')).toEqual([]);
    for (let i = 0; i < 3; i++) point(50, 50);
    await settle();
    expect(byRule('slow-exp').map((h) => h.status)).toEqual(['firing']);
    expect(byRule('slow-exp')[0].alerts[0].value).toBeGreaterThan(128);
    for (let i = 0; i < 4; i++) point(100, 0);
    await settle();
    expect(byRule('slow-exp').map((h) => h.status)).toEqual(['firing', 'resolved']);
  });

  it('agg sum of a cumulative counter is its increase, as for a delta counter', async () => {
    await startEngine(`  - name: cum-sum
    type: metric
    metric: jobs.cum
    agg: sum
    threshold: 50
    window: 2s
  - name: delta-sum
    type: metric
    metric: jobs.delta
    agg: sum
    threshold: 50
    window: 2s
`);
    let total = 1000;
    const step = (inc: number): void => {
      total += inc;
      const m = emptyMetricBatch();
      metricPoint(m, { name: 'jobs.cum', type: 'sum', temporality: 2, value: total });
      metricPoint(m, { name: 'jobs.delta', type: 'sum', temporality: 1, value: inc });
      commit({ metrics: [m] });
      tick();
    };
    for (let i = 0; i < 4; i++) step(10);
    await settle();
    expect(byRule('cum-sum')).toEqual([]);
    for (let i = 0; i < 2; i++) step(100);
    await settle();
    // The window (2 s) holds +10 and +100 when it first breaches: 110 for both, not ~2,000 snapshots.
    expect(byRule('cum-sum').map((h) => [h.status, h.alerts[0].value])).toEqual([['firing', 110]]);
    expect(byRule('delta-sum').map((h) => [h.status, h.alerts[0].value])).toEqual([['firing', 110]]);
  });

  it('summary p99 from the quantiles the SDK sent', async () => {
    await startEngine(`  - name: slow-summary
    type: metric
    metric: gc.pause
    agg: p99
    threshold: 50
    window: 2s
`);
    const point = (p99: number): void => {
      const m = emptyMetricBatch();
      metricPoint(m, { name: 'gc.pause', type: 'summary', count: 10, sum: 0,
        detail: JSON.stringify({ quantiles: [{ q: 0.5, v: 1 }, { q: 0.99, v: p99 }] }) });
      commit({ metrics: [m] });
      tick();
    };
    for (let i = 0; i < 3; i++) point(10);
    await settle();
    expect(byRule('slow-summary')).toEqual([]);
    for (let i = 0; i < 3; i++) point(90);
    await settle();
    expect(byRule('slow-summary').map((h) => h.status)).toEqual(['firing']);
    expect(byRule('slow-summary')[0].alerts[0].value).toBe(90);
    for (let i = 0; i < 4; i++) point(10);
    await settle();
    expect(byRule('slow-summary').map((h) => h.status)).toEqual(['firing', 'resolved']);
  });
});

describe('log rules', () => {
  it('severity from text when the number is unset; regex and attribute fan-out', async () => {
    await startEngine(`  - name: oom
    type: log
    match: { regex: 'out of memory|OOM', min_severity: WARN }
    by: [service, attr.pod]
    threshold: 2
    window: 5s
`);
    const l = emptyLogBatch();
    logRecord(l, 'OOM killed', 'warning', '{"pod":"a"}');
    logRecord(l, 'OOM killed', 'info', '{"pod":"a"}');
    logRecord(l, 'out of memory', 'ERROR', '{"pod":"a"}');
    logRecord(l, 'out of memory', 'E', '{"pod":"a"}');
    logRecord(l, 'out of memory', 'error', '{"pod":"b"}');
    commit({ logs: [l] });
    tick();
    await settle();
    expect(byRule('oom')).toEqual([]);
    const l2 = emptyLogBatch();
    logRecord(l2, 'OOM again', 'FATAL', '{"pod":"a"}');
    commit({ logs: [l2] });
    await settle();
    expect(byRule('oom').map((h) => `${h.status}:${h.alerts[0].series.pod}:${h.alerts[0].value}`)).toEqual(['firing:a:3']);
  });
});

describe('log rules with patterns that backtrack in RegExp', () => {
  it('count matching lines in one pass over each body', async () => {
    await startEngine(`  - name: redos
    type: log
    match: { regex: '^(a|aa)+$' }
    threshold: 2
    window: 5s
`);
    const l = emptyLogBatch();
    // 40 and 42 characters stalled the process for 12 and 59 seconds with RegExp.
    logRecord(l, `${'a'.repeat(40)}!`, 'ERROR');
    logRecord(l, `${'a'.repeat(42)}!`, 'ERROR');
    logRecord(l, `${'a'.repeat(60_000)}!`, 'ERROR');
    logRecord(l, 'a'.repeat(40), 'ERROR');
    logRecord(l, 'a'.repeat(41), 'ERROR');
    logRecord(l, 'aaa', 'ERROR');
    commit({ logs: [l] });
    tick();
    await settle();
    expect(byRule('redos').map((h) => `${h.status}:${h.alerts[0].value}`)).toEqual(['firing:3']);
  });
});

describe('error rules', () => {
  it('new group fires once per group and resolves after resolve_after, also across a restart', async () => {
    const rules = `  - name: new
    type: error
    event: new_group
    resolve_after: 10s
`;
    await startEngine(rules);
    errorCommit('g1', 3, 'new_group');
    errorCommit('g1', 5);
    tick();
    await settle();
    expect(byRule('new').map((h) => `${h.status}:${h.alerts[0].series.group}`)).toEqual(['firing:g1']);
    await engine?.stop();
    await startEngine(rules);
    for (let i = 0; i < 15; i++) tick();
    await settle();
    expect(byRule('new').map((h) => `${h.status}:${h.alerts[0].series.group}`)).toEqual(['firing:g1', 'resolved:g1']);
  });

  it('spike: judged against the group\'s own rate, only after two windows were watched', async () => {
    await startEngine(`  - name: spike
    type: error
    event: spike
    by: [service, group]
    window: 10s
    baseline: 1m
    factor: 3
    min_count: 10
`);
    // A noisy group at 5/s and a quiet one at 1 per 2 s: both steady, no spike.
    for (let i = 0; i < 70; i++) { errorCommit('noisy', 5); if (i % 2 === 0) errorCommit('quiet', 1); tick(); }
    await settle();
    expect(byRule('spike')).toEqual([]);
    // noisy at 10/s (2×) is no spike; quiet at 3/s (6×) is.
    for (let i = 0; i < 5; i++) { errorCommit('noisy', 10); errorCommit('quiet', 3); tick(); }
    await settle();
    expect(byRule('spike').map((h) => `${h.status}:${h.alerts[0].series.group}`)).toEqual(['firing:quiet']);
  });

  it('spike: nothing is judged while the baseline is unknown (fresh start)', async () => {
    await startEngine(`  - name: spike
    type: error
    event: spike
    window: 10s
    baseline: 1m
`);
    for (let i = 0; i < 15; i++) { errorCommit('g', 50); tick(); }
    await settle();
    expect(byRule('spike')).toEqual([]);
  });
});

describe('rule validation', () => {
  it('names the field of a bad metric, log or error rule', () => {
    const bad = (rule: string): string => {
      try { parseRulesYaml(`rules:\n${rule}`, 'rules.yaml'); return 'ok'; } catch (e) { return (e as Error).message; }
    };
    expect(bad('  - { name: a, type: metric, metric: m, agg: median, threshold: 1 }')).toMatch(/rules\.0\.agg: Invalid option/);
    expect(bad('  - { name: a, type: metric, metric: m, agg: max, threshold: 1, by: [operation] }')).toMatch(/metric rules have no operation label/);
    expect(bad('  - { name: a, type: threshold, signal: rate, threshold: 1, by: [route] }')).toMatch(/rules\.0\.by\.0: expected service, operation, version, environment or attr\.<attribute key>/);
    expect(bad('  - { name: a, type: log, match: { regex: "(" }, threshold: 1 }')).toMatch(/rules\.0\.match\.regex: unsupported pattern: missing '\)'/);
    expect(bad('  - { name: a, type: log, match: { regex: "(a)\\\\1" }, threshold: 1 }')).toMatch(/rules\.0\.match\.regex: unsupported pattern: backreferences are not supported/);
    expect(bad('  - { name: a, type: log, match: { regex: "x(?=y)" }, threshold: 1 }')).toMatch(/rules\.0\.match\.regex: unsupported pattern: lookaround/);
    expect(bad('  - { name: a, type: log, match: { regex: "(?i)^(a|aa)+$" }, threshold: 1 }')).toBe('ok');
    expect(bad('  - { name: a, type: error, event: spike, window: 10m, baseline: 1m }')).toMatch(/baseline must be at least the window/);
    expect(bad('  - { name: a, type: error, event: surge }')).toMatch(/rules\.0\.event/);
    expect(bad('  - { name: a, type: threshold, signal: rate, threshold: 1, select: { attributes: { http.route: /x } }, by: [service, attr.http.route] }')).toBe('ok');
  });
});
