/**
 * The parser of user-supplied patterns (see pattern.ts): a vetted subset of JavaScript's
 * regular-expression syntax, turned into a small tree. Everything outside the subset is refused
 * with a PatternError that says what and where, so an API can answer 400 with it.
 */

export class PatternError extends Error {
  readonly code = 'bad_pattern';
  constructor(message: string, readonly pattern: string) {
    super(message);
    this.name = 'PatternError';
  }
}

/** A set of UTF-16 code units: sorted inclusive ranges, possibly negated. */
export interface CharSet { ranges: number[]; negated: boolean }

export type Node =
  | { t: 'empty' }
  | { t: 'char'; set: CharSet }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number }
  | { t: 'bol' } | { t: 'eol' } | { t: 'wb'; negated: boolean };

export const MAX_PATTERN_LENGTH = 1000;
export const MAX_REPEAT = 1000;
const MAX_DEPTH = 64;

const DIGIT = [48, 57];
const WORD = [48, 57, 65, 90, 95, 95, 97, 122];
const SPACE = [9, 13, 32, 32, 160, 160, 5760, 5760, 8192, 8202, 8232, 8233, 8239, 8239, 8287, 8287, 12288, 12288, 65279, 65279];
const NOT_LINE = [10, 10, 13, 13, 8232, 8233];

/** The complement of sorted, non-overlapping ranges within 0..0xffff. */
function invert(r: readonly number[]): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i] > next) out.push(next, r[i] - 1);
    next = r[i + 1] + 1;
  }
  if (next <= 0xffff) out.push(next, 0xffff);
  return out;
}

