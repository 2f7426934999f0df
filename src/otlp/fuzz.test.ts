import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import {
  JsonLogsSerializer, JsonMetricsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeRealisticTracePayload } from './fixtures.js';
import { decodeLogs, decodeMetrics, decodeTraces, OtlpDecodeError } from './index.js';

/**
 * Property tests: whatever bytes arrive, a decoder either returns a well-formed batch or throws
 * OtlpDecodeError: never a TypeError/RangeError, never a stack overflow, never a hang (every
 * read advances or throws, so a hang would stall this suite rather than pass it).
 */

type Format = 'protobuf' | 'json';
const decoders = [decodeTraces, decodeLogs, decodeMetrics] as const;
const payloads: Record<Format, Uint8Array[]> = { protobuf: [], json: [] };

class ManualReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

beforeAll(async () => {
  const resource = resourceFromAttributes({ 'service.name': 'fuzz', 'service.version': '1', 'deployment.environment.name': 'test' });
  const spanExporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(spanExporter)] }).getTracer('t', '1');
  const root = tracer.startSpan('root', { kind: SpanKind.SERVER, attributes: { s: 'ünï"\\', n: 7, d: 0.5, b: true, a: [1, 2] } });
  root.addEvent('e', { k: 'v' });
  tracer.startSpan('linked', { links: [{ context: root.spanContext(), attributes: { why: 'x' } }] }).end();
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'm' });
  root.end();
  const spans = spanExporter.getFinishedSpans();

  const logExporter = new InMemoryLogRecordExporter();
  const logProvider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
  const logger = logProvider.getLogger('l');
  logger.emit({ severityNumber: SeverityNumber.WARN, body: { a: [1, 'x', { b: new Uint8Array([1, 2]) }] }, attributes: { k: 1 } });
  logger.emit({ body: 'plain text body' });
  await logProvider.forceFlush();
  const logs = logExporter.getFinishedLogRecords();

  const reader = new ManualReader();
  const meter = new MeterProvider({
    resource, readers: [reader], views: [{ instrumentName: 'exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  }).getMeter('m');
  meter.createCounter('c').add(2, { k: 'v' });
  meter.createGauge('g').record(1.5);
  for (const v of [1, 20, 300]) meter.createHistogram('h').record(v);
  for (const v of [0, 0.5, 8]) meter.createHistogram('exp').record(v);
  const metrics = (await reader.collect()).resourceMetrics;

  const must = (b: Uint8Array | undefined): Uint8Array => {
    if (b === undefined) throw new Error('serializer produced nothing');
    return b;
  };
  payloads.protobuf.push(must(ProtobufTraceSerializer.serializeRequest(spans)), must(ProtobufLogsSerializer.serializeRequest(logs)),
    must(ProtobufMetricsSerializer.serializeRequest(metrics)), makeRealisticTracePayload(4));
  payloads.json.push(must(JsonTraceSerializer.serializeRequest(spans)), must(JsonLogsSerializer.serializeRequest(logs)),
    must(JsonMetricsSerializer.serializeRequest(metrics)));
});

/** Decodes with every signal's decoder: only OtlpDecodeError may escape; results must be sound. */
function decodesSafely(body: Uint8Array, format: Format): boolean {
  for (const decode of decoders) {
    let batch: Record<string, unknown> & { length: number };
    try {
      batch = decode(body, format).batch as unknown as Record<string, unknown> & { length: number };
    } catch (err) {
      if (err instanceof OtlpDecodeError) continue;
      throw err;
    }
    for (const [key, col] of Object.entries(batch)) {
      if (!Array.isArray(col)) continue;
      expect(col.length, key).toBe(batch.length);
      if (key === 'attrs' || key === 'resourceAttrs' || key === 'events' || key === 'links') {
        for (const text of col as string[]) JSON.parse(text); // always valid JSON, whatever the bytes were
      }
      if (key === 'detail') for (const text of col as string[]) if (text !== '') JSON.parse(text);
      if (key === 'traceId') for (const id of col as string[]) expect(id).toMatch(/^([0-9a-f]{32})?$/);
      if (key === 'spanId' || key === 'parentSpanId') for (const id of col as string[]) expect(id).toMatch(/^([0-9a-f]{16})?$/);
    }
  }
  return true;
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(src: Uint8Array, ops: Mutation[]): Uint8Array {
  let b = Buffer.from(src);
  for (const m of ops) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === 'set') b[at] = m.byte;
    else if (m.op === 'truncate') b = b.subarray(0, at);
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
  }
  return b;
}

describe('decoders never crash', () => {
  it('protobuf: random mutations and truncations of real payloads', () => {
    fc.assert(fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 6 }), (which, ops) =>
      decodesSafely(mutate(payloads.protobuf[which % payloads.protobuf.length], ops), 'protobuf')), { numRuns: 3000 });
  });

  it('protobuf: arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodesSafely(bytes, 'protobuf')), { numRuns: 3000 });
  });

  it('JSON: random byte mutations of real payloads', () => {
    fc.assert(fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, ops) =>
      decodesSafely(mutate(payloads.json[which % payloads.json.length], ops), 'json')), { numRuns: 1500 });
  });

  it('JSON: any JSON value in place of any field', () => {
    fc.assert(fc.property(fc.nat(), fc.nat(), fc.jsonValue({ maxDepth: 4 }), (which, where, value) => {
      const root = JSON.parse(Buffer.from(payloads.json[which % payloads.json.length]).toString()) as unknown;
      const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
      const visit = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach((x, i) => { slots.push([v, i]); visit(x); });
        else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) { slots.push([v as Record<string, unknown>, k]); visit(x); }
      };
      visit(root);
      const [parent, key] = slots[where % slots.length];
      (parent as Record<string | number, unknown>)[key] = value;
      return decodesSafely(Buffer.from(JSON.stringify(root)), 'json');
    }), { numRuns: 3000 });
  });
});
