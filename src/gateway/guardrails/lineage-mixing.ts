import type { Lineage } from './lineage.js';
import { charge } from './work.js';

/**
 * Row sources of values, for the mixing rule (attack round 4 #1, #2).
 *
 * A predicate that tests a masked value against constants the client writes is an oracle bounded
 * by guessing: one bit per row per predicate. A test that compares a masked value with values of
 * *another row source* — a join partner, `generate_series`, `VALUES`, an SRF in the select list,
 * a subquery, the other side of a UNION — is a decoder: the dictionary supplies every guess at
 * once, and the partner's value (`chr(g)` where `ascii(substr(name, i, 1)) = g`) comes back
 * unmasked, because it is not computed from the masked column. So every place where values are
 * compared with each other — a conjunct of WHERE/ON/HAVING, a JOIN USING column, a GROUP BY,
 * ORDER BY or DISTINCT (ON) key, a column of UNION/INTERSECT/EXCEPT without ALL — is reported
 * with the *leaves* of the values it compares (lineage-quantities.ts `mixed`), and masking
 * refuses it (masker.ts) when a masked leaf meets a leaf of a row source the masked leaves do not
 * come from, or masked leaves of different row sources meet other than by equality of two plain
 * column references (a join on a masked key: whole stored values, the equality oracle).
 *
 * A leaf is a stored column reference (or a whole row, or a function the tree cannot see into),
 * tagged with the row sources it is read through: the FROM item that reads it, and every derived
 * table (subquery, CTE reference, VALUES, join alias) it passes through on its way out. A value
 * that a derived table computes from no column (a constant, a VALUES row, `generate_series`'s
 * output) still carries that derived table's source, as a leaf with an empty lineage; so do
 * values computed over several rows (aggregates of a grouped query level, window functions: all
 * sources of their level) and rows a set-returning function adds (a fresh source).
 */

export interface Leaf {
  /** What the leaf reads (without leaves of its own). */
  lin: Lineage;
  /** Row sources it is read through. */
  srcs: string[];
  /**
   * An unqualified name several FROM items could supply: [group, choice]. Exactly one choice of
   * each group is the real source; the check considers each choice on its own.
   */
  alt?: [number, number];
  /**
   * In a value's control only: the nested query level whose own row choice (its WHERE, HAVING,
   * GROUP BY, LIMIT) made this leaf part of it (lineage.ts rowControl). A predicate that uses
   * that level as a conjunctive semi-join judges those tests at the level itself, not again.
   */
  lvl?: string;
  key: string;
}

let counter = 0;

/** A new row source id (unique within the process; only equality matters). */
export function newSrc(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `s${counter}`;
}

/** A new alternative group id. */
export function newGroup(): number {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return counter;
}

function bare(lin: Lineage): Lineage {
  const out: Lineage = { cols: [...lin.cols], wholeRow: lin.wholeRow, opaque: lin.opaque, direct: lin.direct };
  if (lin.rels !== undefined) out.rels = [...lin.rels];
  if (lin.attrs !== undefined) out.attrs = [...lin.attrs];
  return out;
}

export function makeLeaf(lin: Lineage, srcs: readonly string[], alt?: [number, number], lvl?: string): Leaf {
  // Copies, sorts and serialises its sets into a key: tens of units (work.ts).
  charge(20 + 2 * (srcs.length + lin.cols.length + (lin.rels?.length ?? 0) + (lin.attrs?.length ?? 0)));
  const b = bare(lin);
  const s = [...new Set(srcs)].sort();
  const leaf: Leaf = { lin: b, srcs: s, key: JSON.stringify([b.cols, b.rels ?? [], b.wholeRow, b.opaque, b.attrs ?? [], s, alt ?? 0, lvl ?? 0]) };
  if (alt !== undefined) leaf.alt = alt;
  if (lvl !== undefined) leaf.lvl = lvl;
  return leaf;
}

/** Leaves of `a` and `b`, without duplicates. */
export function mergeLeaves(a: readonly Leaf[] | undefined, b: readonly Leaf[] | undefined): Leaf[] | undefined {
  // Each element is hashed by its key and copied: a few units (work.ts).
  charge(1 + 3 * ((a?.length ?? 0) + (b?.length ?? 0)));
  if (b === undefined || b.length === 0) return a === undefined ? undefined : [...a];
  if (a === undefined || a.length === 0) return [...b];
  const seen = new Set(a.map((l) => l.key));
  const out = [...a];
  for (const l of b) if (!seen.has(l.key)) {
    seen.add(l.key);
    out.push(l);
  }
  return out;
}

