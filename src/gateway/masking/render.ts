import { createHmac } from 'node:crypto';
import { isIPv4 } from 'node:net';

/**
 * How a masked value is written back. The replacement must still parse as the column's type on
 * the client (pg parses int4 and json itself), so the rendering depends on the type class:
 * JSON stays JSON, inet stays an address; numbers and types that cannot hold a mask (dates,
 * uuids, bytea, ...) become NULL when a column rule masks them.
 */

export const MASK_MODES = ['full', 'partial', 'hash'] as const;
export type MaskMode = (typeof MASK_MODES)[number];

export type TypeClass = 'text' | 'numeric' | 'json' | 'jsonb' | 'inet' | 'opaque';

const NUMERIC = new Set([20, 21, 23, 26, 700, 701, 1700]);
/** Types whose text form is never worth scanning and can only be masked to NULL. */
const OPAQUE = new Set([16, 17, 1082, 1083, 1114, 1184, 1186, 1266, 2950, 600, 601, 602, 603, 604, 628, 718, 829, 774, 1560, 1562]);

export function typeClass(oid: number): TypeClass {
  if (NUMERIC.has(oid)) return 'numeric';
  if (oid === 114) return 'json';
  if (oid === 3802) return 'jsonb';
  if (oid === 869 || oid === 650) return 'inet';
  if (OPAQUE.has(oid)) return 'opaque';
  // text, varchar, bpchar, name, xml, arrays, enums, domains, citext and other extension types
  return 'text';
}

export class Renderer {
  constructor(private readonly hashKey: Buffer) {}

  private digest(value: string): Buffer {
    return createHmac('sha256', this.hashKey).update(value, 'utf8').digest();
  }

  /**
   * Alphanumerics become '*'; where the value must stay a number they become '0' — except a
   * leading '1', so JSON (no leading zeros) stays valid and the number cannot grow past its type.
   */
  private maskChars(value: string, mode: 'full' | 'partial', digitsOnly: boolean): string {
    // One pass over char codes, right to left (the kept characters are the last alphanumerics);
    // no per-character strings: this runs for every masked value on the wire. Every code written
    // is ASCII (anything over 127 becomes the fill), so the output is one byte per character: a
    // plain array of a value's length went to dictionary mode past ~100k elements and made a
    // 60 MB value cost minutes and ~20 times its size (attack round 8 G4).
    const fill = digitsOnly ? 48 : 42; // '0' : '*'
    let keep = mode === 'partial' ? 4 : 0;
    const n = value.length;
    const out = Buffer.allocUnsafe(n);
    for (let i = n - 1; i >= 0; i--) {
      const c = value.charCodeAt(i);
      if (c > 127) out[i] = fill; // a letter of any other script is data, never kept
      else if (!isAlnum(c)) out[i] = c;
      else if (keep > 0) {
        out[i] = c;
        keep--;
      } else out[i] = fill;
    }
    if (digitsOnly) {
      let first = 0;
      while (first < n && !(out[first] >= 48 && out[first] <= 57)) first++;
      if (first < n && out[first] === 48 && first < n - 1 && value.charCodeAt(first) !== 48) out[first] = 49; // '1'
    }
    return out.toString('latin1');
  }

  private hashDigits(value: string): string {
    const d = this.digest(value);
    let i = 0;
    // Same digit count and a non-zero first digit: still a number to JSON and to clients' parsers.
    return value.replace(/\d/g, () => String(i === 0 ? 1 + (d[i++] % 8) : d[i++ % d.length] % 10));
  }

  /** A detected match inside a larger value (the surrounding text stays as it was). */
  match(detector: string, text: string, mode: MaskMode, cls: TypeClass): string {
    if ((detector === 'ipv4' || detector === 'ipv6') && cls === 'inet') return this.address(text, mode);
    const digitsOnly = allDigits(text);
    if (mode === 'hash') {
      return digitsOnly ? this.hashDigits(text) : `${detector}_${this.digest(text).toString('hex').slice(0, 12)}`;
    }
    return this.maskChars(text, mode, digitsOnly);
  }

  /**
   * `match` for `full` and `partial` on ASCII bytes, in place: `buf[from..to)` becomes the bytes
   * of `match(detector, <those bytes as text>, mode, cls)` for any detector and any class but an
   * address in an inet column (same length: each character is kept or replaced by one). The
   * masker's fast path for text values (no string is built).
   */
  matchAsciiInPlace(buf: Buffer, from: number, to: number, mode: 'full' | 'partial'): void {
    let digitsOnly = to > from;
    for (let i = from; i < to && digitsOnly; i++) digitsOnly = buf[i] >= 48 && buf[i] <= 57;
    const fill = digitsOnly ? 48 : 42; // '0' : '*'
    const first = buf[from];
    let keep = mode === 'partial' ? 4 : 0;
    for (let i = to - 1; i >= from; i--) {
      if (!isAlnum(buf[i])) continue;
      if (keep > 0) keep--;
      else buf[i] = fill;
    }
    // As maskChars: a number does not start with a 0 it did not have.
    if (digitsOnly && to - from > 1 && buf[from] === 48 && first !== 48) buf[from] = 49;
  }

  /** A whole column value masked by a column-name rule; null means SQL NULL. */
  whole(value: string, mode: MaskMode, cls: TypeClass): string | null {
    switch (cls) {
      case 'numeric':
        // Any number a mask could produce is also a plausible real one (and a partial mask of
        // 18000 is 18000): a column rule turns numbers into NULL, which no one takes for data.
        return null;
      case 'json':
      case 'jsonb':
        return JSON.stringify(this.wholeText(value, mode));
      case 'inet':
        return this.address(value, mode);
      case 'opaque':
        return null;
      default:
        return this.wholeText(value, mode);
    }
  }

  /**
   * `full` keeps nothing of a value's shape: a mask that kept punctuation or the length would
   * pass a value through any bijective rewrite (`translate(email, 'a…z', '!…')` is all
   * punctuation, and derived values are masked `full`). `partial` (plain references only) keeps
   * the value's ASCII punctuation and its last four ASCII letters or digits; every other
   * character is masked.
   */
  private wholeText(value: string, mode: MaskMode): string {
    if (mode === 'hash') return `h_${this.digest(value).toString('hex').slice(0, 16)}`;
    if (mode === 'full') return WHOLE_MASK;
    return this.maskChars(value, mode, false);
  }

  /** Addresses stay valid inet values: zeroed, zeroed but the last part, or derived from the hash. */
  private address(value: string, mode: MaskMode): string {
    const slash = value.indexOf('/');
    const addr = slash === -1 ? value : value.slice(0, slash);
    if (isIPv4(addr)) {
      const parts = addr.split('.');
      if (mode === 'full') return '0.0.0.0';
      if (mode === 'partial') return `0.0.0.${parts[3]}`;
      const d = this.digest(addr);
      return `10.${d[0]}.${d[1]}.${d[2]}`;
    }
    const groups = addr.split(':');
    if (mode === 'full') return '::';
    if (mode === 'partial') return `::${groups[groups.length - 1] || '0'}`;
    const hex = this.digest(addr).toString('hex');
    return `fd00::${hex.slice(0, 4)}:${hex.slice(4, 8)}:${hex.slice(8, 12)}`;
  }
}

/** What a column rule's `full` mask makes of any text value, whatever its length. */
export const WHOLE_MASK = '********';

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** `^\d+$` without a regex run. */
function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
