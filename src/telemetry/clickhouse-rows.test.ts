import { describe, expect, it } from 'vitest';
import { RowBinaryWriter } from './clickhouse-rows.js';

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
