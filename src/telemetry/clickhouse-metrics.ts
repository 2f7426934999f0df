/**
 * Metric queries over ClickHouse's metric_points, with the semantics of duckdb-metrics.ts:
 * avg/min/max aggregated by the engine per step and labels; sum and rate (each point's increase
 * over its series' previous point, resets from 0) and the percentiles of explicit and exponential
 * histograms and summaries computed here over the points the engine returns, series by series
 * in time order (at most MAX_POINTS per query: narrow the range or filter by service beyond).
 */
import { badRequest } from '../core/app-error.js';
import { histogramQuantile } from './duckdb-metrics.js';
import { expDelta, expMerge, expQuantile, parseExpHistogram, summaryQuantile, type ExpHistogram } from './metric-distributions.js';
import { MAX_TIME_US, MIN_TIME_US, num, parseJsonText, str, type ChParams, type ChRow, type ChSql } from './clickhouse-sql.js';
import type { MetricQuery, MetricSeries } from './store.js';

const US = 1_000_000;
const MAX_BUCKETS = 20_000;
const MAX_POINTS = 500_000;
const LABEL_COLUMNS = new Set(['service', 'version', 'environment']);
const AGGS: Record<string, string> = { avg: 'avg', min: 'min', max: 'max' };
const QUANTILES: Record<string, number> = { p50: 0.5, p95: 0.95, p99: 0.99 };
/** A time bound (µs) as a DateTime64(9), clamped to the range of stored times (clickhouse-sql.ts). */
const at = (param: string): string =>
  `fromUnixTimestamp64Micro(greatest(least({${param}:Int64}, ${MAX_TIME_US}), ${MIN_TIME_US}), 'UTC')`;

interface Acc { labels: string[]; value: number }

