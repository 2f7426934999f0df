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

/**
 * RowBinary values written into a list of chunks: a chunk that is full is kept as it is and the
 * next value goes into a new one (64 KiB first, doubling up to 1 MiB), so nothing written is ever
 * copied again — the INSERT's body is the chunks in order. (A single buffer grown by doubling
 * copied each body about twice and left the copies to the GC: a third of the encoding's CPU.)
 */
export class RowBinaryWriter {
  private readonly done: Buffer[] = [];
  private doneBytes = 0;
  private buf: Buffer;
  private pos = 0;
  private readonly memo = new Map<string, Buffer>();

  constructor(private readonly firstChunk = 64 * 1024, private readonly maxChunk = 1024 * 1024) {
    this.buf = Buffer.allocUnsafe(firstChunk);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > 0) {
      this.done.push(this.buf.subarray(0, this.pos));
      this.doneBytes += this.pos;
    }
    this.buf = Buffer.allocUnsafe(Math.max(n, Math.min(this.maxChunk, Math.max(this.firstChunk, this.buf.length * 2))));
    this.pos = 0;
  }

  string(s: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: under 43 units the length fits one LEB128 byte.
    if (s.length < 43) {
      this.ensure(1 + 3 * s.length);
      // Short ASCII (ids, names, numbers) byte by byte: cheaper than a call into Buffer#write.
      const buf = this.buf, at = this.pos + 1;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      const n = i === s.length ? i : buf.write(s, at, 'utf8');
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

  /**
   * A string that repeats across rows (service, version, resource attributes, scope, node): its
   * encoded bytes are kept per writer and copied, not encoded again for every row.
   */
  repeated(s: string): void {
    if (s.length === 0) {
      this.uint8(0);
      return;
    }
    let b = this.memo.get(s);
    if (b === undefined) {
      const w = new RowBinaryWriter(5 + 3 * s.length, 5 + 3 * s.length);
      w.string(s);
      b = w.bytes();
      if (this.memo.size >= 1024) this.memo.clear();
      this.memo.set(s, b);
    }
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
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

  /** The bytes written so far, in order, as the chunks that hold them (views, valid until the next write). */
  chunks(): Buffer[] {
    return this.pos > 0 ? [...this.done, this.buf.subarray(0, this.pos)] : [...this.done];
  }

  /** The bytes written so far as one buffer (a copy when there are several chunks). */
  bytes(): Buffer {
    const c = this.chunks();
    return c.length === 1 ? c[0] : Buffer.concat(c, this.length);
  }

  get length(): number {
    return this.doneBytes + this.pos;
  }
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
    w.repeated(b.service[i]);
    w.repeated(b.version[i]);
    w.repeated(b.environment[i]);
    w.repeated(b.resourceAttrs[i]);
    w.repeated(b.scopeName[i]);
    w.repeated(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.string(b.events[i]);
    w.string(b.links[i]);
    w.int64(seq);
    w.repeated(node);
  }
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
    w.repeated(b.service[i]);
    w.repeated(b.version[i]);
    w.repeated(b.environment[i]);
    w.repeated(b.resourceAttrs[i]);
    w.repeated(b.scopeName[i]);
    w.repeated(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.string(b.eventName[i]);
    w.int64(seq);
    w.repeated(node);
  }
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
    w.repeated(b.service[i]);
    w.repeated(b.version[i]);
    w.repeated(b.environment[i]);
    w.repeated(b.resourceAttrs[i]);
    w.repeated(b.scopeName[i]);
    w.repeated(b.scopeVersion[i]);
    w.string(b.attrs[i]);
    w.int64(seq);
    w.repeated(node);
  }
}

/**
 * RowBinary read back (a SELECT's `FORMAT RowBinary` result): the values in the order the query's
 * columns have them. Used where a query's rows are read often enough that parsing JSON text per
 * row showed in the profile (the other nodes' rollup deltas, read every second).
 */
export class RowBinaryReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`RowBinary: ${n} bytes wanted at offset ${this.pos} of ${this.buf.length}`);
  }

  /** An unsigned LEB128 integer (string lengths, array and map sizes). */
  varint(): number {
    let v = 0, mul = 1;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  }

  string(): string {
    const n = this.varint();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A signed 64-bit integer as a number (exact within ±2^53: µs times, counts). */
  int64(): number {
    this.need(8);
    const v = this.buf.readInt32LE(this.pos + 4) * TWO_32 + this.buf.readUInt32LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** An unsigned 64-bit integer as a number (exact below 2^53). */
  uint64(): number {
    this.need(8);
    const v = this.buf.readUInt32LE(this.pos + 4) * TWO_32 + this.buf.readUInt32LE(this.pos);
    this.pos += 8;
    return v;
  }
}
