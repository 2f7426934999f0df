/**
 * OTLP/HTTP response bodies: Export*ServiceResponse (with partial_success when items were
 * rejected) and google.rpc.Status for failures, in protobuf or JSON to match the request.
 * Field numbers: collector/{trace,logs,metrics}/v1/*_service.proto and google/rpc/status.proto.
 */

export type OtlpSignal = 'traces' | 'logs' | 'metrics';
export type OtlpFormat = 'protobuf' | 'json';

/** Export*PartialSuccess field 1 (int64), named per signal in the JSON mapping. */
const REJECTED_FIELD: Record<OtlpSignal, string> = {
  traces: 'rejectedSpans',
  logs: 'rejectedLogRecords',
  metrics: 'rejectedDataPoints',
};

/**
 * Export*ServiceResponse. Empty (zero bytes / `{}`) when nothing was rejected and there is no
 * message; a message with `rejected` 0 is still sent, which OTLP defines as a warning.
 */
export function encodeExportResponse(signal: OtlpSignal, format: OtlpFormat, rejected: number, message: string): Buffer {
  const count = Number.isSafeInteger(rejected) && rejected > 0 ? rejected : 0;
  if (count === 0 && message === '') return format === 'json' ? Buffer.from('{}') : Buffer.alloc(0);
  if (format === 'json') {
    // proto3 JSON: int64 is a decimal string; default (zero/empty) fields are omitted.
    const partial: Record<string, string> = {};
    if (count > 0) partial[REJECTED_FIELD[signal]] = String(count);
    if (message !== '') partial.errorMessage = message;
    return Buffer.from(JSON.stringify({ partialSuccess: partial }));
  }
  const inner = new ProtoWriter();
  if (count > 0) inner.tag(1, 0).varint(count, 0);
  if (message !== '') inner.tag(2, 2).string(message);
  const body = inner.finish();
  return new ProtoWriter().tag(1, 2).varint(body.length, 0).bytes(body).finish();
}

/** google.rpc.Status: 1 code (int32), 2 message; details are never sent. */
export function encodeStatus(format: OtlpFormat, code: number, message: string): Buffer {
  const c = Number.isInteger(code) ? code | 0 : 0;
  if (format === 'json') return Buffer.from(JSON.stringify({ code: c, message }));
  const w = new ProtoWriter();
  // int32 negatives are sign-extended to 64 bits on the wire.
  if (c !== 0) w.tag(1, 0).varint(c >>> 0, c < 0 ? 0xffffffff : 0);
  if (message !== '') w.tag(2, 2).string(message);
  return w.finish();
}

/** Just enough protobuf writing for these two small messages. */
class ProtoWriter {
  private readonly parts: Buffer[] = [];
  private readonly scratch: number[] = [];

  tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType, 0);
  }

  /** A varint of the 64-bit value hi:lo; `lo` may be any non-negative safe integer when hi is 0. */
  varint(lo: number, hi: number): this {
    const out = this.scratch;
    out.length = 0;
    let low = lo;
    let high = hi;
    if (high === 0 && low > 0xffffffff) {
      high = Math.floor(low / 4294967296);
      low = low >>> 0;
    }
    while (high !== 0 || low > 0x7f) {
      out.push((low & 0x7f) | 0x80);
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high = high >>> 7;
    }
    out.push(low);
    this.parts.push(Buffer.from(out));
    return this;
  }

  string(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.varint(b.length, 0).bytes(b);
  }

  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}
