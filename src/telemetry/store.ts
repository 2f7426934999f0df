import { AppError } from '../core/app-error.js';
import type { LogBatch, MetricBatch, SpanBatch } from './batch.js';
import type { RollupSecond } from './rollup.js';

export type { RollupSecond } from './rollup.js';

/**
 * TelemetryStore: where spans, logs, metric points and rollups live. DuckDB is the embedded
 * implementation, ClickHouse (clickhouse-store.ts) the shared one; both pass the same conformance suite
 * (`store.conformance.ts`). Times are microseconds since the epoch, durations nanoseconds.
 */

/** What one ingest request (or a group of them) carries. Any part may be absent. */
export interface TelemetryBatches {
  spans?: SpanBatch;
  logs?: LogBatch;
  metrics?: MetricBatch;
  /**
   * The OTLP request these batches were decoded from. A store with an ingest log keeps these
   * bytes (cheaper than encoding the columns) and decodes them again after a crash.
   */
  source?: OtlpSource;
}

/**
 * An append that durably stored some of its batches and not the others — a store that writes
 * each signal apart (ClickHouse: one INSERT per table) whose INSERT of one signal failed every
 * attempt after another's succeeded. `stored[i]` (index of the `append` argument): every row of
 * batch i is stored. The writer acknowledges those requests and refuses only the others (this
 * error's 503), so a sender retries only what was not stored: refusing a stored request would
 * have its retry store the rows twice.
 */
export class PartialAppendError extends AppError {
  constructor(readonly stored: readonly boolean[], cause: AppError) {
    super(cause.code, cause.status, cause.message, { retryAfterS: cause.retryAfterS, context: cause.context, cause });
    this.name = 'PartialAppendError';
  }
}

/** An OTLP/HTTP request body, its signal and encoding. */
export interface OtlpSource {
  signal: 'traces' | 'logs' | 'metrics';
  format: 'protobuf' | 'json';
  body: Uint8Array;
}

export type Signal = 'spans' | 'logs' | 'metrics';

export interface SpanRow {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  startUs: number;
  durationNs: number;
  statusCode: number;
  statusMessage: string;
  service: string;
  version: string;
  environment: string;
  resourceAttrs: Record<string, unknown>;
  scopeName: string;
  scopeVersion: string;
  attrs: Record<string, unknown>;
  events: Array<{ timeUs: number; name: string; attrs: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string; traceState: string; attrs: Record<string, unknown> }>;
}

export interface LogRow {
  timeUs: number;
  observedTimeUs: number;
  severityNumber: number;
  severityText: string;
  body: string;
  traceId: string;
  spanId: string;
  flags: number;
  service: string;
  version: string;
  environment: string;
  resourceAttrs: Record<string, unknown>;
  scopeName: string;
  attrs: Record<string, unknown>;
  /** LogRecord.event_name; '' for plain logs. */
  eventName: string;
}

export interface TraceQuery {
  service?: string;
  operation?: string;
  minDurationNs?: number;
  /** 'error': traces with at least one error span; 'ok': traces without. */
  status?: 'error' | 'ok';
  fromUs: number;
  toUs: number;
  limit: number;
}

export interface TraceSummary {
  traceId: string;
  /** The root span's (or, when missing, the earliest span's) service and name. */
  rootService: string;
  rootName: string;
  /** The same span's service.version ('' when the resource carries none). */
  rootVersion: string;
  startUs: number;
  durationNs: number;
  spanCount: number;
  errorCount: number;
  services: string[];
}

export interface LogQuery extends LogFilter {
  limit: number;
}

/** Which log lines: the filters of a search, over [fromUs, toUs). */
export interface LogFilter {
  /** Case-insensitive substring of the body. */
  q?: string;
  service?: string;
  /** Minimum severity number (e.g. 17 = ERROR). */
  minSeverity?: number;
  traceId?: string;
  /** Exact LogRecord.event_name. */
  eventName?: string;
  /** Exact matches on record attributes (string comparison of the attribute's value). */
  attrs?: Record<string, string>;
  fromUs: number;
  toUs: number;
}

export interface LogVolumeQuery extends LogFilter {
  /** Bucket width; buckets start at fromUs. */
  stepUs: number;
}

/** Matching lines of one bucket; `errors` those of severity ERROR (17) or above. */
export interface LogVolumeBucket {
  timeUs: number;
  count: number;
  errors: number;
}

export interface RedQuery {
  service: string;
  version?: string;
  environment?: string;
  operation?: string;
  fromUs: number;
  toUs: number;
  stepS: number;
}

/** One RED bucket; latency figures are null when the bucket holds no request. */
export interface RedBucket {
  timeUs: number;
  count: number;
  errors: number;
  /** Requests per second over the bucket. */
  rate: number;
  errorRate: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface ServiceSummary {
  service: string;
  versions: string[];
  environments: string[];
  lastSeenUs: number;
  /** RED over the window given to services(). */
  count: number;
  errors: number;
  rate: number;
  errorRate: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export type MetricAgg = 'sum' | 'avg' | 'min' | 'max' | 'rate' | 'p50' | 'p95' | 'p99';

export interface MetricQuery {
  name: string;
  service?: string;
  agg: MetricAgg;
  /** Label keys: 'service', 'version', 'environment' or record attribute keys. */
  groupBy: string[];
  fromUs: number;
  toUs: number;
  stepS: number;
}

export interface MetricSeries {
  labels: Record<string, string>;
  /** [bucket start µs, value]; value null when the bucket has no data. */
  points: Array<[number, number | null]>;
}

export interface TelemetryStore {
  /** Creates tables if needed; rebuilds rollups lost in a crash. */
  open(): Promise<void>;
  /**
   * Appends every batch in one transaction; resolves once it is durably committed. A store
   * without one transaction over every signal may reject with PartialAppendError, saying which
   * batches are stored all the same.
   */
  append(batches: TelemetryBatches[]): Promise<void>;
  getTrace(traceId: string): Promise<SpanRow[]>;
  searchTraces(q: TraceQuery): Promise<TraceSummary[]>;
  searchLogs(q: LogQuery): Promise<LogRow[]>;
  /** Every matching line counted per bucket (no row limit); only non-empty buckets, oldest first. */
  logVolume(q: LogVolumeQuery): Promise<LogVolumeBucket[]>;
  red(q: RedQuery): Promise<RedBucket[]>;
  services(fromUs: number, toUs: number): Promise<ServiceSummary[]>;
  queryMetric(q: MetricQuery): Promise<MetricSeries[]>;
  /**
   * Persists buffered derived data (rollups, indexes) of every period, so rollup-based queries
   * see everything appended so far. Stores flush on their own shortly after a period closes.
   */
  flush(): Promise<void>;
  /**
   * Subscribes to rollup seconds (one row per service × operation × version × environment ×
   * second) as they are persisted — closed seconds shortly after they end, plus partial rows for
   * late spans. Returns the unsubscribe function. Listeners must not throw or block.
   */
  onRollup(listener: (rows: RollupSecond[]) => void): () => void;
  /** Drops whole days older than cutoff's day for one signal; returns rows removed. */
  dropBefore(signal: Signal, cutoffUs: number): Promise<number>;
  /** Persists in-memory rollups and closes. */
  close(): Promise<void>;
}
