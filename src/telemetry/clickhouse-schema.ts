/**
 * The ClickHouse schema (current ClickHouse: 24.x and later; tested on 26.7 through chdb).
 *
 * - Raw tables partitioned by UTC day (`toDate(time, 'UTC')`): retention drops whole partitions,
 *   and a TTL (`ttl_only_drop_parts`) drops them on the server's own when no node runs it.
 * - Times `DateTime64(9, 'UTC')` (OTLP's nanoseconds; tightloop's µs convert exactly) with
 *   `Delta + ZSTD`; ids hex `String` + ZSTD; repeated names `LowCardinality(String)`; attributes
 *   `Map(LowCardinality(String), String)` whose values are the attribute's JSON text (`"ann"`,
 *   `200`, `true`), so a typed value reads back typed and an exact match is a map lookup.
 * - Trace ids: a bloom filter skip index (0.1 % false positives, one filter per granule) on the
 *   spans and logs, plus `trace_times`, a per-trace first/last start table fed by a materialized
 *   view (the lookup table the OpenTelemetry Collector's exporter keeps): `getTrace` reads the
 *   trace's own time range, then the spans there through the bloom filter.
 * - RED rollups: `rollup_second` / `rollup_minute` are fed by materialized views from `spans` in
 *   the same INSERT (entry spans: SERVER, CONSUMER or no parent), per service × operation ×
 *   version × environment × period plus an all-operations series; count, errors and DDSketch bins
 *   (`Map(Int16, UInt64)`, the keys of sketch.ts) as `SimpleAggregateFunction`s that merges add.
 *   Every node's inserts add to the same rows: RED from any node reads all of them, exactly.
 * - `fsync_after_insert` / `fsync_part_directory`: an acknowledged INSERT's part is on disk.
 *   `non_replicated_deduplication_window`: an INSERT retried with its `insert_deduplication_token`
 *   is not stored twice (Replicated tables deduplicate by default).
 */
import type { RetentionDays } from './retention.js';

/** Highest DDSketch key of a nanosecond duration (sketch.ts): keys fit Int16. */
const SKETCH_KEY_SQL = 'toInt16(if(duration_ns > 1, ceil(log(duration_ns) / log(1.01 / 0.99)), 0))';

const MERGE_TREE_SETTINGS = 'fsync_after_insert = 1, fsync_part_directory = 1, non_replicated_deduplication_window = 10000';

const ttl = (expr: string, days: number | undefined): string =>
  days !== undefined && days > 0 ? `TTL toDateTime(${expr}) + INTERVAL ${Math.floor(days)} DAY DELETE` : '';

const settings = (days: number | undefined): string =>
  `SETTINGS ${MERGE_TREE_SETTINGS}${days !== undefined && days > 0 ? ', ttl_only_drop_parts = 1' : ''}`;

const RESOURCE = `service LowCardinality(String),
  version LowCardinality(String),
  environment LowCardinality(String),
  resource_attrs Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  scope_name LowCardinality(String),
  scope_version LowCardinality(String)`;

const INGEST = `ingested DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
  node LowCardinality(String)`;

function rollupTable(level: 'second' | 'minute', days: number | undefined): string {
  return `CREATE TABLE IF NOT EXISTS rollup_${level} (
  period DateTime('UTC') CODEC(Delta, ZSTD(1)),
  service LowCardinality(String),
  operation LowCardinality(String),
  version LowCardinality(String),
  environment LowCardinality(String),
  all_operations Bool,
  count SimpleAggregateFunction(sum, UInt64),
  errors SimpleAggregateFunction(sum, UInt64),
  bins SimpleAggregateFunction(sumMap, Map(Int16, UInt64)) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(period, 'UTC')
ORDER BY (service, all_operations, operation, version, environment, period)
${ttl('period', days)}
${settings(days)}`;
}