export async function queryMetric(sql: ChSql, q: MetricQuery): Promise<MetricSeries[]> {
  const stepS = Math.max(1, Math.floor(q.stepS));
  const stepUs = stepS * US;
  const first = Math.floor(q.fromUs / stepUs) * stepUs;
  const end = Math.ceil(q.toUs / stepUs) * stepUs;
  if (end <= first) return [];
  if ((end - first) / stepUs > MAX_BUCKETS) throw badRequest(`at most ${MAX_BUCKETS} buckets per query`, { stepS });
  if (!(q.agg in AGGS) && q.agg !== 'sum' && q.agg !== 'rate' && !(q.agg in QUANTILES)) throw badRequest(`unknown aggregation ${String(q.agg)}`);

  const params: ChParams = { name: q.name, lo: first, hi: end, step: stepUs };
  // An attribute label: a string attribute's text, other values their JSON text, '' when absent.
  const labels = q.groupBy.map((key, i) => {
    if (LABEL_COLUMNS.has(key)) return `${key} AS l${i}`;
    params[`gk${i}`] = key;
    const v = `attrs[{gk${i}:String}]`;
    return `multiIf(NOT mapContains(attrs, {gk${i}:String}), '', startsWith(${v}, '"'), JSONExtractString(${v}), ${v}) AS l${i}`;
  });
  const sel = labels.map((l) => `, ${l}`).join('');
  let where = 'name = {name:String}';
  if (q.service !== undefined) { where += ' AND service = {service:String}'; params.service = q.service; }
  const labelsOf = (r: ChRow): string[] => q.groupBy.map((_, i) => str(r[`l${i}`]));

  const acc = new Map<string, Map<number, Acc>>();
  const put = (b: number, ls: string[], v: number | null): void => {
    if (v === null) return;
    const key = JSON.stringify(ls);
    let s = acc.get(key);
    if (!s) { s = new Map(); acc.set(key, s); }
    s.set(b, { labels: ls, value: v });
  };

  if (q.agg in AGGS) {
    const rows = await sql.rows(`SELECT intDiv(toUnixTimestamp64Micro(time), {step:Int64}) * {step:Int64} AS b${sel}, ${AGGS[q.agg]}(value) AS v
      FROM metric_points WHERE ${where} AND type IN ('gauge', 'sum') AND NOT isNaN(value)
        AND time >= ${at('lo')} AND time < ${at('hi')} GROUP BY ALL`, params);
    for (const r of rows) put(num(r.b), labelsOf(r), num(r.v));
  } else {
    // Rates and deltas look back for each series' previous point.
    params.lb = first - Math.max(stepUs, 300 * US);
    const types = q.agg === 'rate' ? "'sum'" : q.agg === 'sum' ? "'sum', 'gauge'" : "'histogram', 'exp_histogram', 'summary'";
    const pts = await sql.rows(`SELECT toUnixTimestamp64Micro(time) AS t, toUnixTimestamp64Micro(start_time) AS s, type, temporality,
        is_monotonic, value, count, min, max, detail, toString(cityHash64(type, service, version, environment, resource_attrs, attrs)) AS series${sel}
      FROM metric_points WHERE ${where} AND type IN (${types}) AND time >= ${at('lb')} AND time < ${at('hi')}
      ORDER BY series, time LIMIT ${MAX_POINTS + 1}`, params);
    if (pts.length > MAX_POINTS) throw badRequest(`more than ${MAX_POINTS} metric points in the range: narrow it or filter by service`);
    const sums = new Map<string, { ls: string[]; b: number; v: number }>();
    const hists = new Map<string, { ls: string[]; b: number; byBounds: Map<string, number[]> }>();
    const exps = new Map<string, { ls: string[]; b: number; h: ExpHistogram }>();
    const summaries = new Map<string, { ls: string[]; b: number; latest: Map<string, { t: number; v: number; w: number }> }>();
    let prev: { series: string; r: ChRow; counts?: number[]; exp?: ExpHistogram } | undefined;
    for (const r of pts) {
      const series = str(r.series);
      const t = num(r.t), start = num(r.s), type = str(r.type);
      const before = prev?.series === series ? prev : undefined;
      const cur: NonNullable<typeof prev> = { series, r };
      prev = cur;
      const b = Math.floor(t / stepUs) * stepUs;
      const ls = labelsOf(r);
      const key = JSON.stringify([b, ...ls]);
      const cumulative = num(r.temporality) === 2;
      const reset = before !== undefined && start > num(before.r.s);
      if (type === 'gauge' || type === 'sum') {
        const value = r.value === null ? NaN : num(r.value);
        if (Number.isNaN(value)) { prev = before; continue; }
        if (t < first) continue;
        let add: number;
        if (type === 'gauge' || !cumulative) add = value;
        else if (!before) add = start >= first ? value : 0;
        else if (reset || (r.is_monotonic === true && value < num(before.r.value))) add = value;
        else add = value - num(before.r.value);
        const s = sums.get(key);
        if (s) s.v += add; else sums.set(key, { ls, b, v: add });
      } else if (type === 'histogram') {
        const d = parseJsonText<{ bounds?: number[]; counts?: number[] }>(r.detail, {});
        const counts = d.counts ?? [];
        cur.counts = counts;
        if (t < first) continue;
        let delta: number[] | undefined;
        if (!cumulative) delta = counts;
        else if (!before || !before.counts) delta = start >= first ? counts : undefined;
        else if (reset || num(r.count) < num(before.r.count) || counts.length !== before.counts.length) delta = counts;
        else delta = counts.map((c, i) => c - before.counts![i]);
        if (!delta) continue;
        let h = hists.get(key);
        if (!h) { h = { ls, b, byBounds: new Map() }; hists.set(key, h); }
        const bk = JSON.stringify(d.bounds ?? []);
        const into = h.byBounds.get(bk) ?? [];
        delta.forEach((c, i) => { into[i] = (into[i] ?? 0) + c; });
        h.byBounds.set(bk, into);
      } else if (type === 'exp_histogram') {
        const h = parseExpHistogram(str(r.detail), num(r.count), r.min === null ? NaN : num(r.min), r.max === null ? NaN : num(r.max));
        cur.exp = h;
        if (t < first) continue;
        let delta: ExpHistogram | undefined;
        if (!cumulative) delta = h;
        else if (!before || !before.exp) delta = start >= first ? h : undefined;
        else if (reset || h.count < before.exp.count) delta = h;
        else delta = { ...expDelta(h, before.exp), min: NaN, max: NaN }; // lifetime min/max say nothing of the delta
        if (!delta) continue;
        const g = exps.get(key);
        if (!g) exps.set(key, { ls, b, h: delta }); else g.h = expMerge(g.h, delta);
      } else if (type === 'summary') {
        if (t < first) continue;
        const v = summaryQuantile(str(r.detail), QUANTILES[q.agg]);
        if (v === null) continue;
        let g = summaries.get(key);
        if (!g) { g = { ls, b, latest: new Map() }; summaries.set(key, g); }
        const old = g.latest.get(series);
        if (old === undefined || t >= old.t) g.latest.set(series, { t, v, w: Math.max(1, num(r.count)) });
      }
    }
    const div = q.agg === 'rate' ? stepS : 1;
    for (const s of sums.values()) put(s.b, s.ls, s.v / div);
    for (const h of hists.values()) {
      let best: [string, number[]] | undefined;
      let bestTotal = -1;
      for (const [bounds, counts] of h.byBounds) {
        const total = counts.reduce((a, c) => a + (c ?? 0), 0);
        if (total > bestTotal) { best = [bounds, counts]; bestTotal = total; }
      }
      if (best) put(h.b, h.ls, histogramQuantile(JSON.parse(best[0]) as number[], Array.from(best[1], (c) => c ?? 0), QUANTILES[q.agg]));
    }
    for (const g of exps.values()) put(g.b, g.ls, expQuantile(g.h, QUANTILES[q.agg]));
    for (const g of summaries.values()) {
      let ws = 0, w = 0;
      for (const x of g.latest.values()) { ws += x.v * x.w; w += x.w; }
      put(g.b, g.ls, w > 0 ? ws / w : null);
    }
  }

  return [...acc.keys()].sort().map((k) => {
    const s = acc.get(k)!;
    const labelValues = (JSON.parse(k) as string[]);
    const points: Array<[number, number | null]> = [];
    for (let t = first; t < end; t += stepUs) points.push([t, s.get(t)?.value ?? null]);
    return { labels: Object.fromEntries(q.groupBy.map((g, i) => [g, labelValues[i]])), points };
  });
}
