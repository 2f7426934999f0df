import { at } from '../core/indexed.js';
import { OtlpDecodeError } from './error.js';
import { noteUtf8 } from './limits.js';

/**
 * A small protobuf wire reader, written for the OTLP decoders rather than taken from protobufjs:
 * it reads 64-bit values into `lo`/`hi` (no Long/BigInt per timestamp), fails with
 * OtlpDecodeError naming the byte offset (protobufjs throws RangeError/Error), and turns ids
 * into hex through a lookup table. Decoders drive it with one `switch` on the whole tag
 * (field number << 3 | wire type), so a known field arriving with an unexpected wire type
 * falls through to `skip` like any unknown field.
 */

/** Wire types (https://protobuf.dev/programming-guides/encoding/#structure). */
const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;
const WT_I32 = 5;

/** Node's Buffer slicers: undocumented but stable; ~25% faster than `toString(enc, s, e)`. */
interface FastSlices {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
  base64Slice(start: number, end: number): string;
}
const fast = typeof (Buffer.prototype as unknown as Partial<FastSlices>).utf8Slice === 'function';
export const utf8Text = fast
  ? (b: Buffer, s: number, e: number): string => (b as unknown as FastSlices).utf8Slice(s, e)
  : (b: Buffer, s: number, e: number): string => b.toString('utf8', s, e);
export const latin1Text = fast
  ? (b: Buffer, s: number, e: number): string => (b as unknown as FastSlices).latin1Slice(s, e)
  : (b: Buffer, s: number, e: number): string => b.toString('latin1', s, e);

// Two hex chars per byte as one uint16, written through a byte view of the table so host
// endianness never matters. Writing 16 uint16s and slicing them as latin1 measured ~2x faster
// than concatenating 16 table strings (and it makes one flat string instead of a rope).
const HEX_PAIR = new Uint16Array(256);
{
  const bytes = new Uint8Array(HEX_PAIR.buffer);
  const digits = '0123456789abcdef';
  for (let i = 0; i < 256; i++) {
    bytes[2 * i] = digits.charCodeAt(i >> 4);
    bytes[2 * i + 1] = digits.charCodeAt(i & 15);
  }
}
const hexScratch16 = new Uint16Array(32);
const ID_PAST_END = 'id bytes run past the end of the buffer';
const hexScratch = Buffer.from(hexScratch16.buffer);

export class WireReader {
  readonly buf: Buffer;
  readonly len: number;
  pos = 0;
  /** Low and high 32 bits (unsigned) of the last varint64/fixed64 read. */
  lo = 0;
  hi = 0;
  private readonly view: DataView;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.len = this.buf.length;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  fail(reason: string): never {
    throw new OtlpDecodeError(reason, `byte ${this.pos}`);
  }