function rollupView(level: 'second' | 'minute'): string {
  const period = level === 'second' ? "toStartOfSecond(start, 'UTC')" : "toStartOfMinute(start, 'UTC')";
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_${level}_mv TO rollup_${level} AS
SELECT toDateTime(${period}, 'UTC') AS period, service, if(all_ops, '', name) AS operation, version, environment,
  all_ops = 1 AS all_operations, count() AS count, countIf(status_code = 2) AS errors,
  sumMap(map(${SKETCH_KEY_SQL}, toUInt64(1))) AS bins
FROM spans ARRAY JOIN [0, 1] AS all_ops
WHERE kind IN (2, 5) OR parent_span_id = ''
GROUP BY period, service, operation, version, environment, all_operations`;
}

/** Statements that create the schema in the current database (idempotent). */
export function clickHouseSchema(days: Partial<RetentionDays> = {}): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS spans (
  start DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
  trace_id String CODEC(ZSTD(1)),
  span_id String CODEC(ZSTD(1)),
  parent_span_id String CODEC(ZSTD(1)),
  trace_state String CODEC(ZSTD(1)),
  name LowCardinality(String),
  kind UInt8,
  duration_ns Int64 CODEC(T64, ZSTD(1)),
  status_code UInt8,
  status_message String CODEC(ZSTD(1)),
  ${RESOURCE},
  attrs Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  events String CODEC(ZSTD(1)),
  links String CODEC(ZSTD(1)),
  ${INGEST},
  INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
  INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(start, 'UTC')
ORDER BY (service, name, toStartOfMinute(start, 'UTC'), start)
${ttl('start', days.spans)}
${settings(days.spans)}`,
    `CREATE TABLE IF NOT EXISTS trace_times (
  trace_id String CODEC(ZSTD(1)),
  day Date,
  first SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
  last SimpleAggregateFunction(max, DateTime64(9, 'UTC'))
) ENGINE = AggregatingMergeTree
PARTITION BY day
ORDER BY (trace_id, day)
${ttl('day', days.spans)}
${settings(days.spans)}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS trace_times_mv TO trace_times AS
SELECT trace_id, toDate(start, 'UTC') AS day, min(start) AS first, max(start) AS last FROM spans GROUP BY trace_id, day`,
    // What each INSERT added per operation and second, kept an hour: nodes read each other's
    // committed deltas from it (detectors and verification count every node's requests).
    `CREATE TABLE IF NOT EXISTS rollup_feed (
  ingested DateTime64(6, 'UTC'),
  node LowCardinality(String),
  second DateTime('UTC'),
  service LowCardinality(String),
  operation LowCardinality(String),
  version LowCardinality(String),
  environment LowCardinality(String),
  count UInt64,
  errors UInt64,
  bins Map(Int16, UInt64)
) ENGINE = MergeTree
PARTITION BY toStartOfHour(ingested)
ORDER BY (ingested, node)
TTL toDateTime(ingested) + INTERVAL 1 HOUR DELETE
SETTINGS ${MERGE_TREE_SETTINGS}, ttl_only_drop_parts = 1`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_feed_mv TO rollup_feed AS
SELECT ingested, node, toDateTime(toStartOfSecond(start, 'UTC'), 'UTC') AS second, service, name AS operation, version, environment,
  count() AS count, countIf(status_code = 2) AS errors, sumMap(map(${SKETCH_KEY_SQL}, toUInt64(1))) AS bins
FROM spans WHERE kind IN (2, 5) OR parent_span_id = ''
GROUP BY ingested, node, second, service, operation, version, environment`,
    rollupTable('second', days.spans),
    rollupTable('minute', days.spans),
    rollupView('second'),
    rollupView('minute'),
    `CREATE TABLE IF NOT EXISTS logs (
  time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
  observed_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
  severity_number UInt8,
  severity_text LowCardinality(String),
  body String CODEC(ZSTD(1)),
  trace_id String CODEC(ZSTD(1)),
  span_id String CODEC(ZSTD(1)),
  flags UInt32,
  ${RESOURCE},
  attrs Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  event_name LowCardinality(String),
  ${INGEST},
  INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
  INDEX idx_body lowerUTF8(body) TYPE ngrambf_v1(3, 65536, 2, 0) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(time, 'UTC')
ORDER BY (service, toStartOfMinute(time, 'UTC'), time)
${ttl('time', days.logs)}
${settings(days.logs)}`,
    `CREATE TABLE IF NOT EXISTS metric_points (
  time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
  start_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
  name LowCardinality(String),
  description LowCardinality(String),
  unit LowCardinality(String),
  type LowCardinality(String),
  temporality UInt8,
  is_monotonic Bool,
  value Float64 CODEC(Gorilla, ZSTD(1)),
  count UInt64 CODEC(T64, ZSTD(1)),
  sum Float64 CODEC(Gorilla, ZSTD(1)),
  min Float64 CODEC(Gorilla, ZSTD(1)),
  max Float64 CODEC(Gorilla, ZSTD(1)),
  detail String CODEC(ZSTD(1)),
  ${RESOURCE},
  attrs Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  ${INGEST}
) ENGINE = MergeTree
PARTITION BY toDate(time, 'UTC')
ORDER BY (name, service, time)
${ttl('time', days.metrics)}
${settings(days.metrics)}`,
    ...INPUT_TABLES,
  ];
}

/**
 * Rows arrive in `*_input` tables (engine Null: nothing is stored there) as the batches' own
 * columns — times in µs, attributes as JSON text — and a materialized view converts them into the
 * stored table in the same INSERT (`DateTime64`, attribute maps), whose own views fill the rollups
 * and the trace-id table. The INSERT's deduplication token covers the whole chain.
 */
const MAP_OF_JSON = (col: string): string => `CAST(JSONExtractKeysAndValuesRaw(${col}), 'Map(String, String)')`;
const TIME = (col: string): string => `fromUnixTimestamp64Micro(${col}, 'UTC')`;
const RESOURCE_INPUT = 'service String, version String, environment String, resource_attrs String, scope_name String, scope_version String';
const RESOURCE_SELECT = `service, version, environment, ${MAP_OF_JSON('resource_attrs')} AS resource_attrs, scope_name, scope_version`;

function inputTable(table: string, columns: string, select: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table}_input (${columns}) ENGINE = Null`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${table}_input_mv TO ${table} AS SELECT ${select} FROM ${table}_input`,
  ];
}

export const INPUT_TABLES: string[] = [
  ...inputTable('spans', `start_us Int64, trace_id String, span_id String, parent_span_id String, trace_state String, name String,
  kind UInt8, duration_ns Int64, status_code UInt8, status_message String, ${RESOURCE_INPUT}, attrs String, events String, links String,
  ingested_us Int64, node String`, `${TIME('start_us')} AS start, lower(trace_id) AS trace_id, lower(span_id) AS span_id,
  lower(parent_span_id) AS parent_span_id, trace_state, name, kind, duration_ns, status_code, status_message, ${RESOURCE_SELECT},
  ${MAP_OF_JSON('attrs')} AS attrs, events, links, ${TIME('ingested_us')} AS ingested, node`),
  ...inputTable('logs', `time_us Int64, observed_us Int64, severity_number UInt8, severity_text String, body String, trace_id String,
  span_id String, flags UInt32, ${RESOURCE_INPUT}, attrs String, event_name String, ingested_us Int64, node String`,
  `${TIME('time_us')} AS time, ${TIME('observed_us')} AS observed_time, severity_number, severity_text, body,
  lower(trace_id) AS trace_id, lower(span_id) AS span_id, flags, ${RESOURCE_SELECT}, ${MAP_OF_JSON('attrs')} AS attrs, event_name,
  ${TIME('ingested_us')} AS ingested, node`),
  ...inputTable('metric_points', `time_us Int64, start_us Int64, name String, description String, unit String, type String,
  temporality UInt8, is_monotonic Bool, value Float64, count UInt64, sum Float64, min Float64, max Float64, detail String,
  ${RESOURCE_INPUT}, attrs String, ingested_us Int64, node String`, `${TIME('time_us')} AS time, ${TIME('start_us')} AS start_time,
  name, description, unit, type, temporality, is_monotonic, value, count, sum, min, max, detail, ${RESOURCE_SELECT},
  ${MAP_OF_JSON('attrs')} AS attrs, ${TIME('ingested_us')} AS ingested, node`),
];

/** RowBinary (clickhouse-rows.ts): the batches' strings copied as they are, nothing to escape. */
export const SPAN_INSERT = 'INSERT INTO spans_input FORMAT RowBinary';
export const LOG_INSERT = 'INSERT INTO logs_input FORMAT RowBinary';
export const METRIC_INSERT = 'INSERT INTO metric_points_input FORMAT RowBinary';
