/**
 * RED queries over the ClickHouse rollup tables. The materialized views fill them in the INSERT
 * of the spans (clickhouse-schema.ts), so nothing is buffered in a node: the engine merges the
 * rows of every node per bucket (`sum`, `sumMap` of the sketch bins) and the quantiles follow
 * DDSketch's rank rule over the merged bins (sketch.ts), as for DuckDB.
 */
import { badRequest } from '../core/app-error.js';
import type { RollupRow } from './rollup.js';
import { quantileFromSortedBins } from './sketch.js';
import { num, str, type ChParams, type ChRow, type ChSql } from './clickhouse-sql.js';
import type { RedBucket, RedQuery, ServiceSummary } from './store.js';

const US = 1_000_000;
const MAX_BUCKETS = 20_000;
const MERGED = 'sum(count) AS c, sum(errors) AS e, sumMap(bins) AS b';

/** Sorted keys and counts of a merged `Map(Int16, UInt64)` as JSONEachRow gives it. */
function bins(v: unknown): { keys: number[]; counts: number[] } {
  const entries = Object.entries((v ?? {}) as Record<string, unknown>).map(([k, c]) => [Number(k), num(c)] as const).sort((a, b) => a[0] - b[0]);
  return { keys: entries.map((e) => e[0]), counts: entries.map((e) => e[1]) };
}

function figures(r: ChRow | undefined, seconds: number): Omit<RedBucket, 'timeUs'> {
  const count = r ? num(r.c) : 0;
  const errors = r ? num(r.e) : 0;
  const b = bins(r?.b);
  const q = (x: number): number | null => {
    if (count === 0) return null;
    const ns = quantileFromSortedBins(b.keys, b.counts, x);
    return ns === null ? null : ns / 1e6;
  };
  return { count, errors, rate: seconds > 0 ? count / seconds : 0, errorRate: count > 0 ? errors / count : 0, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99) };
}

/** Rollup periods (whole seconds) whose start µs lies in [fromUs, toUs). */
function periodRange(fromUs: number, toUs: number, params: ChParams): string {
  params.plo = Math.ceil(fromUs / US);
  params.phi = Math.ceil(toUs / US);
  return "period >= toDateTime({plo:Int64}, 'UTC') AND period < toDateTime({phi:Int64}, 'UTC')";
}

export async function red(sql: ChSql, q: RedQuery): Promise<RedBucket[]> {
  const stepS = Math.max(1, Math.floor(q.stepS));
  const stepUs = stepS * US;
  const first = Math.floor(q.fromUs / stepUs) * stepUs;
  const end = Math.ceil(q.toUs / stepUs) * stepUs;
  if (end <= first) return [];
  if ((end - first) / stepUs > MAX_BUCKETS) throw badRequest(`at most ${MAX_BUCKETS} buckets per query`, { stepS });
  const level = stepS % 60 === 0 ? 'minute' : 'second';
  const params: ChParams = { step: stepS, service: q.service, all: q.operation === undefined };
  const where = ['service = {service:String}', 'all_operations = {all:Bool}', periodRange(first, end, params)];
  if (q.operation !== undefined) { where.push('operation = {operation:String}'); params.operation = q.operation; }
  if (q.version !== undefined) { where.push('version = {version:String}'); params.version = q.version; }
  if (q.environment !== undefined) { where.push('environment = {environment:String}'); params.environment = q.environment; }
  const rows = await sql.rows(`SELECT intDiv(toUnixTimestamp(period), {step:UInt32}) * {step:UInt32} AS g, ${MERGED}
    FROM rollup_${level} WHERE ${where.join(' AND ')} GROUP BY g`, params);
  const byBucket = new Map(rows.map((r) => [num(r.g) * US, r]));
  const out: RedBucket[] = [];
  for (let t = first; t < end; t += stepUs) out.push({ timeUs: t, ...figures(byBucket.get(t), stepS) });
  return out;
}

export async function services(sql: ChSql, fromUs: number, toUs: number): Promise<ServiceSummary[]> {
  if (toUs <= fromUs) return [];
  // Long windows read minutes; a window edge then counts its whole minute.
  const minutes = toUs - fromUs >= 2 * 3600 * US;
  const unit = minutes ? 60 * US : US;
  const params: ChParams = {};
  const range = periodRange(Math.floor(fromUs / unit) * unit, toUs, params);
  const recent: ChParams = {};
  const recentRange = periodRange(Math.max(Math.floor(fromUs / unit) * unit, toUs - 3600 * US), toUs, recent);
  const [rows, seen] = await Promise.all([
    sql.rows(`SELECT service, arraySort(groupUniqArray(version)) AS versions, arraySort(groupUniqArray(environment)) AS environments,
        toUnixTimestamp(max(period)) AS last, ${MERGED}
      FROM rollup_${minutes ? 'minute' : 'second'} WHERE all_operations AND ${range} GROUP BY service ORDER BY service`, params),
    // Last seen to the second from the last hour of seconds; older sightings to the minute.
    sql.rows(`SELECT service, toUnixTimestamp(max(period)) AS last FROM rollup_second WHERE all_operations AND ${recentRange}
      GROUP BY service`, recent),
  ]);
  const lastSecond = new Map(seen.map((r) => [str(r.service), num(r.last) * US]));
  const seconds = (toUs - fromUs) / US;
  return rows.map((r): ServiceSummary => ({
    service: str(r.service),
    versions: (r.versions as unknown[]).map(str),
    environments: (r.environments as unknown[]).map(str),
    lastSeenUs: lastSecond.get(str(r.service)) ?? num(r.last) * US,
    ...figures(r, seconds),
  }));
}

/**
 * Per-operation rollup rows with period in [fromUs, toUs), newest first, at most `limit`
 * (detectors refill their windows from these after a restart), merged across nodes and parts.
 */
export async function operationRollups(sql: ChSql, level: 'second' | 'minute', fromUs: number, toUs: number, limit: number): Promise<RollupRow[]> {
  if (toUs <= fromUs || limit <= 0) return [];
  const params: ChParams = { limit: Math.floor(limit) };
  const rows = await sql.rows(`SELECT toUnixTimestamp(period) AS p, service, operation, version, environment, ${MERGED}
    FROM rollup_${level} WHERE NOT all_operations AND ${periodRange(fromUs, toUs, params)}
    GROUP BY p, service, operation, version, environment ORDER BY p DESC LIMIT {limit:UInt32}`, params);
  return rows.map((r): RollupRow => {
    const b = bins(r.b);
    return {
      periodUs: num(r.p) * US, service: str(r.service), operation: str(r.operation), version: str(r.version),
      environment: str(r.environment), allOperations: false, count: num(r.c), errors: num(r.e), keys: b.keys, counts: b.counts,
    };
  });
}
