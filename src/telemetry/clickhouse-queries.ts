/**
 * Trace and log queries over the ClickHouse tables (clickhouse-schema.ts). Every user value is a
 * bound parameter; the SQL text is assembled only from fixed fragments.
 */
import { newestFirstWindows } from './duckdb-sql.js';
import { MAX_TIME_US, MIN_TIME_US, attrsOf, num, parseJsonText, str, type ChParams, type ChRow, type ChSql } from './clickhouse-sql.js';
import type { LogFilter, LogQuery, LogRow, LogVolumeBucket, LogVolumeQuery, SpanRow, TraceQuery, TraceSummary } from './store.js';

/** How far from where a search found a trace its other spans are looked for. */
const TRACE_REACH_US = 3600 * 1_000_000;
const HEX32 = /^[0-9a-f]{32}$/;

const SPAN_COLUMNS = `toUnixTimestamp64Micro(start) AS start_us, trace_id, span_id, parent_span_id, trace_state, name, kind,
  duration_ns, status_code, status_message, service, version, environment, resource_attrs, scope_name, scope_version, attrs, events, links`;

/** A time bound (µs) as a DateTime64(9), clamped to the range of stored times (clickhouse-sql.ts). */
const at = (param: string): string =>
  `fromUnixTimestamp64Micro(greatest(least({${param}:Int64}, ${MAX_TIME_US}), ${MIN_TIME_US}), 'UTC')`;

function spanRow(r: ChRow): SpanRow {
  return {
    traceId: str(r.trace_id), spanId: str(r.span_id), parentSpanId: str(r.parent_span_id), traceState: str(r.trace_state),
    name: str(r.name), kind: num(r.kind), startUs: num(r.start_us), durationNs: num(r.duration_ns), statusCode: num(r.status_code),
    statusMessage: str(r.status_message), service: str(r.service), version: str(r.version), environment: str(r.environment),
    resourceAttrs: attrsOf(r.resource_attrs), scopeName: str(r.scope_name), scopeVersion: str(r.scope_version),
    attrs: attrsOf(r.attrs), events: parseJsonText(r.events, []), links: parseJsonText(r.links, []),
  };
}

/**
 * The trace's first and last span start from `trace_times` (one small lookup by the sort key),
 * then its spans in that range: the day partitions and the primary key's time column narrow the
 * parts, the bloom filter index the granules.
 */
/** getTrace's query (`{tid:String}`). Scalar subqueries run first: their constants then prune partitions and granules. */
export const TRACE_SQL = `SELECT ${SPAN_COLUMNS} FROM spans WHERE trace_id = {tid:String}
    AND start >= (SELECT min(first) FROM trace_times WHERE trace_id = {tid:String})
    AND start <= (SELECT max(last) FROM trace_times WHERE trace_id = {tid:String})`;

export async function getTrace(sql: ChSql, traceId: string): Promise<SpanRow[]> {
  const tid = traceId.toLowerCase();
  if (!HEX32.test(tid)) return [];
  const rows = await sql.rows(TRACE_SQL, { tid });
  return rows.map(spanRow).sort((a, b) => a.startUs - b.startUs || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0));
}

export async function searchTraces(sql: ChSql, q: TraceQuery): Promise<TraceSummary[]> {
  const limit = Math.max(0, Math.floor(q.limit));
  if (limit === 0 || q.toUs <= q.fromUs) return [];
  const filters: string[] = [];
  const base: ChParams = {};
  if (q.service !== undefined) { filters.push('service = {service:String}'); base.service = q.service; }
  if (q.operation !== undefined) { filters.push('name = {operation:String}'); base.operation = q.operation; }
  if (q.minDurationNs !== undefined) { filters.push('duration_ns >= {minDur:Int64}'); base.minDur = Math.floor(q.minDurationNs); }
  const window = `start >= ${at('lo')} AND start < ${at('hi')}`;
  if (q.status !== undefined) {
    filters.push(`trace_id IN (SELECT trace_id FROM spans WHERE ${window} GROUP BY trace_id
      HAVING max(status_code = 2) = ${q.status === 'error' ? 1 : 0})`);
  }
  // Phase 1: the newest matching trace ids, window by window (a trace's position is its
  // earliest matching span).
  const picked: string[] = [];
  const seen = new Set<string>();
  let firstUs = Infinity, lastUs = -Infinity;
  for (const [lo, hi] of newestFirstWindows(q.fromUs, q.toUs)) {
    const rows = await sql.rows(`SELECT trace_id, toUnixTimestamp64Micro(min(start)) AS first_us FROM spans
      WHERE ${window}${filters.map((f) => ` AND ${f}`).join('')}
      GROUP BY trace_id ORDER BY first_us DESC, trace_id LIMIT {n:UInt32}`, { ...base, lo, hi, n: limit - picked.length });
    for (const r of rows) {
      const id = str(r.trace_id);
      if (!seen.has(id)) { seen.add(id); picked.push(id); }
      firstUs = Math.min(firstUs, num(r.first_us));
      lastUs = Math.max(lastUs, num(r.first_us));
    }
    if (picked.length >= limit) break;
  }
  if (picked.length === 0) return [];
  // Phase 2: summaries over all spans of those traces near where phase 1 found them.
  const rows = await sql.rows(`SELECT trace_id, toUnixTimestamp64Micro(min(start)) AS start_us,
      max(toUnixTimestamp64Micro(start) * 1000 + duration_ns) - min(toUnixTimestamp64Micro(start)) * 1000 AS duration_ns,
      count() AS span_count, countIf(status_code = 2) AS error_count, arraySort(groupUniqArray(service)) AS services,
      countIf(parent_span_id = '') AS roots,
      argMinIf(service, start, parent_span_id = '') AS root_service, argMinIf(name, start, parent_span_id = '') AS root_name,
      argMinIf(version, start, parent_span_id = '') AS root_version,
      argMin(service, start) AS first_service, argMin(name, start) AS first_name, argMin(version, start) AS first_version
    FROM spans WHERE trace_id IN {ids:Array(String)} AND ${window}
    GROUP BY trace_id`, { ids: picked, lo: firstUs - TRACE_REACH_US, hi: lastUs + TRACE_REACH_US });
  return rows
    .map((r): TraceSummary => {
      const root = num(r.roots) > 0;
      return {
        traceId: str(r.trace_id),
        rootService: str(root ? r.root_service : r.first_service),
        rootName: str(root ? r.root_name : r.first_name),
        rootVersion: str(root ? r.root_version : r.first_version),
        startUs: num(r.start_us),
        durationNs: num(r.duration_ns),
        spanCount: num(r.span_count),
        errorCount: num(r.error_count),
        services: (r.services as unknown[]).map(str),
      };
    })
    .sort((a, b) => b.startUs - a.startUs || (a.traceId < b.traceId ? -1 : 1));
}