/**
 * A value read through the row source `src` (a FROM item): its leaves gain that source; a value
 * with no leaf (computed from no column) gets an empty leaf of `src` alone.
 */
export function through(lin: Lineage, src: string, alt?: [number, number]): Lineage {
  const leaves = lin.leaves === undefined || lin.leaves.length === 0
    ? [makeLeaf({ cols: [], wholeRow: false, opaque: false, direct: false }, [src], alt)]
    : lin.leaves.map((l) => makeLeaf(l.lin, [...l.srcs, src], alt ?? l.alt, l.lvl));
  // What chose the value passes through the same row source.
  const ctl = lin.ctl?.leaves === undefined ? lin.ctl : { ...lin.ctl, leaves: lin.ctl.leaves.map((l) => makeLeaf(l.lin, [...l.srcs, src], l.alt, l.lvl)) };
  return ctl === undefined ? { ...lin, cols: [...lin.cols], leaves } : { ...lin, cols: [...lin.cols], leaves, ctl };
}

/** The lineage with every leaf (of its value and of its control) tagged as chosen by the query level `lvl`. */
export function atLevel(lin: Lineage, lvl: string): Lineage {
  const tag = (ls: Leaf[] | undefined): Leaf[] | undefined => ls?.map((l) => makeLeaf(l.lin, l.srcs, l.alt, lvl));
  const out: Lineage = { ...lin, leaves: tag(lin.leaves) };
  if (out.leaves === undefined) delete out.leaves;
  if (lin.ctl !== undefined) out.ctl = atLevel(lin.ctl, lvl);
  return out;
}

/** The leaves of a value and of what chose it, but those chosen by the levels `skip` (a semi-join's own tests). */
export function controlledLeaves(lin: Lineage, skip: ReadonlySet<string>): Leaf[] {
  const out: Leaf[] = [];
  const seen = new Set<string>();
  const add = (l: Lineage | undefined): void => {
    if (l === undefined) return;
    for (const leaf of l.leaves ?? []) if ((leaf.lvl === undefined || !skip.has(leaf.lvl)) && !seen.has(leaf.key)) {
      seen.add(leaf.key);
      out.push(leaf);
    }
    add(l.ctl);
  };
  add(lin);
  return out;
}

/** Every row source the leaves are read through. */
export function leafSources(lin: Lineage | undefined): string[] {
  const out = new Set<string>();
  for (const l of lin?.leaves ?? []) for (const s of l.srcs) out.add(s);
  return [...out];
}

/** An extra leaf with an empty lineage: the value also depends on the rows of `srcs`. */
export function withSources(lin: Lineage, srcs: readonly string[]): Lineage {
  if (srcs.length === 0) return lin;
  const leaves = mergeLeaves(lin.leaves, [makeLeaf({ cols: [], wholeRow: false, opaque: false, direct: false }, srcs)]);
  return leaves === undefined ? lin : { ...lin, leaves };
}

/** A leaf for the value itself (a function the tree cannot see into), read through `srcs`. */
export function selfLeaf(lin: Lineage, srcs: readonly string[]): Lineage {
  const leaves = mergeLeaves(lin.leaves, [makeLeaf(lin, srcs)]);
  return leaves === undefined ? lin : { ...lin, leaves };
}

/** Upper bound on the choices the check enumerates over unqualified names; above it, fail closed. */
export const MAX_CHOICES = 256;

/**
 * The leaf sets to judge: one per combination of choices of the alternative groups, or
 * undefined when there are too many (the caller refuses if any leaf is masked).
 */
export function choices(leaves: readonly Leaf[]): Leaf[][] | undefined {
  const groups = new Map<number, Set<number>>();
  for (const l of leaves) if (l.alt !== undefined) {
    const g = groups.get(l.alt[0]) ?? new Set<number>();
    g.add(l.alt[1]);
    groups.set(l.alt[0], g);
  }
  let combos: Map<number, number>[] = [new Map<number, number>()];
  for (const [g, opts] of groups) {
    const next: Map<number, number>[] = [];
    for (const c of combos) for (const o of opts) next.push(new Map([...c, [g, o]]));
    combos = next;
    if (combos.length > MAX_CHOICES) return undefined;
  }
  return combos.map((c) => leaves.filter((l) => l.alt === undefined || c.get(l.alt[0]) === l.alt[1]));
}
