/**
 * telemetry/ — where spans, logs and metric points are stored and queried.
 *
 * - batch.ts: column batches, the one shape telemetry takes between decoder and store.
 * - store.ts: the TelemetryStore interface and query types; store.conformance.ts: the suite
 *   every implementation passes.
 * - duckdb-store.ts: the embedded implementation (DuckDB), with duckdb-chunks.ts (fast appends),
 *   duckdb-schema.ts, duckdb-queries/red/metrics.ts (queries).
 * - clickhouse-store.ts: the same interface on a ClickHouse server (`--telemetry clickhouse://…`),
 *   with clickhouse-schema.ts, clickhouse-queries/red/metrics.ts, clickhouse-sql.ts.
 * - rollup.ts + sketch.ts: streaming RED rollups with mergeable latency sketches;
 *   trace-index.ts: per-minute Bloom filters that turn trace-id lookups into time-range reads.
 * - writer.ts: group commit with a bounded queue; retention.ts: hourly drop of old days.
 * - bench-load.ts: synthetic data for benchmarks.
 */
export {
  emptyLogBatch, emptyMetricBatch, emptySpanBatch,
  type LogBatch, type MetricBatch, type MetricType, type ResourceColumns, type SpanBatch,
} from './batch.js';
export type {
  LogFilter, LogQuery, LogRow, LogVolumeBucket, LogVolumeQuery, MetricAgg, MetricQuery, MetricSeries, RedBucket, RedQuery, ServiceSummary, Signal,
  OtlpSource, SpanRow, TelemetryBatches, TelemetryStore, TraceQuery, TraceSummary,
} from './store.js';
export { DuckDbTelemetryStore, type CommittedBatches, type DuckDbStoreOptions } from './duckdb-store.js';
export { CLICKHOUSE_WRITER_OPTIONS, ClickHouseTelemetryStore, type ClickHouseStoreOptions } from './clickhouse-store.js';
export { describeClickHouse, isClickHouseUrl, parseClickHouseUrl } from './clickhouse-sql.js';
export { isEntrySpan, isEntryRow, type CommittedRollupListener, type RollupListener, type RollupSecond } from './rollup.js';
export { LatencySketch, SKETCH_RELATIVE_ACCURACY, sketchKey, sketchValue } from './sketch.js';
export { rowCount, TelemetryWriter, type TelemetryWriterOptions, type TelemetryWriterStats } from './writer.js';
export { RetentionJob, type RetentionDays, type RetentionJobOptions, type RetentionLogger } from './retention.js';
export { loadSynthetic, type SyntheticLoad, type SyntheticSample } from './bench-load.js';
