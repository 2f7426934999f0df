/**
 * Metric queries over metric_points, bucketed by step and grouped by labels ('service',
 * 'version', 'environment' columns, or record attribute keys read with json_extract_string).
 *
 * - avg/min/max: aggregates of gauge and sum values.
 * - sum: gauges add their values; sums add what each point adds — a delta point its value, a
 *   cumulative series (one series = one resource + attribute set) its increase over the series'
 *   previous point, where a restart (new start time) or, for monotonic sums, a decrease counts
 *   as a reset from 0 (as Prometheus' `increase`). So sum is the same whatever the temporality.
 * - rate (sum metrics): that same increase per second of the step.
 * - p50/p95/p99: explicit-bucket histograms: per-step bucket counts (deltas for cumulative
 *   series, as for sum) summed per bucket index, then interpolated linearly within the bucket;
 *   exponential histograms and summaries: metric-distributions.ts.
 */
import { badRequest } from '../core/app-error.js';
import type { MetricQuery, MetricSeries } from './store.js';
import { jsonPointer, num, parseJson, str, type Row, type SqlParams, type SqlRunner } from './duckdb-sql.js';
import { expDelta, expMerge, expQuantile, parseExpHistogram, summaryQuantile, type ExpHistogram } from './metric-distributions.js';

const US = 1_000_000;
const MAX_BUCKETS = 20_000;
const LABEL_COLUMNS = new Set(['service', 'version', 'environment']);
const SERIES = 'PARTITION BY service, version, environment, resource_id, attrs ORDER BY time_us';
const AGGS: Record<string, string> = { avg: 'avg', min: 'min', max: 'max' };
/** Most exponential histogram / summary points one query reads (they are merged in JS). */
const MAX_DISTRIBUTION_POINTS = 200_000;
const QUANTILES: Record<string, number> = { p50: 0.5, p95: 0.95, p99: 0.99 };

/** Linear interpolation inside the explicit bucket holding rank q·n (Prometheus-style edges). */
export function histogramQuantile(bounds: number[], counts: number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0 || bounds.length === 0) return null;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0 && cum + counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]; // overflow bucket: no upper edge
      const lower = i === 0 ? Math.min(0, bounds[0]) : bounds[i - 1];
      return lower + ((bounds[i] - lower) * (rank - cum)) / counts[i];
    }
    cum += counts[i];
  }
  return bounds[bounds.length - 1];
}