  /** A varint, keeping its low 32 bits unsigned: tags, lengths, enums, small counts. */
  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    let c = b[p++] ?? this.fail('truncated varint');
    if (c < 0x80) {
      this.pos = p;
      return c;
    }
    let v = c & 0x7f;
    for (let shift = 7; shift < 70; shift += 7) {
      c = b[p++] ?? this.fail('truncated varint');
      if (shift < 32) v |= (c & 0x7f) << shift;
      if (c < 0x80) {
        this.pos = p;
        return v >>> 0;
      }
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint as a signed 32-bit value (proto int32/enum: negatives arrive as 10 bytes). */
  int32(): number {
    return this.uint32() | 0;
  }

  /** A zigzag-encoded sint32. */
  sint32(): number {
    const n = this.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  /** A 64-bit varint into `lo`/`hi`. */
  varint64(): void {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let c = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      c = b[p++] ?? this.fail('truncated varint');
      lo |= (c & 0x7f) << shift;
      if (c < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    c = b[p++] ?? this.fail('truncated varint');
    lo |= (c & 0x7f) << 28;
    let hi = (c & 0x7f) >>> 4;
    for (let shift = 3; c >= 0x80; shift += 7) {
      if (shift > 31) this.fail('varint longer than 10 bytes');
      c = b[p++] ?? this.fail('truncated varint');
      hi |= (c & 0x7f) << shift;
    }
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint64 as a number (uint64 counts; exact below 2^53). */
  uint64(): number {
    this.varint64();
    return this.hi * 4294967296 + this.lo;
  }

  fixed32(): number {
    const p = this.pos;
    if (p + 4 > this.len) this.fail('truncated fixed32');
    this.pos = p + 4;
    return this.view.getUint32(p, true);
  }

  /** A fixed64 into `lo`/`hi`. */
  fixed64(): void {
    const p = this.pos;
    if (p + 8 > this.len) this.fail('truncated fixed64');
    this.lo = this.view.getUint32(p, true);
    this.hi = this.view.getUint32(p + 4, true);
    this.pos = p + 8;
  }

  /** A fixed64 as a number (uint64 counts; exact below 2^53). */
  fixed64Number(): number {
    this.fixed64();
    return this.hi * 4294967296 + this.lo;
  }

  double(): number {
    const p = this.pos;
    if (p + 8 > this.len) this.fail('truncated double');
    this.pos = p + 8;
    return this.view.getFloat64(p, true);
  }

  /** Reads a length prefix and returns where that field ends, checked against `end`. */
  lenEnd(end: number): number {
    const n = this.uint32();
    const e = this.pos + n;
    if (e > end) this.fail(`length ${n} runs past the end of the enclosing message`);
    return e;
  }

  /** Called after a message's field loop: a last field that overran `end` is caught here. */
  finish(end: number): void {
    if (this.pos !== end) this.fail('field runs past the end of the enclosing message');
  }

  string(end: number): string {
    const e = this.lenEnd(end);
    const s = e === this.pos ? '' : noteUtf8(utf8Text(this.buf, this.pos, e), this.buf, this.pos, e);
    this.pos = e;
    return s;
  }

  /**
   * Bytes [start, start+n) as lowercase hex. A byte past the buffer's end (a caller's bug: ids
   * come from length-checked fields) fails rather than turning into "00".
   */
  hex(start: number, n: number): string {
    if (n > 32) {
      if (start + n > this.len) this.fail(ID_PAST_END);
      return this.buf.toString('hex', start, start + n);
    }
    const b = this.buf;
    for (let i = 0; i < n; i++) hexScratch16[i] = at(HEX_PAIR, b[start + i] ?? this.fail(ID_PAST_END));
    return latin1Text(hexScratch, 0, n * 2);
  }

  /** True when bytes [start, start+n) are all zero (an invalid trace/span id). */
  isZero(start: number, n: number): boolean {
    const b = this.buf;
    let acc = 0;
    for (let i = 0; i < n; i++) acc |= b[start + i] ?? this.fail(ID_PAST_END);
    return acc === 0;
  }

  base64(start: number, end: number): string {
    return fast ? (this.buf as unknown as FastSlices).base64Slice(start, end) : this.buf.toString('base64', start, end);
  }

  /** Skips one field's value of wire type `wt` (groups are deprecated and unused by OTLP). */
  skip(wt: number, end: number): void {
    switch (wt) {
      case WT_VARINT: {
        const b = this.buf;
        let p = this.pos;
        for (let i = 0; ; i++) {
          if (i === 10) this.fail('varint longer than 10 bytes');
          if (p >= end) this.fail('truncated varint');
          if ((b[p++] ?? this.fail('truncated varint')) < 0x80) break;
        }
        this.pos = p;
        break;
      }
      case WT_I64:
        if (this.pos + 8 > end) this.fail('truncated 64-bit field');
        this.pos += 8;
        break;
      case WT_LEN:
        this.pos = this.lenEnd(end);
        break;
      case WT_I32:
        if (this.pos + 4 > end) this.fail('truncated 32-bit field');
        this.pos += 4;
        break;
      default:
        this.fail(`invalid wire type ${wt}`);
    }
  }
}

/** Unix nanoseconds (fixed64 lo/hi) to integer microseconds, exact below 2^53 µs, no BigInt. */
export function nanosToMicros(lo: number, hi: number): number {
  // 2^32 = 4294967 * 1000 + 296, so ns/1000 = hi*4294967 + (hi*296 + lo)/1000; each term exact.
  return hi * 4294967 + Math.floor((hi * 296 + lo) / 1000);
}

/** end - start in nanoseconds, exact while the difference is below 2^53 ns (~104 days). */
export function nanosBetween(startLo: number, startHi: number, endLo: number, endHi: number): number {
  return (endHi - startHi) * 4294967296 + (endLo - startLo);
}

/** An int64 (lo/hi two's complement) as JSON: a number when safe, else a decimal string. */
export function int64Json(lo: number, hi: number): string {
  const v = (hi | 0) * 4294967296 + lo;
  if (Number.isSafeInteger(v)) return String(v);
  // Rare (beyond ±2^53): exactness matters more than speed here.
  return '"' + BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString() + '"';
}

/** A double as JSON: NaN and ±Infinity have no JSON number, so they become strings. */
export function doubleJson(x: number): string {
  return Number.isFinite(x) ? String(x) : `"${String(x)}"`;
}
