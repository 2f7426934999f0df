/**
 * DuckDB tables of the telemetry store.
 *
 * Times are BIGINT microseconds, not TIMESTAMP: both are the same int64 with the same min/max
 * zone maps, but BIGINT needs no conversion on the hot append path nor in query parameters and
 * results (the store API speaks µs numbers); `make_timestamp(start_us)` gives a TIMESTAMP when a
 * human wants one. Trace and span ids are UHUGEINT / UBIGINT (16 / 8 bytes, compared as integers)
 * instead of 32 / 16 hex characters; an absent id is 0.
 *
 * No ART indexes on the large tables: rows arrive roughly in time order, so time predicates
 * prune row groups through zone maps, and trace lookups get their time ranges from TraceIndex.
 * An index would slow every append and live in memory.
 */
import { columnDdl, type ColumnSpec } from './duckdb-chunks.js';

export const SPAN_COLUMNS: readonly ColumnSpec[] = [
  { name: 'start_us', kind: 'i64', field: 'startUs' },
  { name: 'trace_id', kind: 'hex128', field: 'traceId' },
  { name: 'span_id', kind: 'hex64', field: 'spanId' },
  { name: 'parent_span_id', kind: 'hex64', field: 'parentSpanId' },
  { name: 'name', kind: 'strLow', field: 'name' },
  { name: 'kind', kind: 'u8', field: 'kind' },
  { name: 'duration_ns', kind: 'i64', field: 'durationNs' },
  { name: 'status_code', kind: 'u8', field: 'statusCode' },
  { name: 'status_message', kind: 'str', field: 'statusMessage' },
  { name: 'service', kind: 'strLow', field: 'service' },
  { name: 'version', kind: 'strLow', field: 'version' },
  { name: 'environment', kind: 'strLow', field: 'environment' },
  { name: 'resource_id', kind: 'words64', field: 'resourceId' },
  { name: 'trace_state', kind: 'str', field: 'traceState' },
  { name: 'attrs', kind: 'str', field: 'attrs' },
  { name: 'events', kind: 'str', field: 'events' },
  { name: 'links', kind: 'str', field: 'links' },
  /** When the row was committed (µs); rollup recovery replays rows newer than its watermark. */
  { name: 'ingested_us', kind: 'i64', field: 'ingestedUs' },
];

export const LOG_COLUMNS: readonly ColumnSpec[] = [
  { name: 'time_us', kind: 'i64', field: 'timeUs' },
  { name: 'observed_time_us', kind: 'i64', field: 'observedTimeUs' },
  { name: 'severity_number', kind: 'u8', field: 'severityNumber' },
  { name: 'severity_text', kind: 'strLow', field: 'severityText' },
  { name: 'body', kind: 'str', field: 'body' },
  { name: 'trace_id', kind: 'hex128', field: 'traceId' },
  { name: 'span_id', kind: 'hex64', field: 'spanId' },
  { name: 'flags', kind: 'u32', field: 'flags' },
  { name: 'service', kind: 'strLow', field: 'service' },
  { name: 'version', kind: 'strLow', field: 'version' },
  { name: 'environment', kind: 'strLow', field: 'environment' },
  { name: 'resource_id', kind: 'words64', field: 'resourceId' },
  { name: 'attrs', kind: 'str', field: 'attrs' },
  /** Last: data dirs from before it get it by ALTER TABLE (SCHEMA_DDL), appended in this order. */
  { name: 'event_name', kind: 'strLow', field: 'eventName' },
];

export const METRIC_COLUMNS: readonly ColumnSpec[] = [
  { name: 'time_us', kind: 'i64', field: 'timeUs' },
  { name: 'start_time_us', kind: 'i64', field: 'startTimeUs' },
  { name: 'name', kind: 'strLow', field: 'name' },
  { name: 'description', kind: 'strLow', field: 'description' },
  { name: 'unit', kind: 'strLow', field: 'unit' },
  { name: 'type', kind: 'strLow', field: 'type' },
  { name: 'temporality', kind: 'u8', field: 'temporality' },
  { name: 'is_monotonic', kind: 'bool', field: 'isMonotonic' },
  { name: 'value', kind: 'f64', field: 'value' },
  { name: 'count', kind: 'f64', field: 'count' },
  { name: 'sum', kind: 'f64', field: 'sum' },
  { name: 'min', kind: 'f64', field: 'min' },
  { name: 'max', kind: 'f64', field: 'max' },
  { name: 'detail', kind: 'str', field: 'detail' },
  { name: 'service', kind: 'strLow', field: 'service' },
  { name: 'version', kind: 'strLow', field: 'version' },
  { name: 'environment', kind: 'strLow', field: 'environment' },
  { name: 'resource_id', kind: 'words64', field: 'resourceId' },
  { name: 'attrs', kind: 'str', field: 'attrs' },
];

