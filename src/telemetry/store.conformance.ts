/**
 * The TelemetryStore conformance suite: every implementation (DuckDB, ClickHouse) runs
 * it against a real database. Call it from a test file:
 *
 *   runTelemetryStoreConformance('duckdb', async () => ({ store, reopen, cleanup }));
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetryStore } from './store.js';
import { exactQuantile, hexOf, logBatch, spanBatch, type SpanInput } from './conformance-batches.js';
import { registerMetricAndRetentionCases } from './store.conformance-metrics.js';

export interface StoreFixture {
  /** A new, empty, not yet opened store. */
  store: TelemetryStore;
  /** A second store over the same data (used after `store` is closed). */
  reopen(): TelemetryStore;
  /** Removes the data; called after the stores are closed. */
  cleanup(): Promise<void>;
}

export type StoreFactory = () => StoreFixture | Promise<StoreFixture>;

export const US = 1_000_000;
/** 2024-05-01T00:00:00Z — fixed, whole-day aligned, long closed (rollups flush at once). */
export const DAY0 = Date.UTC(2024, 4, 1) * 1000;
export const T0 = DAY0 + 10 * 3600 * US;

/** Opens a fresh fixture per test and closes it afterwards; `ctx.store` is the open store. */
export function useStore(factory: StoreFactory): { store: TelemetryStore; fixture: StoreFixture } {
  const ctx = {} as { store: TelemetryStore; fixture: StoreFixture };
  beforeEach(async () => {
    ctx.fixture = await factory();
    ctx.store = ctx.fixture.store;
    await ctx.store.open();
  });
  afterEach(async () => {
    await ctx.store.close();
    await ctx.fixture.cleanup();
  });
  return ctx;
}

/** A three-span trace: SERVER root at `service`, CLIENT child, SERVER child at 'db-api'. */
function trace(n: number, startUs: number, opts: { service?: string; error?: boolean; rootMs?: number } = {}): SpanInput[] {
  const traceId = hexOf(n, 32);
  const root = hexOf(n * 10 + 1, 16);
  const service = opts.service ?? 'shop';
  const rootNs = (opts.rootMs ?? 100) * 1e6;
  return [
    { traceId, spanId: root, name: 'GET /cart', kind: 2, startUs, durationNs: rootNs, service, version: '1.0', environment: 'prod',
      statusCode: opts.error ? 2 : 0, attrs: { 'http.route': '/cart', n } },
    { traceId, spanId: hexOf(n * 10 + 2, 16), parentSpanId: root, name: 'call db-api', kind: 3, startUs: startUs + 1000,
      durationNs: rootNs / 2, service, version: '1.0', environment: 'prod' },
    { traceId, spanId: hexOf(n * 10 + 3, 16), parentSpanId: hexOf(n * 10 + 2, 16), name: 'query', kind: 2, startUs: startUs + 2000,
      durationNs: rootNs / 4, service: 'db-api', version: '2.1', environment: 'prod' },
  ];
}

