import { context, SpanKind, SpanStatusCode, trace, type HrTime } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SpanBatch } from '../telemetry/batch.js';
import { makeRealisticTracePayload } from './fixtures.js';
import { decodeTraces } from './index.js';

/** Spans made by the real OTel SDK, encoded by the real OTLP serializers, decoded by ours. */

const hrMicros = (t: HrTime): number => t[0] * 1e6 + Math.floor(t[1] / 1000);
const hrNanosBetween = (a: HrTime, b: HrTime): number => (b[0] - a[0]) * 1e9 + (b[1] - a[1]);
const aligned = (b: { length: number }): boolean =>
  Object.values(b).every((v) => !Array.isArray(v) || v.length === b.length);

let spans: ReadableSpan[];

beforeAll(() => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout', 'service.version': '1.42.0', 'deployment.environment.name': 'staging', 'process.pid': 4242,
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('checkout-http', '3.1.4');
  const other = provider.getTracer('checkout-db');
  // Nanosecond-precise times, so µs truncation and exact ns durations are both exercised.
  const t0: HrTime = [1_760_000_000, 123_456_789];
  const at = (ms: number, ns = 0): HrTime => {
    const total = t0[1] + ms * 1e6 + ns;
    return [t0[0] + Math.floor(total / 1e9), total % 1e9];
  };

  const root = tracer.startSpan('GET /api/cart/{id}', {
    kind: SpanKind.SERVER,
    startTime: t0,
    attributes: {
      'http.method': 'GET', 'http.route': '/api/cart/{id}', 'http.status_code': 500, 'http.ratio': 0.25,
      'cache.hit': false, 'tags': ['a', 'b"quoted"', 'ünï'], 'ports': [80, 443], 'flags': [true, false],
      'big': 2 ** 60, 'neg': -17, 'text': 'line1\nline2\t"q" \\ \u0001 😀',
    },
  });
  root.addEvent('request.received', { 'net.peer.ip': '10.0.0.1', size: 512 }, at(1, 7));
  root.addEvent('exception', { 'exception.type': 'Boom', 'exception.message': 'it broke' }, at(40, 999));
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream failed' });
  const ctx = trace.setSpan(context.active(), root);
  const db = other.startSpan('SELECT carts', {
    kind: SpanKind.CLIENT, startTime: at(2, 1),
    attributes: { 'db.system': 'postgresql', 'db.statement': 'SELECT * FROM carts WHERE id = $1' },
  }, ctx);
  db.setStatus({ code: SpanStatusCode.OK });
  db.end(at(12, 345));
  const linked = root.spanContext();
  const producer = tracer.startSpan('publish cart.updated', {
    kind: SpanKind.PRODUCER, startTime: at(20),
    links: [{ context: { ...linked, traceState: new TraceState('vendor=abc,other=1') }, attributes: { 'link.reason': 'fan-out' } }],
  }, ctx);
  producer.end(at(21));
  tracer.startSpan('consume', { kind: SpanKind.CONSUMER, startTime: at(30) }).end(at(31));
  tracer.startSpan('internal work', { kind: SpanKind.INTERNAL, startTime: at(32) }).end(at(32, 5));
  root.end(at(50, 1));
  spans = exporter.getFinishedSpans();
});

