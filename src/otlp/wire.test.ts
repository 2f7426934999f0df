import fc from 'fast-check';
import protobuf from 'protobufjs/minimal.js';
import { describe, expect, it } from 'vitest';
import { OtlpDecodeError } from './error.js';
import { JsonText } from './jsontext.js';
import { int64Json, nanosBetween, nanosToMicros, WireReader } from './wire.js';

/** The wire primitives against BigInt arithmetic and protobufjs's writer. */

const U64 = (1n << 64n) - 1n;
const split = (v: bigint): [number, number] => [Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn)];
/** protobufjs takes {low, high} for exact 64-bit values. */
const longBits = (v: bigint) => {
  const [low, high] = split(BigInt.asUintN(64, v));
  return { low: low | 0, high: high | 0, unsigned: false } as unknown as number;
};

describe('time conversion without BigInt', () => {
  // Every ns whose µs value is below 2^53 (through year ~2255).
  const nanos = fc.bigInt({ min: 0n, max: (2n ** 53n - 1n) * 1000n + 999n });

  it('nanosToMicros is floor(ns / 1000), exactly', () => {
    fc.assert(fc.property(nanos, (ns) => nanosToMicros(...split(ns)) === Number(ns / 1000n)), { numRuns: 5000 });
    expect(nanosToMicros(...split(1_760_000_000_123_456_789n))).toBe(1_760_000_000_123_456);
    expect(nanosToMicros(0xffffffff, 0)).toBe(4294967);
  });

  it('nanosBetween is end - start, exactly, across 32-bit carries', () => {
    fc.assert(fc.property(nanos, fc.bigInt({ min: -(2n ** 40n), max: 2n ** 53n - 1n }), (start, d) => {
      const end = start + d;
      fc.pre(end >= 0n && end <= U64);
      const [sl, sh] = split(start);
      const [el, eh] = split(end);
      return nanosBetween(sl, sh, el, eh) === Number(d);
    }), { numRuns: 5000 });
  });
});

describe('WireReader', () => {
  it('varint64 and fixed64 read what protobufjs wrote', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
      const bytes = protobuf.Writer.create().int64(longBits(v)).fixed64(longBits(v)).finish();
      const r = new WireReader(bytes);
      r.varint64();
      const [lo, hi] = split(BigInt.asUintN(64, v));
      expect([r.lo, r.hi]).toEqual([lo, hi]);
      r.fixed64();
      expect([r.lo, r.hi]).toEqual([lo, hi]);
      expect(r.pos).toBe(bytes.length);
      const json = JSON.parse(int64Json(lo, hi)) as number | string;
      expect(BigInt(json)).toBe(v);
      expect(typeof json === 'number').toBe(Number.isSafeInteger(Number(v)));
    }), { numRuns: 3000 });
  });

  it('uint32/int32/sint32 read what protobufjs wrote', () => {
    fc.assert(fc.property(fc.integer(), (v) => {
      const bytes = protobuf.Writer.create().uint32(v >>> 0).int32(v | 0).sint32(v | 0).finish();
      const r = new WireReader(bytes);
      return r.uint32() === v >>> 0 && r.int32() === (v | 0) && r.sint32() === (v | 0) && r.pos === bytes.length;
    }), { numRuns: 3000 });
  });

  it('hex matches Buffer hex', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 16 }), (bytes) =>
      new WireReader(bytes).hex(0, bytes.length) === Buffer.from(bytes).toString('hex')), { numRuns: 2000 });
  });

  it('every truncation of a primitive is an OtlpDecodeError naming the byte it started at', () => {
    const reads: Array<[string, (r: WireReader) => unknown, Uint8Array]> = [
      ['truncated varint', (r) => r.uint32(), protobuf.Writer.create().uint32(0xffffffff).finish()],
      ['truncated varint', (r) => r.varint64(), protobuf.Writer.create().int64(longBits(-1n)).finish()],
      ['truncated fixed32', (r) => r.fixed32(), protobuf.Writer.create().fixed32(7).finish()],
      ['truncated fixed64', (r) => r.fixed64(), protobuf.Writer.create().fixed64(longBits(7n)).finish()],
      ['truncated double', (r) => r.double(), protobuf.Writer.create().double(1.5).finish()],
      ['truncated varint', (r) => r.skip(0, r.len), protobuf.Writer.create().uint32(0xffffffff).finish()],
    ];
    for (const [reason, read, bytes] of reads) {
      for (let cut = 0; cut < bytes.length; cut++) {
        // Two bytes of prefix, so the offset in the message is not just 0.
        const r = new WireReader(Uint8Array.of(0, 0, ...bytes.subarray(0, cut)));
        r.pos = 2;
        expect(() => read(r), `${reason} at ${cut}`).toThrow(new OtlpDecodeError(reason, 'byte 2'));
      }
    }
  });

  it('ids read past the end of the buffer fail instead of turning into zeros', () => {
    const r = new WireReader(Uint8Array.of(1, 2, 3));
    expect(() => r.hex(1, 8)).toThrow(OtlpDecodeError);
    expect(() => r.hex(1, 40)).toThrow(OtlpDecodeError);
    expect(() => new WireReader(Uint8Array.of(0, 0, 0)).isZero(0, 8)).toThrow(OtlpDecodeError);
    expect(r.hex(1, 2)).toBe('0203');
  });
});

describe('JsonText', () => {
  it('quoted bytes are valid JSON for the same string a UTF-8 decode gives (even for invalid UTF-8)', () => {
    const w = new JsonText();
    const check = (bytes: Uint8Array): boolean => {
      w.reset();
      w.quoted(bytes, 0, bytes.length);
      return JSON.parse(w.text()) === Buffer.from(bytes).toString('utf8');
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), check), { numRuns: 5000 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => check(Buffer.from(s, 'utf8'))), { numRuns: 5000 });
  });

  it('integers as digits', () => {
    const w = new JsonText();
    fc.assert(fc.property(fc.maxSafeInteger(), (n) => {
      w.reset();
      w.int(n);
      return w.text() === String(n);
    }), { numRuns: 3000 });
  });

  it('grows past its initial buffer', () => {
    const w = new JsonText();
    w.open(0x5b);
    const big = Buffer.alloc(100_000, 0x61);
    for (let i = 0; i < 5; i++) {
      w.sep();
      w.quoted(big, 0, big.length);
    }
    const arr = JSON.parse(w.close(0x5d, '[]')) as string[];
    expect(arr).toHaveLength(5);
    expect(arr[4]).toHaveLength(100_000);
  });
});
