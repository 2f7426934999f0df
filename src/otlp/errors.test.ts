import protobuf from 'protobufjs/minimal.js';
import { describe, expect, it } from 'vitest';
import { makeRealisticTracePayload } from './fixtures.js';
import { decodeLogs, decodeMetrics, decodeTraces, OtlpDecodeError } from './index.js';

/** Malformed requests throw OtlpDecodeError with a precise message; unacceptable items are rejected. */

function decodeError(fn: () => unknown): OtlpDecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OtlpDecodeError);
    return err as OtlpDecodeError;
  }
  throw new Error('expected an OtlpDecodeError, but decoding succeeded');
}

const hex = (n: number, fill: string): string => fill.repeat(n);

describe('malformed protobuf', () => {
  const payload = makeRealisticTracePayload(20);

  it('every truncation of a request throws OtlpDecodeError', () => {
    // One top-level field, so no strict prefix of it is a valid message.
    for (let len = 1; len < payload.length; len += 7) {
      expect(() => decodeTraces(payload.subarray(0, len), 'protobuf'), `length ${len}`).toThrow(OtlpDecodeError);
    }
    expect(decodeTraces(payload.subarray(0, 0), 'protobuf').batch.length).toBe(0);
  });

  it('names the problem and the byte offset', () => {
    expect(decodeError(() => decodeTraces(Uint8Array.of(0x0f), 'protobuf')).message).toBe('byte 1: invalid wire type 7');
    expect(decodeError(() => decodeTraces(Uint8Array.of(0x0a, 0x05, 0x01), 'protobuf')).message)
      .toMatch(/^byte 2: length 5 runs past the end/);
    expect(decodeError(() => decodeLogs(Uint8Array.of(0x08, ...new Array<number>(11).fill(0xff)), 'protobuf')).message)
      .toMatch(/varint longer than 10 bytes/);
    expect(decodeError(() => decodeMetrics(Uint8Array.of(0x09, 1, 2, 3), 'protobuf')).message).toMatch(/truncated/);
    // Groups (wire types 3/4) are not used by OTLP.
    expect(decodeError(() => decodeTraces(Uint8Array.of(0x0b), 'protobuf')).reason).toBe('invalid wire type 3');
  });

  it('a field overrunning its enclosing message is caught', () => {
    // resource_spans(len 2) { resource(len 3) ... } : the inner length fits the buffer, not the parent.
    expect(decodeError(() => decodeTraces(Uint8Array.of(0x0a, 0x02, 0x0a, 0x03, 0x00, 0x00, 0x00), 'protobuf')).reason)
      .toMatch(/runs past the end of the enclosing message/);
  });

  it('unknown fields of every wire type are skipped', () => {
    const w = protobuf.Writer.create();
    w.uint32((99 << 3) | 0).uint64(2 ** 40).uint32((98 << 3) | 1).fixed64(7).uint32((97 << 3) | 5).fixed32(7);
    w.uint32((96 << 3) | 2).bytes(Uint8Array.of(1, 2, 3));
    const tail = makeRealisticTracePayload(3);
    const body = Buffer.concat([w.finish(), tail]);
    expect(decodeTraces(body, 'protobuf').batch.length).toBe(3);
  });

  it('AnyValue nesting is bounded (no stack overflow on hostile input)', () => {
    const w = protobuf.Writer.create();
    w.uint32(10).fork().uint32(10).fork().uint32(10).fork().uint32(10).string('k').uint32(18);
    const depth = 200;
    for (let i = 0; i < depth; i++) w.fork().uint32(42).fork().uint32(10); // AnyValue.array_value.values
    w.fork().ldelim();
    for (let i = 0; i < depth; i++) w.ldelim().ldelim();
    w.ldelim().ldelim().ldelim();
    expect(decodeError(() => decodeTraces(w.finish(), 'protobuf')).reason).toMatch(/nested deeper than/);
  });
});

describe('rejected spans (protobuf)', () => {
  function spanRequest(ids: Array<[Uint8Array, Uint8Array, Uint8Array?]>): Uint8Array {
    const w = protobuf.Writer.create();
    w.uint32(10).fork().uint32(18).fork();
    for (const [traceId, spanId, parent] of ids) {
      w.uint32(18).fork().uint32(10).bytes(traceId).uint32(18).bytes(spanId);
      if (parent) w.uint32(34).bytes(parent);
      w.uint32(42).string('op').ldelim();
    }
    return w.ldelim().ldelim().finish();
  }
  const good = new Uint8Array(16).fill(0xab);
  const span = new Uint8Array(8).fill(0xcd);

  it('drops spans with bad ids, counts them, keeps the rest', () => {
    const { batch, rejected, rejectMessage } = decodeTraces(spanRequest([
      [good, span],
      [new Uint8Array(15).fill(1), span],
      [new Uint8Array(16), span],
      [good, new Uint8Array(7).fill(1)],
      [good, new Uint8Array(8)],
      [good, span, new Uint8Array(3).fill(1)],
      [good, span, new Uint8Array(8)],
    ]), 'protobuf');
    expect(batch.length).toBe(2);
    expect(batch.traceId).toEqual([hex(16, 'ab'), hex(16, 'ab')]);
    expect(batch.parentSpanId).toEqual(['', '']); // an all-zero parent means a root
    expect(rejected).toBe(5);
    expect(rejectMessage).toBe('5 spans rejected; first: resourceSpans[0].scopeSpans[0].spans[1]: trace_id must be 16 bytes and not all zero');
  });
});

