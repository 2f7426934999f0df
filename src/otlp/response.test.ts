import {
  JsonLogsSerializer, JsonMetricsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import protobuf from 'protobufjs/minimal.js';
import { describe, expect, it } from 'vitest';
import { encodeExportResponse, encodeStatus } from './index.js';

/** Our responses, read back by the OTel exporters' own response deserializers. */

describe('encodeExportResponse', () => {
  const cases = [
    ['traces', ProtobufTraceSerializer, JsonTraceSerializer, 'rejectedSpans'],
    ['logs', ProtobufLogsSerializer, JsonLogsSerializer, 'rejectedLogRecords'],
    ['metrics', ProtobufMetricsSerializer, JsonMetricsSerializer, 'rejectedDataPoints'],
  ] as const;

  it.each(cases)('%s: partial success round-trips through the OTel deserializers', (signal, proto, json, field) => {
    const fromProto = proto.deserializeResponse(encodeExportResponse(signal, 'protobuf', 3, 'bad trace id ✗')) as {
      partialSuccess?: Record<string, unknown>;
    };
    expect(Number(fromProto.partialSuccess?.[field])).toBe(3);
    expect(fromProto.partialSuccess?.errorMessage).toBe('bad trace id ✗');
    const fromJson = json.deserializeResponse(encodeExportResponse(signal, 'json', 3, 'bad trace id ✗')) as {
      partialSuccess?: Record<string, unknown>;
    };
    expect(Number(fromJson.partialSuccess?.[field])).toBe(3);
    expect(fromJson.partialSuccess?.errorMessage).toBe('bad trace id ✗');
  });

  it('is empty when nothing was rejected', () => {
    expect(encodeExportResponse('traces', 'protobuf', 0, '').length).toBe(0);
    expect(encodeExportResponse('logs', 'json', 0, '').toString()).toBe('{}');
  });

  it('carries large counts and a warning without rejections', () => {
    const big = ProtobufTraceSerializer.deserializeResponse(encodeExportResponse('traces', 'protobuf', 2 ** 40 + 5, 'x')) as {
      partialSuccess?: { rejectedSpans?: unknown };
    };
    expect(Number(big.partialSuccess?.rejectedSpans)).toBe(2 ** 40 + 5);
    expect(JSON.parse(encodeExportResponse('metrics', 'json', 0, 'heads up').toString())).toEqual({ partialSuccess: { errorMessage: 'heads up' } });
  });
});

describe('encodeStatus', () => {
  function readStatus(bytes: Uint8Array): { code: number; message: string } {
    const r = protobuf.Reader.create(bytes);
    const out = { code: 0, message: '' };
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 8) out.code = r.int32();
      else if (tag === 18) out.message = r.string();
      else r.skipType(tag & 7);
    }
    return out;
  }

  it('protobuf google.rpc.Status', () => {
    expect(readStatus(encodeStatus('protobuf', 3, 'invalid trace id'))).toEqual({ code: 3, message: 'invalid trace id' });
    expect(readStatus(encodeStatus('protobuf', 14, ''))).toEqual({ code: 14, message: '' });
    expect(readStatus(encodeStatus('protobuf', -2, 'neg'))).toEqual({ code: -2, message: 'neg' });
  });

  it('JSON google.rpc.Status', () => {
    expect(JSON.parse(encodeStatus('json', 3, 'bad "input"').toString())).toEqual({ code: 3, message: 'bad "input"' });
  });
});
