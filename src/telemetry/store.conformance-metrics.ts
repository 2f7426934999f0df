/**
 * Conformance cases for metric queries, retention and reopening (registered by
 * runTelemetryStoreConformance; split out to keep files small).
 */
import { expect, it } from 'vitest';
import type { MetricQuery, MetricSeries, TelemetryStore } from './store.js';
import { hexOf, logBatch, metricBatch, spanBatch, type MetricInput } from './conformance-batches.js';
import type { StoreFixture } from './store.conformance.js';

const US = 1_000_000;
const DAY_US = 86_400 * US;
const DAY0 = Date.UTC(2024, 4, 1) * 1000;
const T0 = DAY0 + 10 * 3600 * US;

const values = (s: MetricSeries | undefined): Array<number | null> => (s ? s.points.map(([, v]) => v) : []);

export function registerMetricAndRetentionCases(ctx: { store: TelemetryStore; fixture: StoreFixture }): void {
  const metric = (q: Partial<MetricQuery>): Promise<MetricSeries[]> =>
    ctx.store.queryMetric({ name: 'cpu', agg: 'avg', groupBy: [], fromUs: T0, toUs: T0 + 120 * US, stepS: 60, ...q });

  it('aggregates gauge values per step, grouped by columns and attributes', async () => {
    const rows: MetricInput[] = [];
    for (let s = 0; s < 120; s += 10) {
      rows.push({ name: 'cpu', timeUs: T0 + s * US, value: s, service: 'shop', version: '1', attrs: { host: 'a' } });
      rows.push({ name: 'cpu', timeUs: T0 + s * US, value: 1000 + s, service: 'shop', version: '2', attrs: { host: 'b' } });
      rows.push({ name: 'cpu', timeUs: T0 + s * US, value: 7, service: 'web', attrs: { host: 'a' } });
      rows.push({ name: 'mem', timeUs: T0 + s * US, value: 99, service: 'shop' });
    }
    await ctx.store.append([{ metrics: metricBatch(rows) }]);

    const byHost = await metric({ agg: 'avg', groupBy: ['host'], service: 'shop' });
    expect(byHost.map((s) => s.labels)).toEqual([{ host: 'a' }, { host: 'b' }]);
    expect(byHost[0].points).toEqual([[T0, 25], [T0 + 60 * US, 85]]);
    expect(values(byHost[1])).toEqual([1025, 1085]);
    expect(values((await metric({ agg: 'sum', service: 'shop' }))[0])).toEqual([150 + 6150, 510 + 6510]);
    expect(values((await metric({ agg: 'min' }))[0])).toEqual([0, 7]);
    expect(values((await metric({ agg: 'max' }))[0])).toEqual([1050, 1110]);
    const byService = await metric({ agg: 'max', groupBy: ['service', 'version'] });
    expect(byService.map((s) => [s.labels, values(s)])).toEqual([
      [{ service: 'shop', version: '1' }, [50, 110]],
      [{ service: 'shop', version: '2' }, [1050, 1110]],
      [{ service: 'web', version: '' }, [7, 7]],
    ]);
    // Buckets without data are present with null.
    const wide = await metric({ agg: 'avg', service: 'web', toUs: T0 + 180 * US });
    expect(values(wide[0])).toEqual([7, 7, null]);
    expect(await metric({ name: 'nothing' })).toEqual([]);
  });

  it('computes rates of cumulative counters across resets and of delta sums', async () => {
    const rows: MetricInput[] = [];
    for (let s = 0; s < 120; s += 10) {
      // Restarted at T0+55 s (new start time): the value starts over from 0.
      const restarted = s >= 60;
      rows.push({ name: 'requests', type: 'sum', temporality: 2, isMonotonic: true, timeUs: T0 + s * US,
        startTimeUs: restarted ? T0 + 55 * US : T0 - 100 * US, value: restarted ? 5 + (s - 60) : 100 + s, attrs: { route: '/a' } });
      // A reset seen only as a drop in value (same start time).
      rows.push({ name: 'requests', type: 'sum', temporality: 2, isMonotonic: true, timeUs: T0 + s * US,
        startTimeUs: T0 - 100 * US, value: s === 90 ? 2 : s > 90 ? 2 + (s - 90) * 2 : 500 + s * 2, attrs: { route: '/b' } });
      rows.push({ name: 'bytes', type: 'sum', temporality: 1, isMonotonic: true, timeUs: T0 + s * US, startTimeUs: T0 + (s - 10) * US, value: 6 });
    }
    await ctx.store.append([{ metrics: metricBatch(rows) }]);
    const rate = await metric({ name: 'requests', agg: 'rate', groupBy: ['route'] });
    expect(rate.map((s) => s.labels.route)).toEqual(['/a', '/b']);
    expect(values(rate[0]).map((v) => v! * 60)).toEqual([50, 5 + 50].map((x): unknown => expect.closeTo(x, 9)));
    // /b: +20 per point; at 90 s a drop to 2 counts as 2, then +20 per point.
    expect(values(rate[1]).map((v) => v! * 60)).toEqual([100, 20 + 20 + 20 + 2 + 20 + 20].map((x): unknown => expect.closeTo(x, 9)));
    expect(values((await metric({ name: 'bytes', agg: 'rate' }))[0])).toEqual([0.6, 0.6].map((x): unknown => expect.closeTo(x, 9)));
  });

  it('interpolates histogram percentiles from merged bucket counts', async () => {
    const bounds = [10, 20, 50, 100];
    await ctx.store.append([{ metrics: metricBatch([
      // Delta histograms, two points in the first step: counts add up to [10, 20, 60, 10, 0].
      { name: 'lat', type: 'histogram', temporality: 1, timeUs: T0 + 5 * US, bounds, counts: [4, 10, 30, 6, 0] },
      { name: 'lat', type: 'histogram', temporality: 1, timeUs: T0 + 25 * US, bounds, counts: [6, 10, 30, 4, 0] },
      // Cumulative: only the increase between points counts ([10, 20, 60, 10, 0] again).
      { name: 'clat', type: 'histogram', temporality: 2, timeUs: T0 + 5 * US, startTimeUs: T0 - 600 * US, bounds, counts: [5, 5, 5, 5, 0] },
      { name: 'clat', type: 'histogram', temporality: 2, timeUs: T0 + 65 * US, startTimeUs: T0 - 600 * US, bounds, counts: [15, 25, 65, 15, 0] },
    ]) }]);
    const p = async (name: string, agg: 'p50' | 'p95' | 'p99'): Promise<Array<number | null>> => values((await metric({ name, agg }))[0]);
    expect(await p('lat', 'p95')).toEqual([expect.closeTo(75, 9), null]);
    expect(await p('lat', 'p50')).toEqual([expect.closeTo(30, 9), null]);
    expect(await p('lat', 'p99')).toEqual([expect.closeTo(95, 9), null]);
    expect(await p('clat', 'p95')).toEqual([null, expect.closeTo(75, 9)]);
  });

  it('drops only whole UTC days before the cutoff day, per signal', async () => {
    const at = (day: number): number => DAY0 + day * DAY_US + 3600 * US;
    for (const day of [0, 1, 2]) {
      await ctx.store.append([{
        spans: spanBatch([{ traceId: hexOf(day + 1, 32), spanId: hexOf(1, 16), startUs: at(day), service: 'shop', name: 'GET /' },
          { traceId: hexOf(day + 1, 32), spanId: hexOf(2, 16), parentSpanId: hexOf(1, 16), startUs: at(day) + 10, service: 'shop' }]),
        logs: logBatch([{ timeUs: at(day), body: `log of day ${day}` }]),
        metrics: metricBatch([{ name: 'cpu', timeUs: at(day), value: day }]),
      }]);
    }
    await ctx.store.flush();
    // Cutoff late on day 2: days 0 and 1 go, day 2 stays even though part of it is older.
    expect(await ctx.store.dropBefore('spans', at(2) + 10 * 3600 * US)).toBe(4);
    expect(await ctx.store.getTrace(hexOf(1, 32))).toEqual([]);
    expect(await ctx.store.getTrace(hexOf(2, 32))).toEqual([]);
    expect(await ctx.store.getTrace(hexOf(3, 32))).toHaveLength(2);
    const red = await ctx.store.red({ service: 'shop', fromUs: DAY0, toUs: DAY0 + 3 * DAY_US, stepS: 86_400 });
    expect(red.map((b) => b.count)).toEqual([0, 0, 1]);
    // Other signals are untouched until their own turn.
    const logs = (): Promise<string[]> => ctx.store.searchLogs({ fromUs: DAY0, toUs: DAY0 + 3 * DAY_US, limit: 10 }).then((r) => r.map((l) => l.body));
    expect(await logs()).toEqual(['log of day 2', 'log of day 1', 'log of day 0']);
    expect(await ctx.store.dropBefore('logs', DAY0 + DAY_US)).toBe(1);
    expect(await logs()).toEqual(['log of day 2', 'log of day 1']);
    expect(await ctx.store.dropBefore('metrics', DAY0 + DAY_US - 1)).toBe(0);
    expect(await ctx.store.dropBefore('metrics', DAY0 + 2 * DAY_US)).toBe(2);
    const m = await ctx.store.queryMetric({ name: 'cpu', agg: 'max', groupBy: [], fromUs: DAY0, toUs: DAY0 + 3 * DAY_US, stepS: 86_400 });
    expect(values(m[0])).toEqual([null, null, 2]);
  });

  it('keeps data and rollups across close and reopen', async () => {
    await ctx.store.append([{
      spans: spanBatch([{ traceId: hexOf(9, 32), spanId: hexOf(9, 16), startUs: T0, service: 'shop', name: 'GET /', kind: 2 }]),
      logs: logBatch([{ timeUs: T0, body: 'kept' }]),
      metrics: metricBatch([{ name: 'cpu', timeUs: T0, value: 3 }]),
    }]);
    await ctx.store.close();
    ctx.store = ctx.fixture.reopen();
    await ctx.store.open();
    expect(await ctx.store.getTrace(hexOf(9, 32))).toHaveLength(1);
    expect((await ctx.store.searchLogs({ fromUs: T0, toUs: T0 + US, limit: 5 })).map((l) => l.body)).toEqual(['kept']);
    expect(values((await metric({ agg: 'sum' }))[0])).toEqual([3, null]);
    expect((await ctx.store.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 }))[0].count).toBe(1);
    // Appending after reopening adds to, not replaces, what was there.
    await ctx.store.append([{ spans: spanBatch([{ traceId: hexOf(10, 32), spanId: hexOf(10, 16), startUs: T0 + US, service: 'shop', name: 'GET /', kind: 2 }]) }]);
    await ctx.store.flush();
    expect((await ctx.store.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 }))[0].count).toBe(2);
  });
}