/** Rollup rows (RollupRow): sketch bins as parallel keys/counts lists, mergeable in SQL. */
export const ROLLUP_COLUMNS: readonly ColumnSpec[] = [
  { name: 'period_us', kind: 'i64', field: 'periodUs' },
  { name: 'service', kind: 'strLow', field: 'service' },
  { name: 'operation', kind: 'strLow', field: 'operation' },
  { name: 'version', kind: 'strLow', field: 'version' },
  { name: 'environment', kind: 'strLow', field: 'environment' },
  { name: 'all_operations', kind: 'bool', field: 'allOperations' },
  { name: 'count', kind: 'i64', field: 'count' },
  { name: 'errors', kind: 'i64', field: 'errors' },
  { name: 'keys', kind: 'i16list', field: 'keys' },
  { name: 'counts', kind: 'i32list', field: 'counts' },
  /** The flush that wrote the row (RollupBuffer.flushId); 0 for rows of databases before it. */
  { name: 'flush_id', kind: 'i64', field: 'flushId' },
];

const rollupDdl = (table: string): string => `CREATE TABLE IF NOT EXISTS ${table} (${columnDdl(ROLLUP_COLUMNS)})`;

/** TraceIndex filters: one Bloom filter per minute of span starts (more for late spans). */
export const BLOOM_COLUMNS: readonly ColumnSpec[] = [
  { name: 'minute_us', kind: 'i64', field: 'minuteUs' },
  { name: 'hashes', kind: 'u8', field: 'hashes' },
  { name: 'bits', kind: 'blob', field: 'bits' },
];

export const SCHEMA_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS spans (${columnDdl(SPAN_COLUMNS)})`,
  `CREATE TABLE IF NOT EXISTS logs (${columnDdl(LOG_COLUMNS)})`,
  // Migration: logs of data dirs created before LogRecord.event_name was stored.
  `ALTER TABLE logs ADD COLUMN IF NOT EXISTS event_name VARCHAR DEFAULT ''`,
  `CREATE TABLE IF NOT EXISTS metric_points (${columnDdl(METRIC_COLUMNS)})`,
  `CREATE TABLE IF NOT EXISTS resources (resource_id UBIGINT PRIMARY KEY, attrs VARCHAR, scope_name VARCHAR, scope_version VARCHAR)`,
  // Per-second and per-minute rows of the same shape; a period may hold several partial rows
  // (late spans) that queries merge with GROUP BY.
  rollupDdl('rollup_second'),
  rollupDdl('rollup_minute'),
  // Databases from before flush ids: their rows belong to flush 0, committed long ago.
  'ALTER TABLE rollup_second ADD COLUMN IF NOT EXISTS flush_id BIGINT DEFAULT 0',
  'ALTER TABLE rollup_minute ADD COLUMN IF NOT EXISTS flush_id BIGINT DEFAULT 0',
  `CREATE TABLE IF NOT EXISTS trace_blooms (${columnDdl(BLOOM_COLUMNS)})`,
  `CREATE TABLE IF NOT EXISTS telemetry_meta (key VARCHAR PRIMARY KEY, value BIGINT)`,
  // Written by load transactions only (telemetry_meta is the rollup flush's, which may run at once).
  `CREATE TABLE IF NOT EXISTS ingest_log_state (key VARCHAR PRIMARY KEY, lsn BIGINT)`,
];

/** Rollup/index watermarks (see DuckDbTelemetryStore): what the persisted rollups cover. */
export const META_SECOND_WM = 'rollup_second_watermark';
export const META_MINUTE_WM = 'rollup_minute_watermark';
export const META_FLUSHED_SEQ = 'rollup_flushed_ingest_us';
/** Id of the last committed rollup flush (its rows carry it in `flush_id`). */
export const META_FLUSH_ID = 'rollup_flush_id';
/** With an ingest log: the log position (LSN) whose records DuckDB holds. */
export const META_LOG_LSN = 'ingest_log_loaded_lsn';
