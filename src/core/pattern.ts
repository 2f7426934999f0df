/**
 * User-supplied patterns (log rules, `=~` / `!~` matchers of silences, routes and inhibit rules,
 * action parameters), matched in linear time. JavaScript's RegExp backtracks: `^(a|aa)+$` over
 * 40 characters stalls the whole process for seconds. Here a pattern is compiled into a
 * Glushkov automaton (one state per character position, at most MAX_POSITIONS) and run
 * bit-parallel: every input character costs one table lookup per four states, whatever the
 * pattern; there is no backtracking and no blow-up (the state set is a bitset, not a list).
 *
 * Syntax: the JavaScript subset parsed by pattern-parse.ts: literals, `.`, classes `[...]`,
 * `\d \w \s` (and negations), `\t \n \r \xHH \uHHHH`, escaped punctuation, groups `(...)`,
 * `(?:...)`, `(?<name>...)`, alternation, `* + ? {n} {n,} {n,m}` (lazy forms too), and a
 * leading `(?i)` for case-insensitive matching. `^ $ \b \B` are allowed at the start and end
 * of the pattern or of a top-level alternative. Backreferences and lookarounds (which need
 * backtracking) are refused with a PatternError.
 */
import { isWordUnit, parsePattern, PatternError, setHas, type CharSet, type Node } from './pattern-parse.js';

export { PatternError } from './pattern-parse.js';

/** Character positions of one pattern after counted repetitions are expanded. */
export const MAX_POSITIONS = 128;
const MAX_NODES = 50_000;
const WMAX = MAX_POSITIONS / 32;

const BOL = 1, EOL = 2, WB = 4, NWB = 8;

type Bits = Uint32Array;
const bits = (): Bits => new Uint32Array(WMAX);
const orInto = (a: Bits, b: Bits): void => { for (let i = 0; i < WMAX; i++) a[i] |= b[i]; };
function* each(b: Bits): Generator<number> {
  for (let w = 0; w < WMAX; w++) for (let x = b[w]; x !== 0; x &= x - 1) yield w * 32 + (31 - Math.clz32(x & -x));
}

interface Glu { first: Bits; last: Bits; nullable: boolean }

/** Builds the Glushkov automaton: positions with their character sets and follow sets. */
class Builder {
  readonly sets: CharSet[] = [];
  readonly follow: Bits[] = [];
  private nodes = 0;
  constructor(private readonly source: string) {}

  private position(set: CharSet): Bits {
    if (this.sets.length >= MAX_POSITIONS) {
      throw new PatternError(`pattern too large: more than ${MAX_POSITIONS} character positions once repetitions are expanded`, this.source);
    }
    this.sets.push(set);
    this.follow.push(bits());
    const b = bits();
    const p = this.sets.length - 1;
    b[p >> 5] |= 1 << (p & 31);
    return b;
  }

  private link(from: Bits, to: Bits): void {
    for (const p of each(from)) orInto(this.follow[p], to);
  }

  private cat(a: Glu, b: Glu): Glu {
    this.link(a.last, b.first);
    const first = a.first.slice();
    if (a.nullable) orInto(first, b.first);
    const last = b.last.slice();
    if (b.nullable) orInto(last, a.last);
    return { first, last, nullable: a.nullable && b.nullable };
  }

  glu(n: Node): Glu {
    if (++this.nodes > MAX_NODES) throw new PatternError('pattern too complex', this.source);
    switch (n.t) {
      case 'empty': return { first: bits(), last: bits(), nullable: true };
      case 'char': { const p = this.position(n.set); return { first: p, last: p.slice(), nullable: false }; }
      case 'cat': return n.items.reduce<Glu>((acc, item) => this.cat(acc, this.glu(item)), this.glu({ t: 'empty' }));
      case 'alt': {
        const out: Glu = { first: bits(), last: bits(), nullable: false };
        for (const item of n.items) {
          const g = this.glu(item);
          orInto(out.first, g.first);
          orInto(out.last, g.last);
          out.nullable ||= g.nullable;
        }
        return out;
      }
      case 'rep': {
        let acc = this.glu({ t: 'empty' });
        for (let k = 0; k < n.min; k++) acc = this.cat(acc, this.glu(n.node));
        if (n.max === Infinity) {
          const star = this.glu(n.node);
          this.link(star.last, star.first);
          acc = this.cat(acc, { ...star, nullable: true });
        } else {
          for (let k = n.min; k < n.max; k++) acc = this.cat(acc, { ...this.glu(n.node), nullable: true });
        }
        return acc;
      }
      default:
        throw new PatternError('^, $, \\b and \\B are only supported at the start or end of the pattern or of a top-level alternative', this.source);
    }
  }
}