export async function queryMetric(sql: SqlRunner, q: MetricQuery): Promise<MetricSeries[]> {
  const stepS = Math.max(1, Math.floor(q.stepS));
  const stepUs = stepS * US;
  const first = Math.floor(q.fromUs / stepUs) * stepUs;
  const end = Math.ceil(q.toUs / stepUs) * stepUs;
  if (end <= first) return [];
  if ((end - first) / stepUs > MAX_BUCKETS) throw badRequest(`at most ${MAX_BUCKETS} buckets per query`, { stepS });

  const params: SqlParams = { name: q.name, step: stepUs, lo: first, hi: end };
  // Rates and histogram deltas look back for each series' previous point.
  if (!(q.agg in AGGS)) params.lb = first - Math.max(stepUs, 300 * US);
  const labels = q.groupBy.map((key, i) => {
    if (LABEL_COLUMNS.has(key)) return `${key} AS l${i}`;
    params[`gk${i}`] = jsonPointer(key);
    return `coalesce(json_extract_string(attrs, $gk${i}), '') AS l${i}`;
  });
  const labelCols = q.groupBy.map((_, i) => `l${i}`);
  const sel = labels.map((l) => `, ${l}`).join('');
  const cols = labelCols.map((l) => `, ${l}`).join('');
  let where = 'name = $name';
  if (q.service !== undefined) { where += ' AND service = $service'; params.service = q.service; }
  const bucket = '(time_us // $step::BIGINT) * $step::BIGINT AS b';

  let rows: Row[];
  if (q.agg in AGGS) {
    rows = await sql.rows(`SELECT ${bucket}${sel}, ${AGGS[q.agg]}(value) AS v FROM metric_points
      WHERE ${where} AND type IN ('gauge', 'sum') AND NOT isnan(value)
        AND time_us >= $lo::BIGINT AND time_us < $hi::BIGINT GROUP BY ALL`, params);
  } else if (q.agg === 'rate' || q.agg === 'sum') {
    // Gauges (sum only) add their values; sums what each point adds (see the top of the file).
    params.div = q.agg === 'rate' ? stepS : 1;
    rows = await sql.rows(`
      WITH pts AS (SELECT time_us, value, type, start_time_us, temporality, is_monotonic${sel},
          lag(value) OVER w AS prev_value, lag(start_time_us) OVER w AS prev_start
        FROM metric_points WHERE ${where} AND type IN ('sum'${q.agg === 'sum' ? ", 'gauge'" : ''}) AND NOT isnan(value)
          AND time_us >= $lb::BIGINT AND time_us < $hi::BIGINT
        WINDOW w AS (PARTITION BY type, service, version, environment, resource_id, attrs ORDER BY time_us))
      SELECT ${bucket}${cols}, sum(CASE
          WHEN type = 'gauge' OR temporality <> 2 THEN value
          WHEN prev_value IS NULL THEN CASE WHEN start_time_us >= $lo::BIGINT THEN value ELSE 0 END
          WHEN start_time_us > prev_start OR (is_monotonic AND value < prev_value) THEN value
          ELSE value - prev_value END) / $div::DOUBLE AS v
      FROM pts WHERE time_us >= $lo::BIGINT GROUP BY ALL`, params);
  } else if (q.agg in QUANTILES) {
    rows = await distributionRows(sql, where, sel, labelCols, params, stepUs, QUANTILES[q.agg]);
    rows.push(...histogramRows(await sql.rows(`
      WITH pts AS (SELECT time_us, temporality, start_time_us, count${sel},
          json_extract_string(detail, '$.bounds') AS bounds,
          CAST(json_extract(detail, '$.counts') AS DOUBLE[]) AS counts,
          lag(CAST(json_extract(detail, '$.counts') AS DOUBLE[])) OVER w AS prev_counts,
          lag(count) OVER w AS prev_count, lag(start_time_us) OVER w AS prev_start
        FROM metric_points WHERE ${where} AND type = 'histogram' AND time_us >= $lb::BIGINT AND time_us < $hi::BIGINT
        WINDOW w AS (${SERIES})),
      d AS (SELECT ${bucket}${cols}, bounds, CASE
          WHEN temporality = 1 THEN counts
          WHEN prev_counts IS NULL THEN CASE WHEN start_time_us >= $lo::BIGINT THEN counts END
          WHEN start_time_us > prev_start OR count < prev_count OR len(counts) <> len(prev_counts) THEN counts
          ELSE list_transform(counts, (c, i) -> c - prev_counts[i]) END AS delta
        FROM pts WHERE time_us >= $lo::BIGINT)
      SELECT b${cols}, bounds, i, sum(c) AS n
      FROM (SELECT b${cols}, bounds, unnest(delta) AS c, generate_subscripts(delta, 1) AS i FROM d WHERE delta IS NOT NULL)
      GROUP BY ALL`, params), labelCols, QUANTILES[q.agg]));
  } else {
    throw badRequest(`unknown aggregation ${String(q.agg)}`);
  }

  const series = new Map<string, { labels: Record<string, string>; values: Map<number, number> }>();
  for (const r of rows) {
    const values = labelCols.map((c) => str(r[c]));
    const key = JSON.stringify(values);
    let s = series.get(key);
    if (!s) {
      s = { labels: Object.fromEntries(q.groupBy.map((k, i) => [k, values[i]])), values: new Map() };
      series.set(key, s);
    }
    if (r.v !== null && r.v !== undefined) s.values.set(num(r.b), num(r.v));
  }
  return [...series.keys()].sort().map((k) => {
    const s = series.get(k)!;
    const points: Array<[number, number | null]> = [];
    for (let t = first; t < end; t += stepUs) points.push([t, s.values.get(t) ?? null]);
    return { labels: s.labels, points };
  });
}