export function runTelemetryStoreConformance(name: string, factory: StoreFactory): void {
  describe(`TelemetryStore conformance: ${name}`, () => {
    const ctx = useStore(factory);

    it('returns nothing from an empty store', async () => {
      const { store } = ctx;
      expect(await store.getTrace(hexOf(1, 32))).toEqual([]);
      expect(await store.searchTraces({ fromUs: T0, toUs: T0 + 3600 * US, limit: 10 })).toEqual([]);
      expect(await store.searchLogs({ fromUs: T0, toUs: T0 + 3600 * US, limit: 10 })).toEqual([]);
      expect(await store.services(T0, T0 + 3600 * US)).toEqual([]);
      const red = await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 10 });
      expect(red).toHaveLength(6);
      expect(red[0]).toEqual({ timeUs: T0, count: 0, errors: 0, rate: 0, errorRate: 0, p50Ms: null, p95Ms: null, p99Ms: null });
    });

    it('gets a trace by id with spans in start order and parsed attributes, events and links', async () => {
      const { store } = ctx;
      const spans = trace(7, T0);
      spans[0].events = [{ timeUs: T0 + 5, name: 'exception', attrs: { 'exception.type': 'Boom' } }];
      spans[1].links = [{ traceId: hexOf(8, 32), spanId: hexOf(81, 16), traceState: 'k=v', attrs: { why: 'retry' } }];
      spans[2].resourceAttrs = { 'service.name': 'db-api', 'host.name': 'h1' };
      spans[2].scopeName = 'pg-instrumentation';
      spans[2].traceState = 'vendor=1';
      spans[2].statusMessage = 'slow';
      // Stored out of order and across two batches and two appends.
      await store.append([{ spans: spanBatch([spans[2]]) }]);
      await store.append([{ spans: spanBatch([spans[1], spans[0]]) }, { spans: spanBatch(trace(9, T0)) }]);

      const got = await store.getTrace(hexOf(7, 32));
      expect(got.map((s) => s.spanId)).toEqual([hexOf(71, 16), hexOf(72, 16), hexOf(73, 16)]);
      expect(got[0]).toMatchObject({
        traceId: hexOf(7, 32), parentSpanId: '', name: 'GET /cart', kind: 2, startUs: T0, durationNs: 100e6,
        service: 'shop', version: '1.0', environment: 'prod', attrs: { 'http.route': '/cart', n: 7 },
        events: [{ timeUs: T0 + 5, name: 'exception', attrs: { 'exception.type': 'Boom' } }], links: [],
        resourceAttrs: { 'service.name': 'shop' }, scopeName: 'test-scope', scopeVersion: '1.0.0',
      });
      expect(got[1].links).toEqual([{ traceId: hexOf(8, 32), spanId: hexOf(81, 16), traceState: 'k=v', attrs: { why: 'retry' } }]);
      expect(got[1].parentSpanId).toBe(hexOf(71, 16));
      expect(got[2]).toMatchObject({
        resourceAttrs: { 'service.name': 'db-api', 'host.name': 'h1' }, scopeName: 'pg-instrumentation',
        traceState: 'vendor=1', statusMessage: 'slow', service: 'db-api', version: '2.1',
      });
      expect(await store.getTrace(hexOf(7, 32).toUpperCase())).toHaveLength(3);
      expect(await store.getTrace(hexOf(12345, 32))).toEqual([]);
      expect(await store.getTrace('not-a-trace-id')).toEqual([]);
    });

    it('finds a trace whose spans start in different minutes and hours', async () => {
      const { store } = ctx;
      const id = hexOf(42, 32);
      await store.append([{ spans: spanBatch([
        { traceId: id, spanId: hexOf(1, 16), startUs: T0 + 59 * US, durationNs: 3600e9 },
        { traceId: id, spanId: hexOf(2, 16), parentSpanId: hexOf(1, 16), startUs: T0 + 61 * US },
        { traceId: id, spanId: hexOf(3, 16), parentSpanId: hexOf(1, 16), startUs: T0 + 3599 * US },
      ]) }]);
      await store.append([{ spans: spanBatch([{ traceId: id, spanId: hexOf(4, 16), parentSpanId: hexOf(1, 16), startUs: T0 + 1800 * US }]) }]);
      expect((await store.getTrace(id)).map((s) => s.spanId)).toEqual([1, 2, 4, 3].map((n) => hexOf(n, 16)));
    });

    it('searches traces by service, operation, duration, status and time, newest first', async () => {
      const { store } = ctx;
      const spans: SpanInput[] = [];
      for (let n = 1; n <= 10; n++) {
        spans.push(...trace(n, T0 + n * 60 * US, { service: n % 2 ? 'shop' : 'web', error: n === 4 || n === 7, rootMs: n * 10 }));
      }
      await store.append([{ spans: spanBatch(spans) }]);
      const window = { fromUs: T0, toUs: T0 + 3600 * US };

      const all = await store.searchTraces({ ...window, limit: 100 });
      expect(all.map((t) => t.traceId)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((n) => hexOf(n, 32)));
      expect(all.find((t) => t.traceId === hexOf(4, 32))).toEqual({
        traceId: hexOf(4, 32), rootService: 'web', rootName: 'GET /cart', rootVersion: '1.0', startUs: T0 + 240 * US,
        durationNs: 40e6, spanCount: 3, errorCount: 1, services: ['db-api', 'web'],
      });
      const ids = async (q: Partial<Parameters<TelemetryStore['searchTraces']>[0]>): Promise<string[]> =>
        (await store.searchTraces({ ...window, limit: 100, ...q })).map((t) => t.traceId);
      expect(await ids({ limit: 3 })).toEqual([10, 9, 8].map((n) => hexOf(n, 32)));
      expect(await ids({ service: 'web' })).toEqual([10, 8, 6, 4, 2].map((n) => hexOf(n, 32)));
      expect(await ids({ service: 'db-api', operation: 'query', minDurationNs: 20e6 })).toEqual([10, 9, 8].map((n) => hexOf(n, 32)));
      expect(await ids({ operation: 'GET /cart', minDurationNs: 85e6 })).toEqual([10, 9].map((n) => hexOf(n, 32)));
      expect(await ids({ status: 'error' })).toEqual([7, 4].map((n) => hexOf(n, 32)));
      expect(await ids({ status: 'ok', service: 'shop' })).toEqual([9, 5, 3, 1].map((n) => hexOf(n, 32)));
      expect(await ids({ fromUs: T0 + 150 * US, toUs: T0 + 330 * US })).toEqual([5, 4, 3].map((n) => hexOf(n, 32)));
      expect(await ids({ service: 'nobody' })).toEqual([]);
    });

    it('summarizes a trace without a root span by its earliest span', async () => {
      const { store } = ctx;
      const id = hexOf(5, 32);
      await store.append([{ spans: spanBatch([
        { traceId: id, spanId: hexOf(2, 16), parentSpanId: hexOf(1, 16), name: 'late', startUs: T0 + 10, durationNs: 5000, service: 'b', version: '9' },
        { traceId: id, spanId: hexOf(3, 16), parentSpanId: hexOf(1, 16), name: 'early', startUs: T0, durationNs: 1000, service: 'a', version: '3' },
      ]) }]);
      const [t] = await store.searchTraces({ fromUs: T0, toUs: T0 + US, limit: 5 });
      expect(t).toMatchObject({ rootService: 'a', rootName: 'early', rootVersion: '3', startUs: T0, durationNs: 15_000, spanCount: 2, services: ['a', 'b'] });
    });

    it('searches logs case-insensitively by body, service, severity, trace id and attributes, newest first', async () => {
      const { store } = ctx;
      const tid = hexOf(77, 32);
      await store.append([{ logs: logBatch([
        { timeUs: T0 + 1 * US, body: 'User logged in', service: 'auth', attrs: { user: 'ann', 'http.status_code': 200 } },
        { timeUs: T0 + 2 * US, body: 'Payment DECLINED for order 9', service: 'pay', severityNumber: 17, severityText: 'ERROR', traceId: tid, spanId: hexOf(5, 16), attrs: { user: 'bob' } },
        { timeUs: T0 + 3 * US, body: 'payment declined: card expired', service: 'pay', severityNumber: 13, attrs: { user: 'ann' },
          resourceAttrs: { 'service.name': 'pay', region: 'eu' }, scopeName: 'pay-logger' },
        { timeUs: T0 + 4 * US, body: 'retrying 100% of batch_1', service: 'pay', severityNumber: 9 },
        { timeUs: T0 + 5000 * US, body: 'payment declined later', service: 'pay' },
      ]) }]);
      const q = { fromUs: T0, toUs: T0 + 3600 * US, limit: 100 };
      const bodies = async (extra: object): Promise<string[]> => (await store.searchLogs({ ...q, ...extra })).map((l) => l.body);

      expect(await bodies({ q: 'payment declined' })).toEqual(['payment declined: card expired', 'Payment DECLINED for order 9']);
      expect(await bodies({ q: 'PAYMENT' })).toHaveLength(2);
      expect(await bodies({ q: '100%' })).toEqual(['retrying 100% of batch_1']);
      expect(await bodies({ q: 'batch_' })).toEqual(['retrying 100% of batch_1']);
      expect(await bodies({ q: '_%' })).toEqual([]);
      expect(await bodies({ service: 'auth' })).toEqual(['User logged in']);
      expect(await bodies({ minSeverity: 13 })).toEqual(['payment declined: card expired', 'Payment DECLINED for order 9']);
      expect(await bodies({ traceId: tid })).toEqual(['Payment DECLINED for order 9']);
      expect(await bodies({ attrs: { user: 'ann' } })).toEqual(['payment declined: card expired', 'User logged in']);
      expect(await bodies({ attrs: { user: 'ann', 'http.status_code': '200' } })).toEqual(['User logged in']);
      expect(await bodies({ limit: 2 })).toEqual(['retrying 100% of batch_1', 'payment declined: card expired']);
      expect(await bodies({ toUs: T0 + 3 * US })).toEqual(['Payment DECLINED for order 9', 'User logged in']);
      expect(await bodies({ q: 'declined', toUs: T0 + 6000 * US, limit: 1 })).toEqual(['payment declined later']);

      const [row] = await store.searchLogs({ ...q, traceId: tid });
      expect(row).toEqual({
        timeUs: T0 + 2 * US, observedTimeUs: T0 + 2 * US, severityNumber: 17, severityText: 'ERROR',
        body: 'Payment DECLINED for order 9', traceId: tid, spanId: hexOf(5, 16), flags: 0, service: 'pay', version: '',
        environment: '', resourceAttrs: { 'service.name': 'pay' }, scopeName: 'test-logger', attrs: { user: 'bob' }, eventName: '',
      });
      const [withResource] = await store.searchLogs({ ...q, q: 'card expired' });
      expect(withResource).toMatchObject({ resourceAttrs: { 'service.name': 'pay', region: 'eu' }, scopeName: 'pay-logger' });
    });

    it('returns the newest matching logs first over hours, whatever limit cuts them', async () => {
      const { store } = ctx;
      // One line a minute for 5 h, every third matching; the search windows grow (and long ones are
      // scanned in pieces at once), so the limits below end inside the second, third and last window.
      const rows = [];
      for (let m = 0; m < 300; m++) rows.push({ timeUs: T0 + m * 60 * US, body: m % 3 === 0 ? `disk full ${m}` : `ok ${m}`, service: 'web' });
      await store.append([{ logs: logBatch(rows) }]);
      const expected = rows.filter((r) => r.body.startsWith('disk')).map((r) => r.body).reverse();
      const range = { fromUs: T0, toUs: T0 + 300 * 60 * US, q: 'DISK FULL' };
      for (const limit of [7, 20, 60, 100, 500]) {
        expect((await store.searchLogs({ ...range, limit })).map((l) => l.body)).toEqual(expected.slice(0, limit));
      }
    });

    it('counts every matching log line per bucket, past any search limit, with the same filters', async () => {
      const { store } = ctx;
      const rows = [];
      // 2 500 lines over 50 s (one every 20 ms), every 10th an error of 'pay'; one line just before and one at the end (both outside).
      for (let i = 0; i < 2500; i++) {
        rows.push({ timeUs: T0 + i * 20_000, body: i % 10 === 0 ? `declined ${i}` : `ok ${i}`, service: i % 10 === 0 ? 'pay' : 'web', severityNumber: i % 10 === 0 ? 17 : 9 });
      }
      rows.push({ timeUs: T0 - 1, body: 'before', service: 'web', severityNumber: 9 }, { timeUs: T0 + 50 * US, body: 'at the end', service: 'web', severityNumber: 9 });
      await store.append([{ logs: logBatch(rows) }]);
      const range = { fromUs: T0, toUs: T0 + 50 * US };
      const all = await store.logVolume({ ...range, stepUs: 10 * US });
      expect(all).toEqual([0, 1, 2, 3, 4].map((k) => ({ timeUs: T0 + k * 10 * US, count: 500, errors: 50 })));
      expect((await store.searchLogs({ ...range, limit: 5000 })).length).toBe(2500);
      const sum = (b: Array<{ count: number }>): number => b.reduce((a, x) => a + x.count, 0);
      expect(sum(await store.logVolume({ ...range, stepUs: 7 * US }))).toBe(2500);
      expect(sum(await store.logVolume({ ...range, stepUs: 10 * US, q: 'DECLINED' }))).toBe(250);
      expect(sum(await store.logVolume({ ...range, stepUs: 10 * US, service: 'web' }))).toBe(2250);
      expect(sum(await store.logVolume({ ...range, stepUs: 10 * US, minSeverity: 17 }))).toBe(250);
      // Only buckets holding a line; none at all for an empty range or an impossible trace id.
      expect(await store.logVolume({ fromUs: T0 + 20 * US, toUs: T0 + 20 * US + 10_000, stepUs: 1000 })).toEqual([{ timeUs: T0 + 20 * US, count: 1, errors: 1 }]);
      expect(await store.logVolume({ fromUs: T0 + 60 * US, toUs: T0 + 70 * US, stepUs: US })).toEqual([]);
      expect(await store.logVolume({ ...range, stepUs: US, traceId: 'not-hex' })).toEqual([]);
    });

    it('computes RED buckets from rollups matching the ingested spans', async () => {
      const { store } = ctx;
      const durations: number[] = [];
      const spans: SpanInput[] = [];
      let seed = 7;
      const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
      for (let i = 0; i < 3000; i++) {
        const d = Math.round(Math.exp(rnd() * 6) * 1e6); // 1 ms … 400 ms
        durations.push(d);
        spans.push({ traceId: hexOf(i + 1, 32), spanId: hexOf(i + 1, 16), name: i % 3 ? 'GET /a' : 'GET /b', kind: 2,
          startUs: T0 + Math.floor((i / 3000) * 120 * US), durationNs: d, statusCode: i % 10 === 0 ? 2 : 0,
          service: 'shop', version: i < 1500 ? '1.0' : '1.1', environment: 'prod' });
        // A client span and an internal child: not entry spans, not counted.
        if (i % 100 === 0) spans.push({ traceId: hexOf(i + 1, 32), spanId: hexOf(900000 + i, 16), parentSpanId: hexOf(i + 1, 16), kind: 3, startUs: T0, service: 'shop' });
      }
      // Consumer spans with a parent count as entry spans.
      spans.push({ traceId: hexOf(5000, 32), spanId: hexOf(5000, 16), parentSpanId: hexOf(4999, 16), kind: 5, name: 'consume', startUs: T0 + 5 * US, service: 'shop', version: '1.0', environment: 'prod' });
      for (let i = 0; i < spans.length; i += 700) await store.append([{ spans: spanBatch(spans.slice(i, i + 700)) }]);
      await store.flush();

      const buckets = await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 120 * US, stepS: 60 });
      expect(buckets.map((b) => b.timeUs)).toEqual([T0, T0 + 60 * US]);
      expect(buckets.map((b) => b.count)).toEqual([1501, 1500]);
      const total = buckets.reduce((a, b) => a + b.count, 0);
      expect(buckets.reduce((a, b) => a + b.errors, 0)).toBe(300);
      expect(buckets[0].rate).toBeCloseTo(1501 / 60, 6);
      expect(buckets[1].errorRate).toBeCloseTo(150 / 1500, 6);
      expect(total).toBe(3001);

      const all = await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 120 * US, stepS: 120 });
      const exact = [...durations, 1_000_000];
      for (const [q, got] of [[0.5, all[0].p50Ms], [0.95, all[0].p95Ms], [0.99, all[0].p99Ms]] as const) {
        const want = exactQuantile(exact, q) / 1e6;
        expect(Math.abs((got as number) - want) / want).toBeLessThan(0.02);
      }
      // Seconds and minutes agree; empty buckets are present with count 0 and null latency.
      const perSecond = await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 180 * US, stepS: 10 });
      const perMinute = await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 180 * US, stepS: 60 });
      expect(perSecond).toHaveLength(18);
      expect(perSecond.reduce((a, b) => a + b.count, 0)).toBe(3001);
      expect(perMinute.reduce((a, b) => a + b.count, 0)).toBe(3001);
      expect(perSecond.reduce((a, b) => a + b.errors, 0)).toBe(perMinute.reduce((a, b) => a + b.errors, 0));
      expect(perMinute[2]).toEqual({ timeUs: T0 + 120 * US, count: 0, errors: 0, rate: 0, errorRate: 0, p50Ms: null, p95Ms: null, p99Ms: null });
      // Buckets are aligned to the step, whatever the range's start.
      const aligned = await store.red({ service: 'shop', fromUs: T0 + 7 * US, toUs: T0 + 25 * US, stepS: 10 });
      expect(aligned.map((b) => b.timeUs)).toEqual([T0, T0 + 10 * US, T0 + 20 * US]);

      const opB = await store.red({ service: 'shop', operation: 'GET /b', fromUs: T0, toUs: T0 + 120 * US, stepS: 60 });
      expect(opB.reduce((a, b) => a + b.count, 0)).toBe(1000);
      const v11 = await store.red({ service: 'shop', version: '1.1', environment: 'prod', fromUs: T0, toUs: T0 + 120 * US, stepS: 30 });
      expect(v11.reduce((a, b) => a + b.count, 0)).toBe(1500);
      expect((await store.red({ service: 'shop', environment: 'dev', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 }))[0].count).toBe(0);
    });

    it('lists services with versions, environments, last seen and RED', async () => {
      const { store } = ctx;
      await store.append([{ spans: spanBatch([...trace(1, T0), ...trace(2, T0 + 30 * US, { error: true }), ...trace(3, T0 + 90 * US, { service: 'web' })]) }]);
      await store.append([{ spans: spanBatch([{ traceId: hexOf(4, 32), spanId: hexOf(4, 16), name: 'GET /cart', kind: 2, startUs: T0 + 100 * US, service: 'shop', version: '1.1', environment: 'staging' }]) }]);
      await store.flush();
      const list = await store.services(T0, T0 + 600 * US);
      expect(list.map((s) => s.service)).toEqual(['db-api', 'shop', 'web']);
      const shop = list[1];
      expect(shop).toMatchObject({ versions: ['1.0', '1.1'], environments: ['prod', 'staging'], lastSeenUs: T0 + 100 * US, count: 3, errors: 1 });
      expect(shop.rate).toBeCloseTo(3 / 600, 9);
      expect(shop.errorRate).toBeCloseTo(1 / 3, 9);
      expect(shop.p50Ms).toBeGreaterThan(0);
      expect(list[0]).toMatchObject({ versions: ['2.1'], count: 3, errors: 0 });
      // A day-long window reads minute rollups and agrees.
      const day = await store.services(DAY0, DAY0 + 86_400 * US);
      expect(day.map((s) => [s.service, s.count])).toEqual([['db-api', 3], ['shop', 3], ['web', 1]]);
    });

    it('tells rollup listeners about persisted seconds, per operation', async () => {
      const { store } = ctx;
      const got: Array<[string, number, number, number]> = [];
      const off = store.onRollup((rows) => {
        for (const r of rows) got.push([r.operation, r.second, r.count, r.sketch.quantile(1) ?? -1]);
      });
      await store.append([{ spans: spanBatch([...trace(1, T0), ...trace(2, T0 + 500_000), ...trace(3, T0 + 2 * US, { rootMs: 50 })]) }]);
      await store.flush();
      off();
      await store.append([{ spans: spanBatch(trace(4, T0 + 9 * US)) }]);
      await store.flush();
      const cart = got.filter((g) => g[0] === 'GET /cart').sort((a, b) => a[1] - b[1]);
      expect(cart.map((g) => g.slice(0, 3))).toEqual([['GET /cart', T0, 2], ['GET /cart', T0 + 2 * US, 1]]);
      expect(Math.abs(cart[1][3] - 50e6) / 50e6).toBeLessThan(0.01);
      expect(got.filter((g) => g[0] === 'query').reduce((a, g) => a + g[2], 0)).toBe(3);
    });

    registerMetricAndRetentionCases(ctx);
  });
}