/** Leading and trailing assertions of one top-level alternative, and what lies between. */
function split(alt: Node, whole: boolean): { start: number; end: number; middle: Node } {
  const items = alt.t === 'cat' ? [...alt.items] : alt.t === 'empty' ? [] : [alt];
  const flag = (x: Node, atStart: boolean): number => {
    if (x.t === 'bol') return atStart ? BOL : -1;
    if (x.t === 'eol') return atStart ? -1 : EOL;
    if (x.t === 'wb') return x.negated ? NWB : WB;
    return 0;
  };
  let start = whole ? BOL : 0;
  let end = whole ? EOL : 0;
  while (items.length > 0 && flag(items[0], true) > 0) start |= flag(items.shift() as Node, true);
  while (items.length > 0 && flag(items[items.length - 1], false) > 0) end |= flag(items.pop() as Node, false);
  return { start, end, middle: { t: 'cat', items } };
}

const lower = (c: number): number => String.fromCharCode(c).toLowerCase().charCodeAt(0);
const upper = (c: number): number => String.fromCharCode(c).toUpperCase().charCodeAt(0);

export interface PatternOptions {
  /** The pattern must match the whole text (as `^(?:...)$`), as label matchers do. */
  whole?: boolean;
}

export class CompiledPattern {
  private readonly m: number;
  private readonly w: number;
  private readonly chunks: number;
  /** follow sets of every 4-position chunk value: [(chunk*16+v)*w + word] */
  private readonly table: Uint32Array;
  private readonly ascii: Uint32Array;
  private readonly wide = new Map<number, Uint32Array>();
  private readonly sets: CharSet[];
  private readonly ignoreCase: boolean;
  private readonly startConds: Int32Array;
  private readonly startSets: Uint32Array;
  private readonly endConds: Int32Array;
  private readonly endSets: Uint32Array;
  private readonly empties: Int32Array;
  private readonly onlyAtStart: boolean;
  /** Table lookups done so far (chunks visited, one per four live states per character): the work, for tests. */
  steps = 0;

  constructor(readonly source: string, opts: PatternOptions = {}) {
    const { node, ignoreCase } = parsePattern(source);
    this.ignoreCase = ignoreCase;
    const b = new Builder(source);
    const alts = node.t === 'alt' ? node.items : [node];
    const starts = new Map<number, Bits>();
    const ends = new Map<number, Bits>();
    const empties: number[] = [];
    for (const alt of alts) {
      const { start, end, middle } = split(alt, opts.whole === true);
      if ((start & WB && start & NWB) || (end & WB && end & NWB)) throw new PatternError('\\b and \\B together never match', source);
      const g = b.glu(middle);
      if (!starts.has(start)) starts.set(start, bits());
      orInto(starts.get(start) as Bits, g.first);
      if (!ends.has(end)) ends.set(end, bits());
      orInto(ends.get(end) as Bits, g.last);
      if (g.nullable) empties.push(start | end);
    }
    this.m = b.sets.length;
    this.w = Math.max(1, Math.ceil(this.m / 32));
    this.chunks = Math.ceil(this.m / 4);
    this.sets = b.sets;
    const pack = (m: Map<number, Bits>): Uint32Array => {
      const out = new Uint32Array(m.size * this.w);
      [...m.values()].forEach((set, i) => out.set(set.subarray(0, this.w), i * this.w));
      return out;
    };
    this.startConds = Int32Array.from(starts.keys());
    this.startSets = pack(starts);
    this.endConds = Int32Array.from(ends.keys());
    this.endSets = pack(ends);
    this.empties = Int32Array.from(empties);
    this.onlyAtStart = [...starts.keys(), ...empties].every((c) => (c & BOL) !== 0);
    this.table = new Uint32Array(Math.max(1, this.chunks) * 16 * this.w);
    for (let k = 0; k < this.chunks; k++) {
      for (let v = 1; v < 16; v++) {
        const at = (k * 16 + v) * this.w;
        for (let bit = 0; bit < 4; bit++) {
          const p = k * 4 + bit;
          if ((v & (1 << bit)) === 0 || p >= this.m) continue;
          for (let x = 0; x < this.w; x++) this.table[at + x] |= b.follow[p][x];
        }
      }
    }
    this.ascii = new Uint32Array(128 * this.w);
    for (let c = 0; c < 128; c++) this.ascii.set(this.accepting(c), c * this.w);
  }