/** Merges per-bucket-index counts per (step, labels) and turns them into quantile rows. */
function histogramRows(rows: Row[], labelCols: string[], q: number): Row[] {
  const groups = new Map<string, { row: Row; byBounds: Map<string, number[]> }>();
  for (const r of rows) {
    const key = JSON.stringify([num(r.b), ...labelCols.map((c) => str(r[c]))]);
    let g = groups.get(key);
    if (!g) { g = { row: r, byBounds: new Map() }; groups.set(key, g); }
    const bounds = str(r.bounds);
    let counts = g.byBounds.get(bounds);
    if (!counts) { counts = []; g.byBounds.set(bounds, counts); }
    const i = num(r.i) - 1;
    counts[i] = (counts[i] ?? 0) + num(r.n);
  }
  const out: Row[] = [];
  for (const g of groups.values()) {
    // Points of one metric normally share bounds; if not, the bounds holding most counts win.
    let best: [string, number[]] | undefined;
    let bestTotal = -1;
    for (const [bounds, counts] of g.byBounds) {
      const total = counts.reduce((a, b) => a + (b ?? 0), 0);
      if (total > bestTotal) { best = [bounds, counts]; bestTotal = total; }
    }
    if (!best) continue;
    const counts = Array.from(best[1], (c) => c ?? 0);
    out.push({ ...g.row, v: histogramQuantile(parseJson<number[]>(best[0], []), counts, q) });
  }
  return out;
}

/**
 * p50/p95/p99 rows of exponential histograms and summaries. Exponential histograms: per series
 * the delta of each point (cumulative ones against the series' previous point, with the same
 * reset rules as explicit histograms), merged per (step, labels). Summaries: per series the
 * latest point of the step, combined across series weighted by their counts.
 */
async function distributionRows(sql: SqlRunner, where: string, sel: string, labelCols: string[], params: SqlParams, stepUs: number, q: number): Promise<Row[]> {
  const bound: SqlParams = { ...params };
  delete bound.step; // every bound parameter must occur in the statement
  delete bound.lo;
  const pts = await sql.rows(`SELECT type, time_us, start_time_us, temporality, count, min, max, detail,
      concat_ws(chr(1), service, version, environment, CAST(resource_id AS VARCHAR), attrs) AS series${sel}
    FROM metric_points WHERE ${where} AND type IN ('exp_histogram', 'summary') AND time_us >= $lb::BIGINT AND time_us < $hi::BIGINT
    ORDER BY series, time_us LIMIT ${MAX_DISTRIBUTION_POINTS + 1}`, bound);
  if (pts.length > MAX_DISTRIBUTION_POINTS) {
    throw badRequest(`more than ${MAX_DISTRIBUTION_POINTS} histogram/summary points in the range: narrow it or filter by service`);
  }
  const lo = num(params.lo);
  const hist = new Map<string, { row: Row; h: ExpHistogram }>();
  const summaries = new Map<string, { row: Row; latest: Map<string, { t: number; v: number; w: number }> }>();
  let prev: { series: string; h: ExpHistogram; start: number } | undefined;
  for (const r of pts) {
    const t = num(r.time_us);
    const series = str(r.series);
    const b = Math.floor(t / stepUs) * stepUs;
    const key = JSON.stringify([b, ...labelCols.map((c) => str(r[c]))]);
    if (str(r.type) === 'summary') {
      if (t < lo) continue;
      const v = summaryQuantile(str(r.detail), q);
      if (v === null) continue;
      let g = summaries.get(key);
      if (!g) { g = { row: { ...r, b }, latest: new Map() }; summaries.set(key, g); }
      const cur = g.latest.get(series);
      if (cur === undefined || t >= cur.t) g.latest.set(series, { t, v, w: Math.max(1, num(r.count)) });
      continue;
    }
    const start = num(r.start_time_us);
    const h = parseExpHistogram(str(r.detail), num(r.count), r.min === null ? NaN : num(r.min), r.max === null ? NaN : num(r.max));
    const before = prev !== undefined && prev.series === series ? prev : undefined;
    prev = { series, h, start };
    if (t < lo) continue;
    let delta: ExpHistogram | undefined;
    if (num(r.temporality) !== 2) delta = h;
    else if (before === undefined) delta = start >= lo ? h : undefined;
    else if (start > before.start || h.count < before.h.count) delta = h;
    else delta = { ...expDelta(h, before.h), min: NaN, max: NaN }; // lifetime min/max say nothing of the delta
    if (delta === undefined) continue;
    const g = hist.get(key);
    if (!g) hist.set(key, { row: { ...r, b }, h: delta });
    else g.h = expMerge(g.h, delta);
  }
  const out: Row[] = [];
  for (const g of hist.values()) out.push({ ...g.row, v: expQuantile(g.h, q) });
  for (const g of summaries.values()) {
    let ws = 0, w = 0;
    for (const x of g.latest.values()) { ws += x.v * x.w; w += x.w; }
    out.push({ ...g.row, v: w > 0 ? ws / w : null });
  }
  return out;
}
