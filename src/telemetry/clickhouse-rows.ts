/**
 * Column batches as RowBinary, the input format of the `*_input` tables (clickhouse-schema.ts):
 * each value's bytes in column order, strings as a LEB128 length and their UTF-8 bytes, integers
 * and floats little-endian. The batches' strings (ids, names, attribute JSON text) are copied
 * into one buffer as they are — no escaping, quoting or intermediate row text — which is the
 * cheapest form of a row ClickHouse's HTTP interface takes (telemetry/README.md, "ClickHouse").
 */
import type { LogBatch, MetricBatch, SpanBatch } from './batch.js';
import { MAX_TIME_US, MIN_TIME_US } from './clickhouse-sql.js';

const TWO_32 = 2 ** 32;

/**
 * A log or metric time (µs) in the stored range (1970 … 2106): times beyond it (a sender's bad clock
 * or a garbage timestamp) are stored at the range's edge rather than failing the whole INSERT,
 * which its sender would retry for ever; not a number is stored as 0 (1970).
 */
export const storableTime = (us: number): number => (Number.isFinite(us) ? Math.min(Math.max(Math.round(us), MIN_TIME_US), MAX_TIME_US - 1) : 0);

/** A growing buffer of RowBinary values. */
export class RowBinaryWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, initialBytes));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  string(s: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: under 43 units the length fits one LEB128 byte.
    if (s.length < 43) {
      this.ensure(1 + 3 * s.length);
      const n = this.buf.write(s, this.pos + 1, 'utf8');
      this.buf[this.pos] = n;
      this.pos += 1 + n;
      return;
    }
    let n = Buffer.byteLength(s, 'utf8');
    this.ensure(5 + n);
    let len = n;
    while (len >= 0x80) {
      this.buf[this.pos++] = (len & 0x7f) | 0x80;
      len >>>= 7;
    }
    this.buf[this.pos++] = len;
    n = this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }

  /** A signed 64-bit integer from a safe integer (rounded when it is not an integer). */
  int64(v: number): void {
    this.ensure(8);
    const x = Math.round(v);
    this.buf.writeUInt32LE(x >>> 0, this.pos);
    this.buf.writeInt32LE(Math.floor(x / TWO_32) | 0, this.pos + 4);
    this.pos += 8;
  }

  uint8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }

  uint32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  float64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  get length(): number {
    return this.pos;
  }
}

/** Bytes to reserve for a batch: its long text columns plus a fixed part per row. */
function textLength(cols: string[][]): number {
  let n = 0;
  for (const col of cols) for (let i = 0; i < col.length; i++) n += col[i].length;
  return n;
}

export function spanRowsSize(b: SpanBatch): number {
  return b.length * 160 + textLength([b.attrs, b.events, b.resourceAttrs]);
}

/** Columns of `spans_input`, in order. */
export function writeSpanRows(w: RowBinaryWriter, b: SpanBatch, seq: number, node: string): void {
  for (let i = 0; i < b.length; i++) {
    w.int64(b.startUs[i]);
    w.string(b.traceId[i]);
    w.string(b.spanId[i]);
    w.string(b.parentSpanId[i]);
    w.string(b.traceState[i]);
    w.string(b.name[i]);
    w.uint8(b.kind[i]);
    w.int64(b.durationNs[i]);
    w.uint8(b.statusCode[i]);
    w.string(b.statusMessage[i]);
    w.string(b.service[i]);
    w.string(b.version[i]);
    w.string(b.environment[i]);
    w.string(b.resourceAttrs[i]);
    w.string(b.scopeName[i]);
    w.string(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.string(b.events[i]);
    w.string(b.links[i]);
    w.int64(seq);
    w.string(node);
  }
}

export function logRowsSize(b: LogBatch): number {
  return b.length * 160 + textLength([b.body, b.attrs, b.resourceAttrs]);
}

/** Columns of `logs_input`, in order. */
export function writeLogRows(w: RowBinaryWriter, b: LogBatch, seq: number, node: string): void {
  for (let i = 0; i < b.length; i++) {
    w.int64(storableTime(b.timeUs[i]));
    w.int64(storableTime(b.observedTimeUs[i]));
    w.uint8(b.severityNumber[i]);
    w.string(b.severityText[i]);
    w.string(b.body[i]);
    w.string(b.traceId[i]);
    w.string(b.spanId[i]);
    w.uint32(b.flags[i]);
    w.string(b.service[i]);
    w.string(b.version[i]);
    w.string(b.environment[i]);
    w.string(b.resourceAttrs[i]);
    w.string(b.scopeName[i]);
    w.string(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.string(b.eventName[i]);
    w.int64(seq);
    w.string(node);
  }
}

export function metricRowsSize(b: MetricBatch): number {
  return b.length * 200 + textLength([b.detail, b.attrs, b.resourceAttrs]);
}

/** Columns of `metric_points_input`, in order. */
export function writeMetricRows(w: RowBinaryWriter, b: MetricBatch, seq: number, node: string): void {
  for (let i = 0; i < b.length; i++) {
    w.int64(storableTime(b.timeUs[i]));
    w.int64(storableTime(b.startTimeUs[i]));
    w.string(b.name[i]);
    w.string(b.description[i]);
    w.string(b.unit[i]);
    w.string(b.type[i]);
    w.uint8(b.temporality[i]);
    w.uint8(b.isMonotonic[i] ? 1 : 0);
    w.float64(b.value[i]);
    w.int64(Math.max(0, Math.round(b.count[i])));
    w.float64(b.sum[i]);
    w.float64(b.min[i]);
    w.float64(b.max[i]);
    w.string(b.detail[i]);
    w.string(b.service[i]);
    w.string(b.version[i]);
    w.string(b.environment[i]);
    w.string(b.resourceAttrs[i]);
    w.string(b.scopeName[i]);
    w.string(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.int64(seq);
    w.string(node);
  }
}