describe('OTLP/JSON type errors name the path', () => {
  const span = (over: Record<string, unknown> = {}) => ({
    traceId: hex(16, 'ab'), spanId: hex(8, 'cd'), name: 'op', startTimeUnixNano: '1700000000000000000', ...over,
  });
  const body = (scopeSpans: unknown[]) => Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans }] }));
  const scopes = (bad: unknown) => [{ spans: [span()] }, { spans: [span(), span(), span(), bad] }];

  it.each([
    [{ resourceSpans: {} }, 'resourceSpans: expected an array, got object'],
    [{ resourceSpans: [{ scopeSpans: [{}, { spans: 'x' }] }] }, 'resourceSpans[0].scopeSpans[1].spans: expected an array, got string'],
    [{ resourceSpans: [7] }, 'resourceSpans[0]: expected an object, got number'],
    [{ resourceSpans: [{ resource: { attributes: [{ key: 'a', value: { intValue: 'ten' } }] } }] },
      'resourceSpans[0].resource.attributes[0].value.intValue: expected an integer (number or decimal string)'],
  ])('%j', (json, message) => {
    expect(decodeError(() => decodeTraces(Buffer.from(JSON.stringify(json)), 'json')).message).toBe(message);
  });

  it('bad id length, wrong time type, wrong enum, nested attribute values', () => {
    expect(decodeError(() => decodeTraces(body(scopes(span({ traceId: 'abc' }))), 'json')).message)
      .toBe('resourceSpans[0].scopeSpans[1].spans[3].traceId: expected 32 hex chars');
    expect(decodeError(() => decodeTraces(body(scopes(span({ startTimeUnixNano: {} }))), 'json')).message)
      .toMatch(/^resourceSpans\[0\]\.scopeSpans\[1\]\.spans\[3\]\.startTimeUnixNano: expected unix nanoseconds/);
    expect(decodeError(() => decodeTraces(body(scopes(span({ kind: 'SPAN_KIND_SIDEWAYS' }))), 'json')).message)
      .toMatch(/spans\[3\]\.kind: expected an enum value/);
    const nested = span({ attributes: [{ key: 'ok', value: {} }, { key: 'm', value: { kvlistValue: { values: [{ key: 'x', value: { arrayValue: { values: [{ boolValue: 1 }] } } }] } } }] });
    expect(decodeError(() => decodeTraces(body(scopes(nested)), 'json')).message)
      .toBe('resourceSpans[0].scopeSpans[1].spans[3].attributes[1].value.kvlistValue.values[0].value.arrayValue.values[0].boolValue: expected a boolean');
    expect(decodeError(() => decodeTraces(body(scopes(span({ events: [{ name: 3 }] }))), 'json')).message)
      .toBe('resourceSpans[0].scopeSpans[1].spans[3].events[0].name: expected a string, got number');
    expect(decodeError(() => decodeTraces(body([{ spans: [span({ status: { code: [] } })] }]), 'json')).message)
      .toMatch(/^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.status\.code: expected an enum value/);
  });

  it('metrics and logs paths too', () => {
    const metrics = { resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm', histogram: { dataPoints: [{ bucketCounts: ['1', 'x'] }] } }] }] }] };
    expect(decodeError(() => decodeMetrics(Buffer.from(JSON.stringify(metrics)), 'json')).message)
      .toBe('resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: expected a non-negative integer (number or decimal string)');
    const logs = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { kvlistValue: { values: 5 } } }] }] }] };
    expect(decodeError(() => decodeLogs(Buffer.from(JSON.stringify(logs)), 'json')).message)
      .toBe('resourceLogs[0].scopeLogs[0].logRecords[0].body.kvlistValue.values: expected an array, got number');
  });

  it('invalid JSON and non-object roots', () => {
    expect(decodeError(() => decodeLogs(Buffer.from('{"resourceLogs": ['), 'json')).message).toMatch(/^invalid JSON/);
    expect(decodeError(() => decodeLogs(Buffer.from('[]'), 'json')).message).toBe('expected a JSON object at the top level');
  });

  it('accepts snake_case names, enum names, numeric int64s; ignores unknown fields', () => {
    const json = { resource_spans: [{ scope_spans: [{ spans: [{
      trace_id: hex(16, 'AB'), span_id: hex(8, 'cd'), parent_span_id: '', name: 'op', kind: 'SPAN_KIND_CLIENT',
      start_time_unix_nano: 1_700_000_000_000_000_000, end_time_unix_nano: '1700000000000001500',
      status: { code: 'STATUS_CODE_ERROR', message: 'x' }, mystery: { a: 1 },
    }] }] }] };
    const { batch } = decodeTraces(Buffer.from(JSON.stringify(json)), 'json');
    expect(batch.traceId[0]).toBe(hex(16, 'ab'));
    expect(batch.kind[0]).toBe(3);
    expect(batch.statusCode[0]).toBe(2);
    expect(batch.startUs[0]).toBe(1_700_000_000_000_000);
    expect(batch.durationNs[0]).toBe(1500);
  });

  it('empty or all-zero ids reject the span (and only it)', () => {
    const r = decodeTraces(body([{ spans: [span(), span({ traceId: '' }), span({ spanId: hex(8, '00') }), span({ traceId: hex(16, '00') })] }]), 'json');
    expect(r.batch.length).toBe(1);
    expect(r.rejected).toBe(3);
    expect(r.rejectMessage).toMatch(/^3 spans rejected; first: resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]: trace_id/);
  });

  it('AnyValue nesting is bounded', () => {
    let v: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 500; i++) v = { arrayValue: { values: [v] } };
    const json = { resourceSpans: [{ scopeSpans: [{ spans: [span({ attributes: [{ key: 'deep', value: v }] })] }] }] };
    expect(decodeError(() => decodeTraces(Buffer.from(JSON.stringify(json)), 'json')).reason).toMatch(/nested deeper than/);
  });
});