/** Sorts and merges ranges. */
function normalize(r: number[]): number[] {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < r.length; i += 2) pairs.push([r[i], r[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    if (out.length > 0 && lo <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

export function setHas(set: CharSet, c: number): boolean {
  const r = set.ranges;
  let inside = false;
  for (let i = 0; i < r.length; i += 2) {
    if (c < r[i]) break;
    if (c <= r[i + 1]) { inside = true; break; }
  }
  return inside !== set.negated;
}

export const isWordUnit = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || c === 95 || (c >= 97 && c <= 122);

const lit = (c: number): Node => ({ t: 'char', set: { ranges: [c, c], negated: false } });

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly src: string) {}

  private fail(what: string): never {
    throw new PatternError(`${what} at offset ${this.i}`, this.src);
  }

  private peek(): string { return this.src[this.i]; }
  private eof(): boolean { return this.i >= this.src.length; }

  parse(): Node {
    const n = this.alternation();
    if (!this.eof()) this.fail(`unmatched ')'`);
    return n;
  }

  private alternation(): Node {
    const items = [this.sequence()];
    while (this.peek() === '|') {
      this.i++;
      items.push(this.sequence());
    }
    return items.length === 1 ? items[0] : { t: 'alt', items };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (!this.eof() && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return items.length === 0 ? { t: 'empty' } : items.length === 1 ? items[0] : { t: 'cat', items };
  }

  /** `{n}`, `{n,}`, `{n,m}` at the cursor, or undefined (then `{` is a literal, as in JavaScript). */
  private braces(): { min: number; max: number } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i, this.i + 24));
    if (m === null) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.fail(`repeat count above ${MAX_REPEAT}`);
    if (max < min) this.fail('numbers out of order in {} quantifier');
    this.i += m[0].length;
    return { min, max };
  }

  private quantified(atom: Node): Node {
    let q: { min: number; max: number } | undefined;
    const c = this.peek();
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    if (q !== undefined) this.i++;
    else if (c === '{') q = this.braces();
    if (q === undefined) return atom;
    if (atom.t === 'bol' || atom.t === 'eol' || atom.t === 'wb') this.fail('nothing to repeat');
    if (this.peek() === '?') this.i++; // lazy: the same language, and only the language counts here
    const n = this.peek();
    if (n === '*' || n === '+' || n === '?' || (n === '{' && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.i, this.i + 24)))) {
      this.fail('nested quantifier (possessive or repeated repetition is not supported)');
    }
    return { t: 'rep', node: atom, min: q.min, max: q.max };
  }

  private atom(): Node {
    const c = this.src[this.i++];
    switch (c) {
      case '(': return this.group();
      case '.': return { t: 'char', set: { ranges: NOT_LINE, negated: true } };
      case '^': return { t: 'bol' };
      case '$': return { t: 'eol' };
      case '[': return { t: 'char', set: this.bracket() };
      case '\\': return this.escape();
      case '*': case '+': case '?': this.i--; return this.fail('nothing to repeat');
      case '{': if (this.braces() !== undefined) this.fail('nothing to repeat'); return lit(123);
      default: return lit(c.charCodeAt(0));
    }
  }

  private group(): Node {
    if (++this.depth > MAX_DEPTH) this.fail(`groups nested deeper than ${MAX_DEPTH}`);
    if (this.peek() === '?') {
      const rest = this.src.slice(this.i, this.i + 3);
      if (rest.startsWith('?:')) this.i += 2;
      else if (rest.startsWith('?=') || rest.startsWith('?!') || rest === '?<=' || rest === '?<!') this.fail('lookaround assertions are not supported');
      else if (rest.startsWith('?<')) {
        const m = /^\?<([A-Za-z_$][A-Za-z0-9_$]*)>/.exec(this.src.slice(this.i, this.i + 80));
        if (m === null) this.fail('invalid group name');
        this.i += m[0].length;
      } else this.fail('unknown group syntax (?');
    }
    const inner = this.alternation();
    if (this.peek() !== ')') this.fail(`missing ')'`);
    this.i++;
    this.depth--;
    return inner;
  }

  /** An escape outside brackets. */
  private escape(): Node {
    if (this.eof()) this.fail('\\ at end of pattern');
    const c = this.peek();
    if (c === 'b' || c === 'B') { this.i++; return { t: 'wb', negated: c === 'B' }; }
    return { t: 'char', set: this.escapeSet(false) };
  }

  /** The character set of an escape (the cursor is after the backslash). */
  private escapeSet(inBracket: boolean): CharSet {
    const c = this.src[this.i++];
    const one = (u: number): CharSet => ({ ranges: [u, u], negated: false });
    switch (c) {
      case 'd': return { ranges: DIGIT, negated: false };
      case 'D': return { ranges: DIGIT, negated: true };
      case 'w': return { ranges: WORD, negated: false };
      case 'W': return { ranges: WORD, negated: true };
      case 's': return { ranges: SPACE, negated: false };
      case 'S': return { ranges: SPACE, negated: true };
      case 't': return one(9);
      case 'n': return one(10);
      case 'v': return one(11);
      case 'f': return one(12);
      case 'r': return one(13);
      case '0': if (!/\d/.test(this.peek() ?? '')) return one(0); break;
      case 'x': case 'u': {
        const len = c === 'x' ? 2 : 4;
        const hex = this.src.slice(this.i, this.i + len);
        if (hex.length !== len || !/^[0-9A-Fa-f]+$/.test(hex)) this.fail(`invalid \\${c} escape`);
        this.i += len;
        return one(parseInt(hex, 16));
      }
      case 'b': if (inBracket) return one(8); break;
      case 'k': this.fail('backreferences are not supported'); break;
      case 'p': case 'P': this.fail('Unicode property escapes are not supported'); break;
      default:
        if (c !== undefined && /[^A-Za-z0-9]/.test(c)) return one(c.charCodeAt(0));
    }
    this.i--;
    if (/[1-9]/.test(c)) this.fail('backreferences are not supported');
    return this.fail(`unsupported escape \\${c}`);
  }

  /** `[...]` after the opening bracket. */
  private bracket(): CharSet {
    let negated = false;
    if (this.peek() === '^') { negated = true; this.i++; }
    const ranges: number[] = [];
    for (;;) {
      if (this.eof()) this.fail(`missing ']'`);
      if (this.peek() === ']') { this.i++; break; }
      const lo = this.classAtom();
      if (this.peek() === '-' && this.src[this.i + 1] !== ']' && this.i + 1 < this.src.length && lo.single) {
        this.i++;
        const hi = this.classAtom();
        if (!hi.single) { ranges.push(...lo.set.ranges, 45, 45, ...setRanges(hi.set)); continue; }
        if (hi.set.ranges[0] < lo.set.ranges[0]) this.fail('range out of order in character class');
        ranges.push(lo.set.ranges[0], hi.set.ranges[0]);
      } else ranges.push(...setRanges(lo.set));
    }
    return { ranges: normalize(ranges), negated };
  }

  private classAtom(): { set: CharSet; single: boolean } {
    const c = this.src[this.i++];
    if (c !== '\\') return { set: { ranges: [c.charCodeAt(0), c.charCodeAt(0)], negated: false }, single: true };
    if (this.eof()) this.fail('\\ at end of pattern');
    if (this.peek() === 'B') this.fail('\\B in a character class');
    const set = this.escapeSet(true);
    return { set, single: !set.negated && set.ranges.length === 2 && set.ranges[0] === set.ranges[1] };
  }
}

const setRanges = (s: CharSet): number[] => (s.negated ? invert(s.ranges) : [...s.ranges]);

/** Parses a pattern of the supported subset; a leading `(?i)` makes it case-insensitive. */
export function parsePattern(source: string): { node: Node; ignoreCase: boolean } {
  if (source.length > MAX_PATTERN_LENGTH) throw new PatternError(`pattern longer than ${MAX_PATTERN_LENGTH} characters`, source);
  const ignoreCase = source.startsWith('(?i)');
  const p = new Parser(ignoreCase ? source.slice(4) : source);
  try {
    return { node: p.parse(), ignoreCase };
  } catch (err) {
    if (err instanceof PatternError) throw new PatternError(err.message, source);
    throw err;
  }
}