function logRow(r: ChRow): LogRow {
  return {
    timeUs: num(r.time_us), observedTimeUs: num(r.observed_us), severityNumber: num(r.severity_number), severityText: str(r.severity_text),
    body: str(r.body), traceId: str(r.trace_id), spanId: str(r.span_id), flags: num(r.flags), service: str(r.service),
    version: str(r.version), environment: str(r.environment), resourceAttrs: attrsOf(r.resource_attrs), scopeName: str(r.scope_name),
    attrs: attrsOf(r.attrs), eventName: str(r.event_name),
  };
}

/** `text` as a LIKE pattern matching itself literally. */
const likeLiteral = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * An exact match on a stored attribute (its JSON text): a string attribute equal to `v`, or a
 * number, boolean or nested value whose JSON text is `v` (what DuckDB's json_extract_string gives).
 */
function attrFilter(i: number): string {
  const v = `attrs[{ak${i}:String}]`;
  return `mapContains(attrs, {ak${i}:String}) AND (${v} = {aj${i}:String} OR (${v} = {av${i}:String} AND NOT startsWith(${v}, '"')))`;
}

/** A log search's filters as ClickHouse conditions, or null when nothing can match. */
function logFilters(q: LogFilter): { filters: string[]; base: ChParams } | null {
  const filters: string[] = [];
  const base: ChParams = {};
  if (q.q !== undefined && q.q !== '') {
    // Case-insensitive substring; lowerUTF8(body) is what the ngram bloom filter index holds.
    filters.push('lowerUTF8(body) LIKE {pattern:String}');
    base.pattern = `%${likeLiteral(q.q.toLowerCase())}%`;
  }
  if (q.service !== undefined) { filters.push('service = {service:String}'); base.service = q.service; }
  if (q.eventName !== undefined) { filters.push('event_name = {eventName:String}'); base.eventName = q.eventName; }
  if (q.minSeverity !== undefined) { filters.push('severity_number >= {sev:Int32}'); base.sev = Math.floor(q.minSeverity); }
  if (q.traceId !== undefined) {
    const tid = q.traceId.toLowerCase();
    if (!HEX32.test(tid)) return null;
    filters.push('trace_id = {tid:String}');
    base.tid = tid;
  }
  Object.entries(q.attrs ?? {}).forEach(([k, v], i) => {
    filters.push(attrFilter(i));
    base[`ak${i}`] = k;
    base[`aj${i}`] = JSON.stringify(v);
    base[`av${i}`] = v;
  });
  return { filters, base };
}

export async function searchLogs(sql: ChSql, q: LogQuery): Promise<LogRow[]> {
  const limit = Math.max(0, Math.floor(q.limit));
  if (limit === 0 || q.toUs <= q.fromUs) return [];
  const f = logFilters(q);
  if (f === null) return [];
  const { filters, base } = f;
  const hits: ChRow[] = [];
  for (const [lo, hi] of newestFirstWindows(q.fromUs, q.toUs)) {
    const rows = await sql.rows(`SELECT toUnixTimestamp64Micro(time) AS time_us, toUnixTimestamp64Micro(observed_time) AS observed_us,
        severity_number, severity_text, body, trace_id, span_id, flags, service, version, environment, resource_attrs, scope_name,
        attrs, event_name
      FROM logs WHERE time >= ${at('lo')} AND time < ${at('hi')}${filters.map((f) => ` AND ${f}`).join('')}
      ORDER BY time DESC LIMIT {n:UInt32}`, { ...base, lo, hi, n: limit - hits.length });
    hits.push(...rows);
    if (hits.length >= limit) break;
  }
  return hits.map(logRow);
}

/** Matching lines per bucket of `stepUs` from fromUs (every line of the range, not a page of them). */
export async function logVolume(sql: ChSql, q: LogVolumeQuery): Promise<LogVolumeBucket[]> {
  const stepUs = Math.max(1, Math.floor(q.stepUs));
  if (q.toUs <= q.fromUs) return [];
  const f = logFilters(q);
  if (f === null) return [];
  const lo = Math.floor(q.fromUs);
  const rows = await sql.rows(`SELECT intDiv(toUnixTimestamp64Micro(time) - {lo:Int64}, {w:Int64}) AS i, count() AS n, countIf(severity_number >= 17) AS e
    FROM logs WHERE time >= ${at('lo')} AND time < ${at('hi')}${f.filters.map((x) => ` AND ${x}`).join('')}
    GROUP BY i ORDER BY i`, { ...f.base, lo, hi: Math.ceil(q.toUs), w: stepUs });
  return rows.map((r) => ({ timeUs: lo + num(r.i) * stepUs, count: num(r.n), errors: num(r.e) }));
}
