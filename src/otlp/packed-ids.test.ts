import { ROOT_CONTEXT, trace, TraceFlags, type HrTime } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchSource, ChunkPool } from '../telemetry/duckdb-chunks.js';
import { SPAN_COLUMNS } from '../telemetry/duckdb-schema.js';
import { hasId, idAt, packedIds } from '../telemetry/packed-ids.js';
import { deltasOf, RollupBuffer } from '../telemetry/rollup.js';
import { TraceIndex } from '../telemetry/trace-index.js';
import type { SpanBatch } from '../telemetry/batch.js';
import { decodeTraces } from './index.js';

/**
 * The protobuf decoder keeps trace, span and parent ids as words (telemetry/packed-ids.ts) that
 * the chunk filler, the trace index and the rollups read directly. Property: for random spans
 * made by the real OTel SDK and encoded by the real OTLP serializers, the protobuf batch (ids as
 * words) equals the JSON batch of the same spans (ids as hex strings, the path every other
 * producer takes) column by column, fills the same DuckDB chunk rows, indexes the same trace
 * hashes and aggregates the same entry spans.
 */

const nonZero = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).filter((b) => b.some((x) => x !== 0))
  .map((b) => Buffer.from(b).toString('hex'));

const spanSpec = fc.record({
  trace: fc.nat(3),
  span: nonZero(8),
  parent: fc.option(nonZero(8), { nil: undefined }),
  kind: fc.integer({ min: 0, max: 4 }),
  name: fc.constantFrom('GET /a', 'SELECT x', 'publish', 'ünï'),
  startMs: fc.nat(120_000),
  durUs: fc.nat(5_000_000),
  attr: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
});

const specs = fc.record({
  traces: fc.array(nonZero(16), { minLength: 4, maxLength: 4 }),
  spans: fc.array(spanSpec, { minLength: 1, maxLength: 40 }),
});

const hr = (us: number): HrTime => [1_760_000_000 + Math.floor(us / 1e6), (us % 1e6) * 1000];

type Specs = typeof specs extends fc.Arbitrary<infer T> ? T : never;

function encode(s: Specs): { protobuf: Uint8Array; json: Uint8Array } {
  let nextTrace = '', nextSpan = '';
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ids', 'service.version': '1' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    idGenerator: { generateTraceId: () => nextTrace, generateSpanId: () => nextSpan },
  });
  const tracer = provider.getTracer('ids');
  for (const sp of s.spans) {
    const traceId = s.traces[sp.trace];
    nextTrace = traceId;
    nextSpan = sp.span;
    const ctx = sp.parent === undefined ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: sp.parent, traceFlags: TraceFlags.SAMPLED });
    const start = sp.startMs * 1000;
    const span = tracer.startSpan(sp.name, { kind: sp.kind, startTime: hr(start), attributes: sp.attr === undefined ? {} : { a: sp.attr } }, ctx);
    span.end(hr(start + sp.durUs));
  }
  const spans = exporter.getFinishedSpans();
  const protobuf = ProtobufTraceSerializer.serializeRequest(spans);
  const json = JsonTraceSerializer.serializeRequest(spans);
  if (protobuf === undefined || json === undefined) throw new Error('serializer produced nothing');
  return { protobuf, json };
}

const plain = (b: SpanBatch): Record<string, unknown> => ({ ...b });

function chunkRows(b: SpanBatch): unknown[][] {
  const pool = new ChunkPool(SPAN_COLUMNS);
  const chunks = pool.fill([batchSource(b, { resourceId: new Uint32Array(2 * b.length), ingestedUs: 7 })]);
  return chunks.flatMap((c) => c.getRows());
}

function indexed(add: (t: TraceIndex) => void): string[] {
  const t = new TraceIndex();
  add(t);
  return t.take(Number.MAX_SAFE_INTEGER).map((r) => `${r.minuteUs}:${Buffer.from(r.filter.toBytes()).toString('hex')}`);
}

describe('protobuf span ids as words (packed-ids.ts)', () => {
  it('give the same batch, chunk rows, trace index and rollups as the JSON decoder of the same spans', () => {
    fc.assert(fc.property(specs, (s) => {
      const { protobuf, json } = encode(s);
      const pb = decodeTraces(protobuf, 'protobuf').batch;
      const js = decodeTraces(json, 'json').batch;
      expect(packedIds(pb)?.traceId).toBeDefined();
      expect(packedIds(js)).toBeUndefined();
      for (const field of ['traceId', 'spanId', 'parentSpanId'] as const) {
        for (let i = 0; i < js.length; i++) {
          expect(idAt(pb, field, i)).toBe(js[field][i]);
          expect(hasId(pb, field, i)).toBe(js[field][i] !== '');
        }
      }
      expect(chunkRows(pb)).toEqual(chunkRows(js));
      expect(indexed((t) => t.addBatch(pb))).toEqual(indexed((t) => t.add(js.traceId, js.startUs, js.length)));
      expect(deltasOf(new RollupBuffer().add(pb))).toEqual(deltasOf(new RollupBuffer().add(js)));
      expect(plain(pb)).toEqual(plain(js)); // last: materialises the id strings
    }), { numRuns: 150 });
  });

  it('a decoded batch reads its ids as frozen strings; assigning a column replaces it', () => {
    const { protobuf } = encode({ traces: ['0a'.repeat(16), 'ff'.repeat(16), '01'.repeat(16), '80'.repeat(16)], spans: [
      { trace: 1, span: 'ff'.repeat(8), parent: undefined, kind: 2, name: 'GET /a', startMs: 0, durUs: 10, attr: undefined },
      { trace: 1, span: '00'.repeat(7) + '01', parent: 'ff'.repeat(8), kind: 3, name: 'SELECT x', startMs: 1, durUs: 10, attr: 'x' },
    ] });
    const b = decodeTraces(protobuf, 'protobuf').batch;
    expect(b.traceId).toEqual(['ff'.repeat(16), 'ff'.repeat(16)]);
    expect(b.traceId[0]).toBe(b.traceId[1]);
    expect(b.spanId).toEqual(['ff'.repeat(8), '00'.repeat(7) + '01']);
    expect(b.parentSpanId).toEqual(['', 'ff'.repeat(8)]);
    expect(() => b.spanId.push('x')).toThrow(TypeError);
    b.spanId = ['a', 'b'];
    expect(b.spanId).toEqual(['a', 'b']);
    expect(packedIds(b)?.spanId).toBeUndefined();
    expect(packedIds(b)?.traceId).toBeDefined();
  });
});
