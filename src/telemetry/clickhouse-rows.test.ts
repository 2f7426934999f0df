import { describe, expect, it } from 'vitest';
import { RowBinaryReader, RowBinaryWriter } from './clickhouse-rows.js';

/** RowBinary written the plain way (one value, one Buffer), to hold the chunked writer against. */
function leb128(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return out;
}
type Value = { t: 'string' | 'repeated'; v: string } | { t: 'int64'; v: number } | { t: 'uint8'; v: number } | { t: 'uint32'; v: number } | { t: 'float64'; v: number };
function plain(values: Value[]): Buffer {
  return Buffer.concat(values.map((x) => {
    switch (x.t) {
      case 'string': case 'repeated': { const b = Buffer.from(x.v, 'utf8'); return Buffer.concat([Buffer.from(leb128(b.length)), b]); }
      case 'int64': { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(x.v)); return b; }
      case 'uint8': return Buffer.from([x.v]);
      case 'uint32': { const b = Buffer.alloc(4); b.writeUInt32LE(x.v); return b; }
      case 'float64': { const b = Buffer.alloc(8); b.writeDoubleLE(x.v); return b; }
    }
  }));
}

describe('RowBinaryWriter', () => {
  it('writes values across many chunks without losing, reordering or copying a byte (ASCII fast path, repeated strings)', () => {
    const values: Value[] = [];
    for (let i = 0; i < 3000; i++) {
      values.push({ t: 'int64', v: i % 2 === 0 ? 1_733_000_000_000_000 + i : -i }, { t: 'string', v: ['', 'a', 'é'.repeat(42), '€'.repeat(43), 'x'.repeat(200 + (i % 300)), '😀'.repeat(i % 50), `id${i}é`, 'x'.repeat(42)][i % 8] },
        { t: 'repeated', v: ['', 'shop', '{"service.name":"shop","host":"ü-1"}', 'é'.repeat(50), `node-${i % 3}`][i % 5] },
        { t: 'uint8', v: i & 0xff }, { t: 'uint32', v: (i * 2_654_435_761) >>> 0 }, { t: 'float64', v: i / 7 });
    }
    const w = new RowBinaryWriter(64, 4096);
    for (const x of values) {
      if (x.t === 'string') w.string(x.v);
      else if (x.t === 'repeated') w.repeated(x.v);
      else if (x.t === 'int64') w.int64(x.v);
      else if (x.t === 'uint8') w.uint8(x.v);
      else if (x.t === 'uint32') w.uint32(x.v);
      else if (x.t === 'float64') w.float64(x.v);
    }
    const chunks = w.chunks();
    const want = plain(values);
    expect(chunks.length).toBeGreaterThan(100);
    expect(chunks.every((c) => c.length <= 4096)).toBe(true);
    expect(w.length).toBe(want.length);
    expect(Buffer.concat(chunks).equals(want)).toBe(true);
    expect(w.bytes().equals(want)).toBe(true);
  });

  it('puts a value longer than a chunk in a chunk of its own size', () => {
    const w = new RowBinaryWriter(16, 32);
    w.uint8(1);
    const long = 'y'.repeat(1000);
    w.string(long);
    w.uint8(2);
    expect(w.bytes().equals(Buffer.concat([Buffer.from([1]), Buffer.from(leb128(1000)), Buffer.from(long), Buffer.from([2])]))).toBe(true);
  });
});

describe('RowBinaryReader', () => {
  it('reads back strings (LEB128 lengths of one to three bytes, UTF-8), 16/32/64-bit integers and map sizes', () => {
    const strings = ['', 'shop', 'GET /api/é/{id}', 'x'.repeat(127), 'y'.repeat(128), '€'.repeat(6000), '😀 ü'];
    const w = new RowBinaryWriter(16, 64);
    for (const s of strings) w.string(s);
    w.int64(1_733_000_000_123_456);
    w.int64(-5);
    w.uint32(4_000_000_000);
    const tail = Buffer.alloc(2 + 8 + 8 + 1);
    tail.writeInt16LE(-300, 0);
    tail.writeBigUInt64LE(2n ** 52n + 7n, 2);
    tail.writeBigUInt64LE(0n, 10);
    tail[18] = 0x85; // a varint of 5 + 1 × 128 = 133, the next byte below
    const r = new RowBinaryReader(Buffer.concat([w.bytes(), tail, Buffer.from([0x01])]));
    expect(strings.map(() => r.string())).toEqual(strings);
    expect([r.int64(), r.int64(), r.uint32(), r.int16(), r.uint64(), r.uint64(), r.varint()]).toEqual([1_733_000_000_123_456, -5, 4_000_000_000, -300, 2 ** 52 + 7, 0, 133]);
    expect(r.done).toBe(true);
  });

  it('refuses to read past the end instead of returning garbage', () => {
    const w = new RowBinaryWriter();
    w.string('abcdef');
    const cut = w.bytes().subarray(0, 4);
    expect(() => new RowBinaryReader(cut).string()).toThrow(/RowBinary: 6 bytes wanted/);
    expect(() => new RowBinaryReader(Buffer.from([1, 2])).int64()).toThrow(/RowBinary/);
  });
});
