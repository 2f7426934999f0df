/**
 * Column batches: the one shape telemetry takes between decoding and storage.
 *
 * OTLP decoders (protobuf and JSON) append rows straight into these columns, with no
 * intermediate object graph; the TelemetryStore appends the columns to its tables.
 *
 * Conventions (shared by every producer and every store):
 * - Times are integer microseconds since the Unix epoch (`number`; exact to ~285 years).
 *   Durations are integer nanoseconds (`number`; exact up to ~104 days).
 * - Ids are lowercase hex strings (trace 32 chars, span 16 chars); '' when absent.
 * - Attributes are JSON object text (`{"k":v,...}`), values as OTel AnyValue maps to JSON:
 *   string/bool/double as is, int64 as a JSON number when it is a safe integer else a string,
 *   bytes as base64 string, arrays as arrays, kvlists as objects. '{}' when empty.
 * - The OTel keys are columns of their own, taken from resource attributes:
 *   service = `service.name` (default 'unknown_service'), version = `service.version`,
 *   environment = `deployment.environment.name` or `deployment.environment`; '' when absent.
 */

export interface ResourceColumns {
  service: string[];
  version: string[];
  environment: string[];
  resourceAttrs: string[];
  scopeName: string[];
  scopeVersion: string[];
}

export interface SpanBatch extends ResourceColumns {
  length: number;
  traceId: string[];
  spanId: string[];
  parentSpanId: string[];
  traceState: string[];
  name: string[];
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number[];
  startUs: number[];
  durationNs: number[];
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  statusCode: number[];
  statusMessage: string[];
  attrs: string[];
  /** JSON array text: `[{"timeUs":n,"name":s,"attrs":{...}}]`; '[]' when none. */
  events: string[];
  /** JSON array text: `[{"traceId":s,"spanId":s,"traceState":s,"attrs":{...}}]`; '[]' when none. */
  links: string[];
}

export interface LogBatch extends ResourceColumns {
  length: number;
  /** time_unix_nano, or observed time when the record has none. */
  timeUs: number[];
  observedTimeUs: number[];
  severityNumber: number[];
  severityText: string[];
  /** A string body as is; any other AnyValue as JSON text. */
  body: string[];
  traceId: string[];
  spanId: string[];
  flags: number[];
  attrs: string[];
  /** LogRecord.event_name (OTLP 1.5): names the event a record is; '' for plain logs. */
  eventName: string[];
}

export type MetricType = 'gauge' | 'sum' | 'histogram' | 'exp_histogram' | 'summary';

export interface MetricBatch extends ResourceColumns {
  length: number;
  name: string[];
  description: string[];
  unit: string[];
  type: MetricType[];
  /** AggregationTemporality: 0 unspecified, 1 delta, 2 cumulative (0 for gauge/summary). */
  temporality: number[];
  isMonotonic: boolean[];
  timeUs: number[];
  startTimeUs: number[];
  /** gauge/sum value (as_int converted to number); NaN for the other types. */
  value: number[];
  /** histogram/exp_histogram/summary count and sum; 0 otherwise. */
  count: number[];
  sum: number[];
  /** histogram/exp_histogram min/max when present, else NaN. */
  min: number[];
  max: number[];
  /**
   * Type-specific detail as JSON text, '' for gauge/sum:
   * histogram     `{"bounds":[..],"counts":[..]}`
   * exp_histogram `{"scale":n,"zeroCount":n,"positive":{"offset":n,"counts":[..]},"negative":{...}}`
   * summary       `{"quantiles":[{"q":0.5,"v":1.2},..]}`
   */
  detail: string[];
  attrs: string[];
}

function resourceColumns(): ResourceColumns {
  return { service: [], version: [], environment: [], resourceAttrs: [], scopeName: [], scopeVersion: [] };
}

export function emptySpanBatch(): SpanBatch {
  return {
    ...resourceColumns(),
    length: 0,
    traceId: [], spanId: [], parentSpanId: [], traceState: [], name: [], kind: [],
    startUs: [], durationNs: [], statusCode: [], statusMessage: [], attrs: [], events: [], links: [],
  };
}

export function emptyLogBatch(): LogBatch {
  return {
    ...resourceColumns(),
    length: 0,
    timeUs: [], observedTimeUs: [], severityNumber: [], severityText: [], body: [],
    traceId: [], spanId: [], flags: [], attrs: [], eventName: [],
  };
}

export function emptyMetricBatch(): MetricBatch {
  return {
    ...resourceColumns(),
    length: 0,
    name: [], description: [], unit: [], type: [], temporality: [], isMonotonic: [],
    timeUs: [], startTimeUs: [], value: [], count: [], sum: [], min: [], max: [], detail: [], attrs: [],
  };
}
