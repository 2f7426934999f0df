/**
 * RED queries over the rollup tables. SQL selects the rollup rows (zone maps on period_us keep
 * that to the range); counts, errors and sketch bins are merged per bucket in JS
 * (duckdb-rollup-read.ts) together with the rollups still buffered in memory — those hold exactly
 * what is not persisted yet, so a span is counted as soon as its append returns. Quantiles
 * follow the DDSketch rank rule. Steps that are whole
 * minutes read the minute table (1,440 rows per series per day instead of 86,400);
 * service-level queries read the all-operations series.
 */
import type { DuckDBDataChunk } from '@duckdb/node-api';
import { badRequest } from '../core/app-error.js';
import type { RedBucket, RedQuery, ServiceSummary } from './store.js';
import { num, str, type SqlParams, type SqlRunner } from './duckdb-sql.js';
import { int64s, mergeRollupResult, type MergedRollup } from './duckdb-rollup-read.js';
import type { RollupBuffer, RollupRow } from './rollup.js';

const US = 1_000_000;
const MAX_BUCKETS = 20_000;
const ROLLUP_COLUMNS = 'count, errors, keys, counts';

function redFigures(m: MergedRollup | undefined, seconds: number): Omit<RedBucket, 'timeUs'> {
  const count = m?.count ?? 0;
  const errors = m?.errors ?? 0;
  return {
    count,
    errors,
    rate: seconds > 0 ? count / seconds : 0,
    errorRate: count > 0 ? errors / count : 0,
    p50Ms: count > 0 ? m?.p50Ms ?? null : null,
    p95Ms: count > 0 ? m?.p95Ms ?? null : null,
    p99Ms: count > 0 ? m?.p99Ms ?? null : null,
  };
}

/** The all-operations series unless an operation is asked for (the JS twin of seriesWhere). */
function seriesMatch(q: RedQuery): (r: RollupRow) => boolean {
  return (r) => r.service === q.service && (q.operation === undefined ? r.allOperations : !r.allOperations && r.operation === q.operation)
    && (q.version === undefined || r.version === q.version) && (q.environment === undefined || r.environment === q.environment);
}

function seriesWhere(q: RedQuery, params: SqlParams): string {
  const where = ['service = $service'];
  params.service = q.service;
  if (q.operation !== undefined) {
    where.push('NOT all_operations AND operation = $operation');
    params.operation = q.operation;
  } else {
    where.push('all_operations');
  }
  if (q.version !== undefined) { where.push('version = $version'); params.version = q.version; }
  if (q.environment !== undefined) { where.push('environment = $environment'); params.environment = q.environment; }
  return where.join(' AND ');
}

export async function red(sql: SqlRunner, buffer: RollupBuffer, q: RedQuery): Promise<RedBucket[]> {
  const stepS = Math.max(1, Math.floor(q.stepS));
  const stepUs = stepS * US;
  const first = Math.floor(q.fromUs / stepUs) * stepUs;
  const end = Math.ceil(q.toUs / stepUs) * stepUs;
  if (end <= first) return [];
  if ((end - first) / stepUs > MAX_BUCKETS) throw badRequest(`at most ${MAX_BUCKETS} buckets per query`, { stepS });
  const level = stepS % 60 === 0 ? 'minute' : 'second';
  const table = `rollup_${level}`;
  const params: SqlParams = { step: stepUs, lo: first, hi: end };
  const where = `period_us >= $lo::BIGINT AND period_us < $hi::BIGINT AND flush_id <= $fid::BIGINT AND ${seriesWhere(q, params)}`;
  const [result, buffered] = await consistently(buffer, (fid) => sql.result(`SELECT (period_us // $step::BIGINT) * $step::BIGINT AS g,
    ${ROLLUP_COLUMNS} FROM ${table} WHERE ${where}`, { ...params, fid }), () => buffer.buffered(level, first, end));
  const match = seriesMatch(q);
  const extra = buffered.filter(match).map((r): [number, RollupRow] => [Math.floor(r.periodUs / stepUs) * stepUs, r]);
  const merged = mergeRollupResult(result, (chunk, rows) => int64s(chunk, 0, rows), extra);
  const out: RedBucket[] = [];
  for (let t = first; t < end; t += stepUs) out.push({ timeUs: t, ...redFigures(merged.get(t), stepS) });
  return out;
}

/**
 * Takes `snapshot` of the buffer and runs `query` over the rollup rows of flushes up to the
 * buffer's flush id at that moment (`flush_id <= $fid`): the buffer holds exactly what those
 * flushes lack, so every span is counted once whenever a flush commits meanwhile (its rows carry
 * a higher id; the buffer keeps them until it has committed). Only retention, which deletes
 * persisted rows and drops buffered ones, makes a read that spanned it retry.
 */
async function consistently<Q, B>(buffer: RollupBuffer, query: (fid: number) => Promise<Q>, snapshot: () => B): Promise<[Q, B]> {
  for (let attempt = 0; ; attempt++) {
    const epoch = buffer.epoch;
    const fid = buffer.flushId;
    const b = snapshot();
    const q = await query(fid);
    if (buffer.epoch === epoch || attempt === 3) return [q, b];
  }
}

