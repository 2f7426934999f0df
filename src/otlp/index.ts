/**
 * otlp/ — OTLP/HTTP request decoding and response encoding.
 *
 * Request bodies (protobuf or JSON) are decoded straight into the column batches of
 * `telemetry/batch.ts`: no intermediate object graph; resource fields are read once per
 * resource and repeated per row; attributes become JSON text as they are read (protobuf spans
 * keep that text as UTF-8 bytes up to the DuckDB chunks: telemetry/packed-text.ts).
 *
 *   error.ts         OtlpDecodeError (with the JSON path or byte offset of the problem)
 *   wire.ts          protobuf wire reader (varints, fixed64 as lo/hi, hex ids via a table)
 *   jsontext.ts      byte buffer that attribute JSON is written into as fields are read
 *   common.ts        AnyValue/KeyValue → JSON, resource and scope columns, rejection tally
 *   traces.ts        ExportTraceServiceRequest (protobuf)
 *   logs.ts          ExportLogsServiceRequest (protobuf)
 *   metrics.ts       ExportMetricsServiceRequest (protobuf), one row per data point
 *   json.ts          OTLP/JSON field helpers (camel/snake names, int64 strings, enums, ids)
 *   json-signals.ts  OTLP/JSON requests for the three signals
 *   response.ts      Export*ServiceResponse (partial success) and google.rpc.Status
 *   limits.ts        size limits on names, attributes, bodies (truncate with a marker, count)
 *   fixtures.ts      realistic protobuf payloads for tests and benchmarks (not exported here)
 *
 * A malformed request throws OtlpDecodeError (answer 400); well-formed items that are
 * unacceptable (e.g. a span whose trace id is not 16 non-zero bytes) are dropped and counted
 * in `rejected` for OTLP partial success.
 */
import type { LogBatch, MetricBatch, SpanBatch } from '../telemetry/batch.js';
import type { TelemetryBatches } from '../telemetry/store.js';
import type { DecodeResult } from './common.js';
import { decodeLogsJson, decodeMetricsJson, decodeTracesJson } from './json-signals.js';
import { limitLogs, limitMetrics, limitSpans } from './limits.js';
import { decodeLogsProtobuf } from './logs.js';
import { decodeMetricsProtobuf } from './metrics.js';
import type { OtlpFormat, OtlpSignal } from './response.js';
import { decodeTracesProtobuf } from './traces.js';

export type { DecodeResult } from './common.js';
export { OtlpDecodeError } from './error.js';
export { encodeExportResponse, encodeStatus } from './response.js';
export { ingestCounters, LIMITS } from './limits.js';
export type { OtlpFormat, OtlpSignal } from './response.js';

function limited<B>(r: DecodeResult<B>, limit: (b: B) => B): DecodeResult<B> {
  return { ...r, batch: limit(r.batch) };
}

export function decodeTraces(body: Uint8Array, format: OtlpFormat): DecodeResult<SpanBatch> {
  return limited(format === 'json' ? decodeTracesJson(body) : decodeTracesProtobuf(body), limitSpans);
}

export function decodeLogs(body: Uint8Array, format: OtlpFormat): DecodeResult<LogBatch> {
  return limited(format === 'json' ? decodeLogsJson(body) : decodeLogsProtobuf(body), limitLogs);
}

export function decodeMetrics(body: Uint8Array, format: OtlpFormat): DecodeResult<MetricBatch> {
  return limited(format === 'json' ? decodeMetricsJson(body) : decodeMetricsProtobuf(body), limitMetrics);
}

/**
 * One export request of any signal, as the batches the telemetry store takes, with the body
 * kept as their `source` (the store's ingest log writes it, and decodes it again on replay).
 */
export function decodeRequest(signal: OtlpSignal, format: OtlpFormat, body: Uint8Array): { batches: TelemetryBatches; rejected: number; rejectMessage: string } {
  const source = { signal, format, body };
  if (signal === 'traces') {
    const r = decodeTraces(body, format);
    return { batches: { spans: r.batch, source }, rejected: r.rejected, rejectMessage: r.rejectMessage };
  }
  if (signal === 'logs') {
    const r = decodeLogs(body, format);
    return { batches: { logs: r.batch, source }, rejected: r.rejected, rejectMessage: r.rejectMessage };
  }
  const r = decodeMetrics(body, format);
  return { batches: { metrics: r.batch, source }, rejected: r.rejected, rejectMessage: r.rejectMessage };
}