  /** Character positions (states) of the automaton. */
  get positions(): number {
    return this.m;
  }

  private accepting(c: number): Uint32Array {
    const out = new Uint32Array(this.w);
    const alt = this.ignoreCase ? [lower(c), upper(c)] : [];
    for (let p = 0; p < this.m; p++) {
      const set = this.sets[p];
      if (setHas(set, c) || alt.some((a) => setHas(set, a))) out[p >> 5] |= 1 << (p & 31);
    }
    return out;
  }

  private wideMask(c: number): Uint32Array {
    let m = this.wide.get(c);
    if (m === undefined) {
      m = this.accepting(c);
      if (this.wide.size >= 4096) this.wide.clear();
      this.wide.set(c, m);
    }
    return m;
  }

  /** Does the pattern match somewhere in `text` (all of it, when compiled with `whole`)? */
  test(text: string): boolean {
    const { w, chunks, table, ascii, startConds, startSets, endConds, endSets, empties, onlyAtStart } = this;
    const n = text.length;
    let d = new Uint32Array(w);
    let next = new Uint32Array(w);
    let live = false;
    let steps = n;
    let prevWord = false;
    let found = false;
    for (let i = 0; ; i++) {
      const c = i < n ? text.charCodeAt(i) : -1;
      const curWord = c >= 0 && isWordUnit(c);
      const cond = (i === 0 ? BOL : 0) | (i === n ? EOL : 0) | (prevWord !== curWord ? WB : NWB);
      for (let e = 0; e < empties.length; e++) if ((empties[e] & cond) === empties[e]) found = true;
      if (live) {
        for (let e = 0; e < endConds.length && !found; e++) {
          if ((endConds[e] & cond) !== endConds[e]) continue;
          for (let x = 0; x < w; x++) if ((d[x] & endSets[e * w + x]) !== 0) found = true;
        }
      }
      if (found || i === n) break;
      if (w === 1) {
        let v = 0;
        if (live) {
          const word = d[0];
          for (let k = 0; k < chunks; k++) {
            const nib = (word >>> (k << 2)) & 15;
            if (nib !== 0) { v |= table[k * 16 + nib]; steps++; }
          }
        }
        for (let e = 0; e < startConds.length; e++) if ((startConds[e] & cond) === startConds[e]) v |= startSets[e];
        v &= c < 128 ? ascii[c] : this.wideMask(c)[0];
        d[0] = v;
        live = v !== 0;
      } else {
        next.fill(0);
        if (live) {
          for (let k = 0; k < chunks; k++) {
            const nib = (d[k >> 3] >>> ((k & 7) << 2)) & 15;
            if (nib === 0) continue;
            steps++;
            const at = (k * 16 + nib) * w;
            for (let x = 0; x < w; x++) next[x] |= table[at + x];
          }
        }
        for (let e = 0; e < startConds.length; e++) {
          if ((startConds[e] & cond) === startConds[e]) for (let x = 0; x < w; x++) next[x] |= startSets[e * w + x];
        }
        const mask = c < 128 ? ascii : this.wideMask(c);
        const at = c < 128 ? c * w : 0;
        live = false;
        for (let x = 0; x < w; x++) if ((next[x] &= mask[at + x]) !== 0) live = true;
        const t = d; d = next; next = t;
      }
      if (!live && onlyAtStart) break;
      prevWord = curWord;
    }
    this.steps += steps;
    return found;
  }
}

const cache = new Map<string, CompiledPattern>();
const CACHE_SIZE = 512;
let compilations = 0;

/** Patterns compiled since start (cache misses): a matcher recompiled per match shows here. */
export const patternCompilations = (): number => compilations;

/**
 * A compiled pattern, from a bounded cache (compiled once per source and mode; least recently
 * used dropped first). Throws PatternError for a pattern outside the supported syntax.
 */
export function compilePattern(source: string, opts: PatternOptions = {}): CompiledPattern {
  const key = `${opts.whole === true ? 'w' : 's'}:${source}`;
  let p = cache.get(key);
  if (p !== undefined) {
    cache.delete(key);
  } else {
    p = new CompiledPattern(source, opts);
    compilations++;
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  }
  cache.set(key, p);
  return p;
}

/** The reason a pattern cannot be used, or undefined when it can. */
export function patternProblem(source: string, opts: PatternOptions = {}): string | undefined {
  try {
    compilePattern(source, opts);
    return undefined;
  } catch (err) {
    if (err instanceof PatternError) return err.message;
    throw err;
  }
}