function strings(chunk: DuckDBDataChunk, rows: number): string[] {
  const v = chunk.getColumnVector(0);
  return Array.from({ length: rows }, (_, i) => str(v.getItem(i)));
}

export async function services(sql: SqlRunner, buffer: RollupBuffer, fromUs: number, toUs: number): Promise<ServiceSummary[]> {
  if (toUs <= fromUs) return [];
  // Long windows read minutes; a window edge then counts its whole minute.
  const minutes = toUs - fromUs >= 2 * 3600 * US;
  const unit = minutes ? 60 * US : US;
  const table = minutes ? 'rollup_minute' : 'rollup_second';
  const params: SqlParams = { lo: Math.floor(fromUs / unit) * unit, hi: toUs };
  const where = 'all_operations AND period_us >= $lo::BIGINT AND period_us < $hi::BIGINT AND flush_id <= $fid::BIGINT';
  // Last seen to the second from the last hour of seconds; older sightings to the minute.
  const recent: SqlParams = { lo: Math.max(params.lo as number, toUs - 3600 * US), hi: toUs };
  const [[labels, bins, seen], [allBuffered, bufferedSeconds]] = await consistently(buffer, (fid) => Promise.all([
    sql.rows(`SELECT service, list(DISTINCT version ORDER BY version) AS versions,
      list(DISTINCT environment ORDER BY environment) AS environments, max(period_us) AS last
      FROM ${table} WHERE ${where} GROUP BY service`, { ...params, fid }),
    sql.result(`SELECT service, ${ROLLUP_COLUMNS} FROM ${table} WHERE ${where}`, { ...params, fid }),
    sql.rows(`SELECT service, max(period_us) AS last FROM rollup_second WHERE ${where} GROUP BY service`, { ...recent, fid }),
  ]), () => [buffer.buffered(minutes ? 'minute' : 'second', params.lo as number, toUs), buffer.buffered('second', toUs - 3600 * US, toUs)]);
  const buffered = allBuffered.filter((r) => r.allOperations);
  const merged = mergeRollupResult(bins, strings, buffered.map((r): [string, RollupRow] => [r.service, r]));
  const found = new Map<string, { versions: Set<string>; environments: Set<string>; last: number }>();
  const see = (service: string, versions: string[], environments: string[], last: number): void => {
    let f = found.get(service);
    if (!f) { f = { versions: new Set(), environments: new Set(), last: 0 }; found.set(service, f); }
    for (const v of versions) f.versions.add(v);
    for (const e of environments) f.environments.add(e);
    f.last = Math.max(f.last, last);
  };
  const lastSecond = new Map(seen.map((r) => [str(r.service), num(r.last)]));
  for (const r of labels) {
    const service = str(r.service);
    see(service, (r.versions as unknown[]).map(str), (r.environments as unknown[]).map(str), lastSecond.get(service) ?? num(r.last));
  }
  // Buffered seconds are the newest sightings; buffered minutes say at least "this minute".
  for (const r of buffered) see(r.service, [r.version], [r.environment], r.periodUs);
  if (minutes) for (const r of bufferedSeconds) if (r.allOperations) see(r.service, [], [], r.periodUs);
  const seconds = (toUs - fromUs) / US;
  const sorted = (set: Set<string>): string[] => [...set].sort();
  return [...found.keys()].sort().map((service): ServiceSummary => {
    const f = found.get(service)!;
    return {
      service, versions: sorted(f.versions), environments: sorted(f.environments), lastSeenUs: f.last,
      ...redFigures(merged.get(service), seconds),
    };
  });
}

/**
 * Per-operation rollup rows with period in [fromUs, toUs) at one resolution, persisted and
 * buffered, newest first, at most `limit` (detectors refill their windows from these after a
 * restart). A period may appear in several rows (late partial rows); callers add them up.
 */
export async function operationRollups(
  sql: SqlRunner, buffer: RollupBuffer, level: 'second' | 'minute', fromUs: number, toUs: number, limit: number,
): Promise<RollupRow[]> {
  if (toUs <= fromUs || limit <= 0) return [];
  const params: SqlParams = { lo: fromUs, hi: toUs, limit };
  const [rows, buffered] = await consistently(buffer, (fid) => sql.rows(`SELECT period_us, service, operation, version, environment,
    ${ROLLUP_COLUMNS} FROM rollup_${level} WHERE NOT all_operations AND period_us >= $lo::BIGINT AND period_us < $hi::BIGINT
    AND flush_id <= $fid::BIGINT ORDER BY period_us DESC LIMIT $limit::BIGINT`, { ...params, fid }), () => buffer.buffered(level, fromUs, toUs));
  const out: RollupRow[] = buffered.filter((r) => !r.allOperations);
  for (const r of rows) {
    if (out.length >= limit) break;
    out.push({
      periodUs: num(r.period_us), service: str(r.service), operation: str(r.operation), version: str(r.version),
      environment: str(r.environment), allOperations: false, count: num(r.count), errors: num(r.errors),
      keys: (r.keys as unknown[]).map(num), counts: (r.counts as unknown[]).map(num),
    });
  }
  return out;
}
