import { ROOT_CONTEXT, trace, TraceFlags, type HrTime } from '@opentelemetry/api';
import { SeverityNumber, type AnyValue } from '@opentelemetry/api-logs';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import protobuf from 'protobufjs/minimal.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LogBatch } from '../telemetry/batch.js';
import { decodeLogs } from './index.js';

/** Log records made by the real OTel SDK, encoded by the real OTLP serializers, decoded by ours. */

const hrMicros = (t: HrTime): number => t[0] * 1e6 + Math.floor(t[1] / 1000);

/** AnyValue as batch.ts maps it to JSON: bytes become base64. */
function asJson(v: AnyValue): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(asJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asJson(x)]));
  return v ?? null;
}

let records: ReadableLogRecord[];
const spanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };

beforeAll(async () => {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'billing', 'service.version': '7.0.1', 'deployment.environment': 'prod' }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('billing-logger', '0.9.0');
  const t: HrTime = [1_760_000_100, 987_654_321];
  logger.emit({
    timestamp: t, observedTimestamp: [t[0] + 1, 5], severityNumber: SeverityNumber.ERROR, severityText: 'ERROR',
    body: 'payment declined: "card expired"\n', attributes: { 'user.id': 'u-1', attempt: 3, ok: false, ratio: 0.5 },
    context: trace.setSpanContext(ROOT_CONTEXT, spanContext),
  });
  logger.emit({
    timestamp: [t[0], 1], severityNumber: SeverityNumber.INFO2, severityText: 'info',
    body: { event: 'invoice.created', amount: 12.5, lines: [1, 2, { sku: 'x' }], raw: new Uint8Array([0, 255, 7]), none: null },
    attributes: { nested: { a: { b: ['c', 1] } }, blob: new Uint8Array([1, 2, 3]) },
  });
  logger.emit({ timestamp: [t[0], 2], severityNumber: SeverityNumber.WARN, body: 42 });
  logger.emit({ timestamp: [t[0], 3], body: ['a', true] });
  logger.emit({ timestamp: [t[0], 4] });
  await provider.forceFlush();
  records = exporter.getFinishedLogRecords();
});

function checkAgainstSdk(b: LogBatch): void {
  expect(records.length).toBe(5);
  expect(b.length).toBe(records.length);
  for (let i = 0; i < b.length; i++) {
    const r = records[i];
    expect(b.timeUs[i]).toBe(hrMicros(r.hrTime));
    expect(b.observedTimeUs[i]).toBe(hrMicros(r.hrTimeObserved));
    expect(b.severityNumber[i]).toBe(r.severityNumber ?? 0);
    expect(b.severityText[i]).toBe(r.severityText ?? '');
    if (typeof r.body === 'string') expect(b.body[i]).toBe(r.body);
    else if (r.body === undefined) expect(b.body[i]).toBe('');
    else expect(JSON.parse(b.body[i])).toEqual(asJson(r.body));
    expect(b.traceId[i]).toBe(r.spanContext?.traceId ?? '');
    expect(b.spanId[i]).toBe(r.spanContext?.spanId ?? '');
    expect(b.flags[i]).toBe(r.spanContext?.traceFlags ?? 0);
    expect(JSON.parse(b.attrs[i])).toEqual(asJson(r.attributes));
    expect(b.service[i]).toBe('billing');
    expect(b.version[i]).toBe('7.0.1');
    expect(b.environment[i]).toBe('prod'); // the older deployment.environment key
    expect(JSON.parse(b.resourceAttrs[i])).toEqual(r.resource.attributes);
    expect(b.scopeName[i]).toBe('billing-logger');
    expect(b.scopeVersion[i]).toBe('0.9.0');
  }
}

describe('logs from the OTel SDK', () => {
  it('protobuf: every column matches the source records', () => {
    const body = ProtobufLogsSerializer.serializeRequest(records);
    if (body === undefined) throw new Error('serializer produced nothing');
    const { batch, rejected } = decodeLogs(body, 'protobuf');
    expect(rejected).toBe(0);
    checkAgainstSdk(batch);
    expect(batch.body[0]).toBe('payment declined: "card expired"\n');
    expect(batch.body[2]).toBe('42');
  });

  it('JSON: every column matches the source records', () => {
    const body = JsonLogsSerializer.serializeRequest(records);
    if (body === undefined) throw new Error('serializer produced nothing');
    const { batch, rejected } = decodeLogs(body, 'json');
    expect(rejected).toBe(0);
    checkAgainstSdk(batch);
  });
});

describe('log edge cases', () => {
  /** LogRecord with only the given fields, inside one resource/scope. */
  function request(write: (w: protobuf.Writer) => void): Uint8Array {
    const w = protobuf.Writer.create();
    w.uint32(10).fork().uint32(18).fork().uint32(18).fork();
    write(w);
    return w.ldelim().ldelim().ldelim().finish();
  }

  it('time falls back to the observed time; a missing resource means unknown_service', () => {
    const body = request((w) => {
      w.uint32(89).fixed32(0x2710).fixed32(1); // observed = 2^32 + 10000 ns
      w.uint32(42).fork().uint32(10).string('only observed').ldelim();
    });
    const { batch } = decodeLogs(body, 'protobuf');
    expect(batch.length).toBe(1);
    expect(batch.observedTimeUs[0]).toBe(Math.floor((2 ** 32 + 10_000) / 1000));
    expect(batch.timeUs[0]).toBe(batch.observedTimeUs[0]);
    expect(batch.service[0]).toBe('unknown_service');
    expect(batch.resourceAttrs[0]).toBe('{}');
  });

  it('ids of a wrong length reject the record; all-zero ids mean "no trace"', () => {
    const body = request((w) => w.uint32(74).bytes(new Uint8Array(5)));
    const r = decodeLogs(body, 'protobuf');
    expect(r.batch.length).toBe(0);
    expect(r.rejected).toBe(1);
    expect(r.rejectMessage).toMatch(/logRecords\[0\].*trace_id/);
    const zero = decodeLogs(request((w) => w.uint32(74).bytes(new Uint8Array(16)).uint32(82).bytes(new Uint8Array(8))), 'protobuf');
    expect(zero.rejected).toBe(0);
    expect(zero.batch.traceId[0]).toBe('');
    expect(zero.batch.spanId[0]).toBe('');
  });
});
