import { isUtf8 } from 'node:buffer';
import { at } from '../core/indexed.js';
import { PackedText } from '../telemetry/packed-text.js';
import { OtlpDecodeError } from './error.js';
import { ingestCounters, noteUtf8 } from './limits.js';
import { latin1Text, utf8Text } from './wire.js';

/**
 * A byte buffer that JSON text is written into as protobuf fields are read: key and string
 * bytes are copied straight from the request (escaped where JSON needs it), numbers are written
 * as digits, and one string is made per finished attribute set. Per-value strings joined with
 * `+` measured ~2x slower: ~16 native string creations per span plus the GC of their ropes.
 *
 * Raw UTF-8 is copied as is (JSON allows it); invalid UTF-8 becomes U+FFFD when the text is
 * decoded, and every byte this writer adds itself is ASCII, so the JSON structure stays intact.
 */

/** 1 = needs an escape (control chars, `"`, `\`); 2 = non-ASCII (copied, but text must be decoded as UTF-8). */
const CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) CLASS[c] = 1;
CLASS[0x22] = 1;
CLASS[0x5c] = 1;
for (let c = 0x80; c < 0x100; c++) CLASS[c] = 2;

const SHORT_ESCAPE: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72, 0x22: 0x22, 0x5c: 0x5c };
const HEX_DIGIT = '0123456789abcdef';

/** A string field's bytes come from a length-checked field; one past the buffer is a decoder bug. */
function pastEnd(at: number): never {
  throw new OtlpDecodeError('string bytes run past the end of the buffer', `byte ${at}`);
}

/** Scratch buffers beyond this are dropped on reset so one huge request does not pin memory. */
const KEEP_BYTES = 1 << 20;

export class JsonText {
  protected buf: Buffer = Buffer.allocUnsafe(4096);
  /** Write position: bytes [0, p) are the text so far. */
  p = 0;
  protected nonAscii = false;

  reset(): void {
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(4096);
    this.p = 0;
    this.nonAscii = false;
  }

  protected grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.p + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.p);
    this.buf = next;
  }

  /** One ASCII byte (structure: `{ } [ ] , :`). */
  byte(c: number): void {
    if (this.p >= this.buf.length) this.grow(1);
    this.buf[this.p++] = c;
  }

  /** ASCII text that needs no escaping (literals, number text, hex, base64). */
  raw(s: string): void {
    const n = s.length;
    if (this.p + n > this.buf.length) this.grow(n);
    const b = this.buf;
    let p = this.p;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.p = p;
  }

  /** A safe integer as digits; non-negative int32s (the usual attribute) without making a string. */
  int(v: number): void {
    if (v < 0 || v > 0x7fffffff) {
      this.raw(String(v));
      return;
    }
    const digits = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5
      : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
    if (this.p + digits > this.buf.length) this.grow(digits);
    const b = this.buf;
    let p = this.p + digits;
    this.p = p;
    let t = v;
    do {
      const q = (t / 10) | 0;
      b[--p] = 0x30 + t - q * 10;
      t = q;
    } while (t > 0);
  }

  /** Wire bytes [s, e) of a protobuf string as a quoted, escaped JSON string. */
  quoted(src: Uint8Array, s: number, e: number): void {
    // Worst case every byte becomes \u00XX; the +2 is the quotes.
    if (this.p + (e - s) * 6 + 2 > this.buf.length) this.grow((e - s) * 6 + 2);
    const b = this.buf;
    let p = this.p;
    b[p++] = 0x22;
    for (let i = s; i < e; i++) {
      const c = src[i] ?? pastEnd(i);
      const cls = at(CLASS, c);
      if (cls === 0) {
        b[p++] = c;
      } else if (cls === 2) {
        this.nonAscii = true;
        b[p++] = c;
      } else {
        b[p++] = 0x5c;
        const short = SHORT_ESCAPE[c];
        if (short !== undefined) {
          b[p++] = short;
        } else {
          b[p++] = 0x75; // \u00XX
          b[p++] = 0x30;
          b[p++] = 0x30;
          b[p++] = HEX_DIGIT.charCodeAt(c >> 4);
          b[p++] = HEX_DIGIT.charCodeAt(c & 15);
        }
      }
    }
    b[p++] = 0x22;
    this.p = p;
  }

  /** A `,` unless the text just opened an object or array (so callers need no "first" flag). */
  sep(): void {
    const last = this.buf[this.p - 1];
    if (last !== 0x7b && last !== 0x5b) this.byte(0x2c);
  }

  /** Starts a fresh text with `{` or `[`. */
  open(bracket: number): void {
    this.reset();
    this.byte(bracket);
  }

  /** Closes what `open` started and returns it; `empty` (a shared constant) when nothing was added. */
  close(bracket: number, empty: string): string {
    if (this.p === 1) return empty;
    this.byte(bracket);
    return this.text();
  }

  /** Text [from, p) as one string. */
  text(from = 0): string {
    return this.nonAscii ? noteUtf8(utf8Text(this.buf, from, this.p), this.buf, from, this.p) : latin1Text(this.buf, from, this.p);
  }
}

/**
 * One JSON text per row, written one after another into one buffer that becomes a PackedText
 * (telemetry/packed-text.ts): the text column of a whole request with no string per row and no
 * copy. openRow/closeRow take the place of open/close; rewinds (writeAnyValue's oneof) stay
 * within the row, since they go back to positions it wrote.
 */
export class JsonColumn extends JsonText {
  private ends = new Uint32Array(256);
  private rows = 0;
  private base = 0;

  constructor(bytes: number) {
    super();
    this.buf = Buffer.allocUnsafe(Math.max(64, bytes));
  }

  openRow(bracket: number): void {
    this.base = this.p;
    this.nonAscii = false;
    this.byte(bracket);
  }

  /**
   * Ends the row's text (`empty`, ASCII, when nothing was added to it). Invalid UTF-8 is
   * replaced (U+FFFD) and counted, as text() does for a string.
   */
  closeRow(bracket: number, empty: string): void {
    if (this.p === this.base + 1) {
      this.p = this.base;
      this.raw(empty);
    } else {
      this.byte(bracket);
      if (this.nonAscii && !isUtf8(this.buf.subarray(this.base, this.p))) {
        ingestCounters.invalidUtf8++;
        const fixed = Buffer.from(utf8Text(this.buf, this.base, this.p), 'utf8');
        this.p = this.base;
        if (this.p + fixed.length > this.buf.length) this.grow(fixed.length);
        fixed.copy(this.buf, this.p);
        this.p += fixed.length;
      }
    }
    if (this.rows === this.ends.length) {
      const e = new Uint32Array(this.rows * 2);
      e.set(this.ends);
      this.ends = e;
    }
    this.ends[this.rows++] = this.p;
  }

  /** The rows written so far as a PackedText (this writer is not used again). */
  finish(): PackedText {
    return new PackedText(this.buf, this.ends, this.rows);
  }

  override reset(): void {
    throw new Error('JsonColumn: use openRow/closeRow');
  }
}
