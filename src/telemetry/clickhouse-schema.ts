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

const ttl = (expr: string, days: number | undefined): string =>
  days !== undefined && days > 0 ? `TTL toDateTime(${expr}) + INTERVAL ${Math.floor(days)} DAY DELETE` : '';

/**
 * Where the tables go. Single server: each table is itself (`MergeTree`). Cluster
 * (`--clickhouse-cluster NAME`): each stored table `T` is `T_local` on every server of the cluster
 * (`Replicated…MergeTree`, keeper path by shard and database), under a `Distributed` table `T`
 * that the queries and the input views use unchanged; the views that derive rollups and the
 * trace-id table read `spans_local` and write the derived `_local` tables on each shard, so each
 * shard aggregates its own spans and reads merge them (`sum`, `sumMap`, `min`, `max`). Every
 * statement carries `ON CLUSTER NAME`. Spans and the trace-id table are sharded by trace id (a
 * trace lives on one shard), the rest at random.
 */
export interface SchemaLayout {
  /** `ON CLUSTER name` or ''. */
  on: string;
  /** The name a stored table is created under (`T` or `T_local`). */
  local(table: string): string;
  /** The engine of a stored table: `MergeTree` / `AggregatingMergeTree`, or their Replicated forms. */
  engine(table: string, kind: 'MergeTree' | 'AggregatingMergeTree'): string;
  settings(days: number | undefined): string;
  /** The Distributed table over `T_local` (cluster), or nothing. */
  distributed(table: string, shardKey: string): string[];
}

const MERGE_TREE_SETTINGS = 'fsync_after_insert = 1, fsync_part_directory = 1';

export function schemaLayout(cluster?: string): SchemaLayout {
  const ttlSettings = (days: number | undefined): string => (days !== undefined && days > 0 ? ', ttl_only_drop_parts = 1' : '');
  if (cluster === undefined) {
    return {
      on: '',
      local: (t) => t,
      engine: (_t, kind) => kind,
      // Replicated tables deduplicate retried INSERTs by default; plain MergeTree only with a window.
      settings: (days) => `SETTINGS ${MERGE_TREE_SETTINGS}, non_replicated_deduplication_window = 10000${ttlSettings(days)}`,
      distributed: () => [],
    };
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(cluster)) throw new Error(`ClickHouse cluster name ${JSON.stringify(cluster)} is not a plain identifier`);
  const on = `ON CLUSTER ${cluster}`;
  return {
    on,
    local: (t) => `${t}_local`,
    engine: (t, kind) => `Replicated${kind}('/clickhouse/tables/{shard}/{database}/${t}_local', '{replica}')`,
    settings: (days) => `SETTINGS ${MERGE_TREE_SETTINGS}${ttlSettings(days)}`,
    distributed: (t, key) => [`CREATE TABLE IF NOT EXISTS ${t} ${on} AS ${t}_local ENGINE = Distributed(${cluster}, currentDatabase(), ${t}_local, ${key})`],
  };
}

const RESOURCE = `service LowCardinality(String),
  version LowCardinality(String),
  environment LowCardinality(String),
  resource_attrs Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  scope_name LowCardinality(String),
  scope_version LowCardinality(String)`;

const INGEST = `ingested DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
  node LowCardinality(String)`;

function rollupTable(L: SchemaLayout, level: 'second' | 'minute', days: number | undefined): string[] {
  return [`CREATE TABLE IF NOT EXISTS ${L.local(`rollup_${level}`)} ${L.on} (
  period DateTime('UTC') CODEC(Delta, ZSTD(1)),
  service LowCardinality(String),
  operation LowCardinality(String),
  version LowCardinality(String),
  environment LowCardinality(String),
  all_operations Bool,
  count SimpleAggregateFunction(sum, UInt64),
  errors SimpleAggregateFunction(sum, UInt64),
  bins SimpleAggregateFunction(sumMap, Map(Int16, UInt64)) CODEC(ZSTD(1))
) ENGINE = ${L.engine(`rollup_${level}`, 'AggregatingMergeTree')}
PARTITION BY toDate(period, 'UTC')
ORDER BY (service, all_operations, operation, version, environment, period)
${ttl('period', days)}
${L.settings(days)}`, ...L.distributed(`rollup_${level}`, 'rand()')];
}

