/**
 * Id columns carried as 32-bit words from the decoder to the DuckDB chunks.
 *
 * The store keeps trace and span ids as UHUGEINT / UBIGINT. The OTLP protobuf decoder used to
 * make each id a hex string (per span: span id, parent id, and the trace id when it changed),
 * which the chunk filler parsed back into words, the trace index into hashes and the garbage
 * collector then collected. A PackedIds holds the words instead, in the chunk's own layout
 * (little-endian: word 0 holds the last 8 hex digits), so filling is one copy per column.
 *
 * As with PackedText, the batch still answers `b.traceId` etc. with strings (lowercase hex, ''
 * for an absent id: all words zero, which the decoder never stores for a present id), made on
 * first use and frozen; `idAt` / `hasId` read one row without making the column.
 */

import { at } from '../core/indexed.js';

/** Lowercase hex of one byte. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function hexWord(w: number): string {
  return at(HEX, (w >>> 24) & 255) + at(HEX, (w >>> 16) & 255) + at(HEX, (w >>> 8) & 255) + at(HEX, w & 255);
}

export class PackedIds {
  /**
   * @param words `perId` words per row, little-endian (word 0 is the least significant)
   * @param perId 4 for a 128-bit trace id, 2 for a 64-bit span id
   */
  constructor(readonly words: Uint32Array, readonly perId: 2 | 4, readonly length: number) {}

  private strings: string[] | undefined;

  /** Whether row i has no id (all words zero). */
  isZero(i: number): boolean {
    const w = this.words, base = i * this.perId;
    for (let k = 0; k < this.perId; k++) if (at(w, base + k) !== 0) return false;
    return true;
  }

  /** Row i as lowercase hex ('' when absent). */
  hex(i: number): string {
    if (this.isZero(i)) return '';
    const w = this.words, base = i * this.perId;
    let s = '';
    for (let k = this.perId - 1; k >= 0; k--) s += hexWord(at(w, base + k));
    return s;
  }

  /** The column as strings (made once, frozen; a row equal to the previous one shares its string). */
  text(): readonly string[] {
    if (this.strings === undefined) {
      const out = new Array<string>(this.length);
      let prev = '';
      for (let i = 0; i < this.length; i++) out[i] = prev = i > 0 && this.sameAsPrevious(i) ? prev : this.hex(i);
      this.strings = Object.freeze(out) as string[];
    }
    return this.strings;
  }

  private sameAsPrevious(i: number): boolean {
    const w = this.words, base = i * this.perId;
    for (let k = 0; k < this.perId; k++) if (at(w, base + k) !== at(w, base - this.perId + k)) return false;
    return true;
  }
}

const IDS = Symbol('packed id columns');

type Ids = Record<string, PackedIds>;

/**
 * Makes `fields` of `batch` accessor properties backed by the given PackedIds (see
 * packed-text.ts packColumns: same rules — copies made with a spread get plain string arrays,
 * assigning the property replaces the column and drops its words).
 */
export function packIds(batch: object, cols: Ids): void {
  Object.defineProperty(batch, IDS, { value: { ...cols }, enumerable: false, writable: false, configurable: true });
  for (const [field, col] of Object.entries(cols)) {
    Object.defineProperty(batch, field, {
      enumerable: true,
      configurable: true,
      get: () => col.text(),
      set: (v: unknown) => { unpackIds(batch, field); (batch as Record<string, unknown>)[field] = v; },
    });
  }
}

/** The batch's id columns still carried as words (a field is absent once unpacked). */
export function packedIds(batch: object): Readonly<Ids> | undefined {
  return (batch as { [IDS]?: Ids })[IDS];
}

/** Turns a packed id field back into a plain, mutable string array (and drops its words). */
export function unpackIds(batch: object, field: string): void {
  const ids = packedIds(batch);
  const col = ids?.[field];
  if (ids === undefined || col === undefined) return;
  const strings = col.text().slice();
  delete (ids as Ids)[field];
  Object.defineProperty(batch, field, { value: strings, enumerable: true, writable: true, configurable: true });
}

/** Row i of an id column as hex ('' when absent), without making the column's strings. */
export function idAt(batch: object, field: string, i: number): string {
  const col = packedIds(batch)?.[field];
  return col === undefined ? at((batch as Record<string, readonly string[]>)[field] ?? [], i) : col.hex(i);
}

/** Whether row i of an id column holds an id, without making the column's strings. */
export function hasId(batch: object, field: string, i: number): boolean {
  const col = packedIds(batch)?.[field];
  return col === undefined ? at((batch as Record<string, readonly string[]>)[field] ?? [], i) !== '' : !col.isZero(i);
}

/** An id column written row by row from the wire's big-endian id bytes; finish() gives the PackedIds. */
export class IdColumnWriter {
  private words: Uint32Array;
  private rows = 0;

  constructor(readonly perId: 2 | 4, rows = 256) {
    this.words = new Uint32Array(Math.max(1, rows) * perId);
  }

  private room(): number {
    const base = this.rows * this.perId;
    if (base + this.perId > this.words.length) {
      const next = new Uint32Array(this.words.length * 2);
      next.set(this.words);
      this.words = next;
    }
    return base;
  }

  /** The id in bytes [pos, pos + 4·perId) of `src` (big-endian, as on the wire), length-checked by the caller. */
  put(src: Uint8Array, pos: number): void {
    const base = this.room();
    const w = this.words, n = this.perId;
    for (let k = 0; k < n; k++) {
      const p = pos + (n - 1 - k) * 4;
      w[base + k] = (((src[p] ?? 0) << 24) | ((src[p + 1] ?? 0) << 16) | ((src[p + 2] ?? 0) << 8) | (src[p + 3] ?? 0)) >>> 0;
    }
    this.rows++;
  }

  /** A row without an id (all words zero). */
  putNone(): void {
    const base = this.room();
    this.words.fill(0, base, base + this.perId);
    this.rows++;
  }

  finish(): PackedIds {
    return new PackedIds(this.words, this.perId, this.rows);
  }
}
