/**
 * Text columns carried as UTF-8 bytes from the decoder to the DuckDB chunks.
 *
 * The OTLP protobuf decoder writes a span's attributes, events and links as JSON bytes
 * (otlp/jsontext.ts). Made into JS strings, each value was decoded from UTF-8 once, kept in
 * V8's heap until its rows were loaded, and encoded back to UTF-8 to fill the chunk (~40 % of
 * the decode + fill CPU, with the scavenges of those strings). A PackedText keeps the bytes
 * instead, one buffer per column and batch; duckdb-chunks.ts copies them into the chunk's string
 * heap as they are.
 *
 * The batch still answers `b.attrs` etc. with strings, for every reader that wants them (detect,
 * the errors feed, live tails, the ClickHouse store, tests): packColumns() makes them accessor
 * properties that decode the whole column on first use. That array is frozen, so code that
 * would change a value in place (and leave the bytes saying something else) throws instead;
 * code that must change values (limits.ts) calls unpackColumn() first. Assigning the property
 * replaces the column and drops its bytes.
 */

import { at } from '../core/indexed.js';

interface FastSlices { utf8Slice(start: number, end: number): string }
const fastSlice = typeof (Buffer.prototype as unknown as Partial<FastSlices>).utf8Slice === 'function';
const utf8 = fastSlice
  ? (b: Buffer, s: number, e: number): string => (b as unknown as FastSlices).utf8Slice(s, e)
  : (b: Buffer, s: number, e: number): string => b.toString('utf8', s, e);

export class PackedText {
  /**
   * @param bytes the rows' values, one after another, as UTF-8
   * @param ends end offset in `bytes` of row i's value (it starts where row i-1's ends)
   */
  constructor(readonly bytes: Buffer, readonly ends: Uint32Array, readonly length: number) {}

  private strings: string[] | undefined;

  /** Whether the column's strings have been made (text() was called). */
  get decoded(): boolean {
    return this.strings !== undefined;
  }

  /** A column of strings as bytes (tests, and batches made without a decoder). */
  static of(values: readonly string[]): PackedText {
    const parts = values.map((v) => Buffer.from(v, 'utf8'));
    const ends = new Uint32Array(values.length);
    let used = 0;
    parts.forEach((p, i) => { used += p.length; ends[i] = used; });
    return new PackedText(Buffer.concat(parts), ends, values.length);
  }

  start(i: number): number {
    return i === 0 ? 0 : at(this.ends, i - 1);
  }

  end(i: number): number {
    return at(this.ends, i);
  }

  /** The column as strings (decoded once, frozen). */
  text(): readonly string[] {
    if (this.strings === undefined) {
      const out = new Array<string>(this.length);
      let s = 0;
      const b = this.bytes;
      for (let i = 0; i < this.length; i++) {
        const e = at(this.ends, i);
        // The empty values are two ASCII bytes: shared constants instead of a string each.
        out[i] = e - s === 2 && b[s] === 0x7b && b[s + 1] === 0x7d ? '{}'
          : e - s === 2 && b[s] === 0x5b && b[s + 1] === 0x5d ? '[]' : utf8(b, s, e);
        s = e;
      }
      this.strings = Object.freeze(out) as string[];
    }
    return this.strings;
  }
}

const PACKED = Symbol('packed text columns');

type Packed = Record<string, PackedText>;

/**
 * Makes `fields` of `batch` accessor properties backed by the given PackedTexts (one row per
 * batch row). The bytes are kept in a non-enumerable property: copies made with a spread or
 * Object.entries (span-floor.ts) get plain string arrays and no bytes.
 */
export function packColumns(batch: object, cols: Packed): void {
  Object.defineProperty(batch, PACKED, { value: { ...cols }, enumerable: false, writable: false, configurable: true });
  for (const [field, col] of Object.entries(cols)) {
    Object.defineProperty(batch, field, {
      enumerable: true,
      configurable: true,
      get: () => col.text(),
      set: (v: unknown) => { unpackColumn(batch, field); (batch as Record<string, unknown>)[field] = v; },
    });
  }
}

/** The batch's columns still carried as bytes (a field is absent once unpacked). */
export function packedColumns(batch: object): Readonly<Packed> | undefined {
  return (batch as { [PACKED]?: Packed })[PACKED];
}

/** Turns a packed field back into a plain, mutable string array (and drops its bytes). */
export function unpackColumn(batch: object, field: string): void {
  const packed = packedColumns(batch);
  const col = packed?.[field];
  if (packed === undefined || col === undefined) return;
  const strings = col.text().slice();
  delete (packed as Packed)[field];
  Object.defineProperty(batch, field, { value: strings, enumerable: true, writable: true, configurable: true });
}