function checkAgainstSdk(b: SpanBatch): void {
  expect(spans.length).toBe(5);
  expect(b.length).toBe(spans.length);
  expect(aligned(b)).toBe(true);
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  for (let i = 0; i < b.length; i++) {
    const s = byId.get(b.spanId[i]);
    expect(s, `span ${b.spanId[i]}`).toBeDefined();
    if (s === undefined) continue;
    expect(b.traceId[i]).toBe(s.spanContext().traceId);
    expect(b.parentSpanId[i]).toBe(s.parentSpanContext?.spanId ?? '');
    expect(b.name[i]).toBe(s.name);
    expect(b.kind[i]).toBe(s.kind + 1); // API kinds start at INTERNAL = 0; OTLP reserves 0 for unspecified
    expect(b.startUs[i]).toBe(hrMicros(s.startTime));
    expect(b.durationNs[i]).toBe(hrNanosBetween(s.startTime, s.endTime));
    expect(b.statusCode[i]).toBe(s.status.code);
    expect(b.statusMessage[i]).toBe(s.status.message ?? '');
    expect(b.service[i]).toBe('checkout');
    expect(b.version[i]).toBe('1.42.0');
    expect(b.environment[i]).toBe('staging');
    expect(JSON.parse(b.resourceAttrs[i])).toEqual(s.resource.attributes);
    expect(b.scopeName[i]).toBe(s.instrumentationScope.name);
    expect(b.scopeVersion[i]).toBe(s.instrumentationScope.version ?? '');
    const attrs = { ...s.attributes };
    // int64 beyond 2^53 is kept exact as a string (batch.ts convention).
    if ('big' in attrs) attrs.big = '1152921504606846976';
    expect(JSON.parse(b.attrs[i])).toEqual(attrs);
    expect(JSON.parse(b.events[i])).toEqual(s.events.map((e) => ({ timeUs: hrMicros(e.time), name: e.name, attrs: e.attributes ?? {} })));
    expect(JSON.parse(b.links[i])).toEqual(s.links.map((l) => ({
      traceId: l.context.traceId, spanId: l.context.spanId, traceState: l.context.traceState?.serialize() ?? '', attrs: l.attributes ?? {},
    })));
    expect(b.traceState[i]).toBe('');
  }
}

describe('traces from the OTel SDK', () => {
  it('protobuf: every column matches the source spans', () => {
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    if (body === undefined) throw new Error('serializer produced nothing');
    const { batch, rejected, rejectMessage } = decodeTraces(body, 'protobuf');
    expect(rejected).toBe(0);
    expect(rejectMessage).toBe('');
    checkAgainstSdk(batch);
    const root = batch.name.indexOf('GET /api/cart/{id}');
    expect(batch.kind[root]).toBe(2);
    expect(batch.statusCode[root]).toBe(2);
    expect(batch.durationNs[root]).toBe(50_000_001);
    expect((JSON.parse(batch.links[batch.name.indexOf('publish cart.updated')]) as { traceState: string }[])[0].traceState).toBe('vendor=abc,other=1');
  });

  it('JSON: same columns, and identical to the protobuf decode', () => {
    const body = JsonTraceSerializer.serializeRequest(spans);
    const proto = ProtobufTraceSerializer.serializeRequest(spans);
    if (body === undefined || proto === undefined) throw new Error('serializer produced nothing');
    const { batch, rejected } = decodeTraces(body, 'json');
    expect(rejected).toBe(0);
    checkAgainstSdk(batch);
    const fromProto = decodeTraces(proto, 'protobuf').batch;
    // Same data, so the same columns; attribute JSON may differ only in key order, never content.
    for (const k of Object.keys(batch) as Array<keyof SpanBatch>) {
      if (k === 'attrs' || k === 'events' || k === 'links' || k === 'resourceAttrs') {
        expect((batch[k]).map((x) => JSON.parse(x) as unknown)).toEqual((fromProto[k]).map((x) => JSON.parse(x) as unknown));
      } else {
        expect(batch[k]).toEqual(fromProto[k]);
      }
    }
  });
});

describe('makeRealisticTracePayload', () => {
  it('decodes to the requested number of realistic spans', () => {
    const { batch, rejected } = decodeTraces(makeRealisticTracePayload(300), 'protobuf');
    expect(rejected).toBe(0);
    expect(batch.length).toBe(300);
    expect(aligned(batch)).toBe(true);
    expect(new Set(batch.service)).toEqual(new Set(['checkout']));
    expect(batch.environment[0]).toBe('production');
    expect(batch.kind.filter((k) => k === 2).length).toBe(100);
    expect(batch.parentSpanId.filter((p) => p === '').length).toBe(100);
    expect(batch.statusCode.some((c) => c === 2)).toBe(true);
    expect(batch.events.some((e) => e !== '[]')).toBe(true);
    const attrs = JSON.parse(batch.attrs[0]) as Record<string, unknown>;
    expect(Object.keys(attrs).length).toBeGreaterThanOrEqual(8);
    expect(typeof attrs['http.status_code']).toBe('number');
    expect(batch.durationNs.every((d) => d > 0)).toBe(true);
    expect(Math.abs(batch.startUs[0] - Date.now() * 1000)).toBeLessThan(5 * 60e6);
  });
});