function rollupView(L: SchemaLayout, level: 'second' | 'minute'): string {
  const period = level === 'second' ? "toStartOfSecond(start, 'UTC')" : "toStartOfMinute(start, 'UTC')";
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_${level}_mv ${L.on} TO ${L.local(`rollup_${level}`)} AS
SELECT toDateTime(${period}, 'UTC') AS period, service, if(all_ops, '', name) AS operation, version, environment,
  all_ops = 1 AS all_operations, count() AS count, countIf(status_code = 2) AS errors,
  sumMap(map(${SKETCH_KEY_SQL}, toUInt64(1))) AS bins
FROM ${L.local('spans')} ARRAY JOIN [0, 1] AS all_ops
WHERE kind IN (2, 5) OR parent_span_id = ''
GROUP BY period, service, operation, version, environment, all_operations`;
}

/** Statements that create the schema in the current database (idempotent); `cluster`: see SchemaLayout. */
export function clickHouseSchema(days: Partial<RetentionDays> = {}, cluster?: string): string[] {
  const L = schemaLayout(cluster);
  return [
    `CREATE TABLE IF NOT EXISTS ${L.local('spans')} ${L.on} (
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
) ENGINE = ${L.engine('spans', 'MergeTree')}
PARTITION BY toDate(start, 'UTC')
ORDER BY (service, name, toStartOfMinute(start, 'UTC'), start)
${ttl('start', days.spans)}
${L.settings(days.spans)}`,
    ...L.distributed('spans', 'cityHash64(trace_id)'),
    `CREATE TABLE IF NOT EXISTS ${L.local('trace_times')} ${L.on} (
  trace_id String CODEC(ZSTD(1)),
  day Date,
  first SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
  last SimpleAggregateFunction(max, DateTime64(9, 'UTC'))
) ENGINE = ${L.engine('trace_times', 'AggregatingMergeTree')}
PARTITION BY day
ORDER BY (trace_id, day)
${ttl('day', days.spans)}
${L.settings(days.spans)}`,
    ...L.distributed('trace_times', 'cityHash64(trace_id)'),
    `CREATE MATERIALIZED VIEW IF NOT EXISTS trace_times_mv ${L.on} TO ${L.local('trace_times')} AS
SELECT trace_id, toDate(start, 'UTC') AS day, min(start) AS first, max(start) AS last FROM ${L.local('spans')} GROUP BY trace_id, day`,
    // What each INSERT added per operation and second, kept an hour: nodes read each other's
    // committed deltas from it (detectors and verification count every node's requests).
    `CREATE TABLE IF NOT EXISTS ${L.local('rollup_feed')} ${L.on} (
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
) ENGINE = ${L.engine('rollup_feed', 'MergeTree')}
PARTITION BY toStartOfHour(ingested)
ORDER BY (ingested, node)
TTL toDateTime(ingested) + INTERVAL 1 HOUR DELETE
${L.settings(1)}`,
    ...L.distributed('rollup_feed', 'rand()'),
    `CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_feed_mv ${L.on} TO ${L.local('rollup_feed')} AS
SELECT ingested, node, toDateTime(toStartOfSecond(start, 'UTC'), 'UTC') AS second, service, name AS operation, version, environment,
  count() AS count, countIf(status_code = 2) AS errors, sumMap(map(${SKETCH_KEY_SQL}, toUInt64(1))) AS bins
FROM ${L.local('spans')} WHERE kind IN (2, 5) OR parent_span_id = ''
GROUP BY ingested, node, second, service, operation, version, environment`,
    ...rollupTable(L, 'second', days.spans),
    ...rollupTable(L, 'minute', days.spans),
    rollupView(L, 'second'),
    rollupView(L, 'minute'),
    `CREATE TABLE IF NOT EXISTS ${L.local('logs')} ${L.on} (
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
) ENGINE = ${L.engine('logs', 'MergeTree')}
PARTITION BY toDate(time, 'UTC')
ORDER BY (service, toStartOfMinute(time, 'UTC'), time)
${ttl('time', days.logs)}
${L.settings(days.logs)}`,
    ...L.distributed('logs', 'rand()'),
    `CREATE TABLE IF NOT EXISTS ${L.local('metric_points')} ${L.on} (
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
) ENGINE = ${L.engine('metric_points', 'MergeTree')}
PARTITION BY toDate(time, 'UTC')
ORDER BY (name, service, time)
${ttl('time', days.metrics)}
${L.settings(days.metrics)}`,
    ...L.distributed('metric_points', 'rand()'),
    ...inputTables(L),
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

function inputTable(L: SchemaLayout, table: string, columns: string, select: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table}_input ${L.on} (${columns}) ENGINE = Null`,
    // Into the table the queries read: on a cluster the Distributed table, which shards the rows.
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${table}_input_mv ${L.on} TO ${table} AS SELECT ${select} FROM ${table}_input`,
  ];
}

const inputTables = (L: SchemaLayout): string[] => [
  ...inputTable(L, 'spans', `start_us Int64, trace_id String, span_id String, parent_span_id String, trace_state String, name String,
  kind UInt8, duration_ns Int64, status_code UInt8, status_message String, ${RESOURCE_INPUT}, attrs String, events String, links String,
  ingested_us Int64, node String`, `${TIME('start_us')} AS start, lower(trace_id) AS trace_id, lower(span_id) AS span_id,
  lower(parent_span_id) AS parent_span_id, trace_state, name, kind, duration_ns, status_code, status_message, ${RESOURCE_SELECT},
  ${MAP_OF_JSON('attrs')} AS attrs, events, links, ${TIME('ingested_us')} AS ingested, node`),
  ...inputTable(L, 'logs', `time_us Int64, observed_us Int64, severity_number UInt8, severity_text String, body String, trace_id String,
  span_id String, flags UInt32, ${RESOURCE_INPUT}, attrs String, event_name String, ingested_us Int64, node String`,
  `${TIME('time_us')} AS time, ${TIME('observed_us')} AS observed_time, severity_number, severity_text, body,
  lower(trace_id) AS trace_id, lower(span_id) AS span_id, flags, ${RESOURCE_SELECT}, ${MAP_OF_JSON('attrs')} AS attrs, event_name,
  ${TIME('ingested_us')} AS ingested, node`),
  ...inputTable(L, 'metric_points', `time_us Int64, start_us Int64, name String, description String, unit String, type String,
  temporality UInt8, is_monotonic Bool, value Float64, count UInt64, sum Float64, min Float64, max Float64, detail String,
  ${RESOURCE_INPUT}, attrs String, ingested_us Int64, node String`, `${TIME('time_us')} AS time, ${TIME('start_us')} AS start_time,
  name, description, unit, type, temporality, is_monotonic, value, count, sum, min, max, detail, ${RESOURCE_SELECT},
  ${MAP_OF_JSON('attrs')} AS attrs, ${TIME('ingested_us')} AS ingested, node`),
];

/** RowBinary (clickhouse-rows.ts): the batches' strings copied as they are, nothing to escape. */
export const SPAN_INSERT = 'INSERT INTO spans_input FORMAT RowBinary';
export const LOG_INSERT = 'INSERT INTO logs_input FORMAT RowBinary';
export const METRIC_INSERT = 'INSERT INTO metric_points_input FORMAT RowBinary';
