import { exprLineage, list, starAll, str, typeOf, unionAll, type Lineage, type OutputColumn, type Scope } from './lineage.js';
import { groupingKeys } from './lineage-compare.js';
import { keyed } from './lineage-quantities.js';
import type { JsonNode } from './walk.js';

/**
 * Row keys under masking (attack round 5 #5): GROUP BY, ORDER BY and DISTINCT (ON) compare the
 * rows of a query level with each other. Rows whose values someone knows can always be among
 * them — rows the session itself inserted in a transaction it rolls back, rows another session
 * committed, a sign-up with a chosen e-mail — so "within one table" is no bound: a key computed
 * from a masked value groups (or sorts) each row next to the known rows that share its key, and
 * the known rows' ids, returned in the clear, spell the value (`GROUP BY substr(email, 2, 1)`
 * with 95 known rows `'x' || chr(g)` gives every row's second character in one statement).
 *
 * The rule, judged by masking (masker.ts `quantityRefusal`) with the `what` and reason given here:
 *
 * - an ORDER BY key computed from a masked value (also a plain reference) is refused: a sort
 *   places each row between the known values below and above it, a binary search over them;
 * - a DISTINCT ON key computed from a masked value (also a plain reference) is refused: PostgreSQL
 *   sorts by it, so the rows come back in the masked value's order (attack round 9 H1);
 * - a GROUP BY key (also inside GROUPING SETS/ROLLUP/CUBE) or a column of a
 *   plain DISTINCT computed from a masked value is refused, unless it is a plain reference to the
 *   stored column of a table in the query level's own FROM (no cast, function, COLLATE or derived
 *   table in between): equality of whole stored values, which tells a row's value only when a
 *   known row holds exactly that whole value — a guess someone had to write, like `WHERE email =
 *   $1` or a join on a masked key.
 *
 * Window PARTITION BY/ORDER BY are quantities already (lineage-quantities.ts); set operations
 * without ALL compare two row sources (the mixing rule); an aggregate's own ORDER BY or FILTER
 * makes its value derived from the masked column, so it is masked.
 */

const ORDER_REASON = 'a sort places each row among rows whose values are known (rows inserted by anyone), which would spell the value';
const GROUP_REASON = 'rows whose values are known (rows inserted by anyone) would group with each row that shares its key, which would spell the value; only a plain column of a table in FROM may be a key';

/** One reading of a key: its lineage, and whether it is a plain reference to a stored column of this level's FROM. */
interface Reading {
  lin: Lineage;
  plain: boolean;
}

/** Is `node` a bare column reference to a stored column read straight from a FROM item (not through a derived table)? */
export function plainRef(node: unknown, lin: Lineage): boolean {
  const t = typeOf(node);
  if (t === undefined || t[0] !== 'ColumnRef') return false;
  if (!list(t[1].fields).every((f) => str(f) !== undefined)) return false;
  const leaves = lin.leaves ?? [];
  return lin.direct && !lin.wholeRow && !lin.opaque && leaves.length > 0 && leaves.every((l) => l.srcs.length === 1 && l.lin.direct && !l.lin.wholeRow && !l.lin.opaque);
}

/** The target a key names by position (`GROUP BY 1`) or by output name (`ORDER BY alias`). */
function targetsNamed(node: unknown, targetList: unknown, outs: readonly OutputColumn[]): { val: unknown; out: OutputColumn }[] | undefined {
  const tl = list(targetList);
  const at = (i: number): { val: unknown; out: OutputColumn } | undefined => {
    const out = outs[i];
    if (out === undefined) return undefined;
    return { val: (tl[i] as { ResTarget?: JsonNode } | undefined)?.ResTarget?.val, out };
  };
  const c = (node as { A_Const?: { ival?: { ival?: number } } } | undefined)?.A_Const;
  if (c?.ival !== undefined) {
    const n = c.ival.ival ?? 0;
    // A star before it shifts positions: every column could be meant.
    if (outs.some((o) => o.star !== undefined)) return outs.map((_, i) => at(i)).filter((x) => x !== undefined);
    const hit = at(n - 1);
    return hit === undefined ? undefined : [hit];
  }
  const fields = list((node as { ColumnRef?: { fields?: unknown[] } } | undefined)?.ColumnRef?.fields);
  if (fields.length !== 1) return undefined;
  const name = str(fields[0]);
  const hits = outs.map((o, i) => (o.star === undefined && o.name === name ? at(i) : undefined)).filter((x) => x !== undefined);
  return hits.length > 0 ? hits : undefined;
}

function outputReading(t: { val: unknown; out: OutputColumn }): Reading {
  if (t.out.star !== undefined) {
    const s = t.out.star;
    const plainStar = Object.keys(s.derived).length === 0 && s.other.cols.length === 0 && !s.other.wholeRow && !s.other.opaque;
    return { lin: starAll(s), plain: plainStar && s.base };
  }
  return { lin: t.out.lin, plain: plainRef(t.val, t.out.lin) };
}

/** The readings of a key: as an expression of the level's FROM items, and as an output column it may name. */
function readings(node: unknown, sel: JsonNode, outs: readonly OutputColumn[], scope: Scope, outputsOnly: boolean): Reading[] {
  const out: Reading[] = [];
  const named = targetsNamed(node, sel.targetList, outs);
  for (const t of named ?? []) out.push(outputReading(t));
  if (outputsOnly) {
    // A set operation or VALUES: keys name output columns only (by position or name).
    if (named === undefined) out.push({ lin: unionAll(outs.map((o) => (o.star !== undefined ? starAll(o.star) : o.lin))), plain: false });
    return out;
  }
  if ((node as { A_Const?: unknown } | undefined)?.A_Const === undefined) {
    const lin = exprLineage(node, scope);
    out.push({ lin, plain: plainRef(node, lin) });
  }
  return out;
}

function report(what: string, rs: readonly Reading[], order: boolean): void {
  if (rs.length === 0) return;
  const lin = unionAll(rs.map((r) => r.lin));
  if (!order && rs.every((r) => r.plain)) return;
  keyed(what, lin, order ? ORDER_REASON : GROUP_REASON);
}

/**
 * Reports the row keys of one query level (after its targets are known). `outputsOnly`: a set
 * operation or VALUES, whose keys name output columns only.
 */
export function rowKeys(sel: JsonNode, outs: readonly OutputColumn[], scope: Scope, outputsOnly: boolean): void {
  if (!outputsOnly) {
    for (const k of list(sel.groupClause).flatMap((g) => groupingKeys(g))) {
      report('a GROUP BY key', readings(k, sel, outs, scope, false), false);
    }
  }
  for (const s of list(sel.sortClause)) {
    report('an ORDER BY key', readings((s as { SortBy?: JsonNode }).SortBy?.node, sel, outs, scope, outputsOnly), true);
  }
  const distinct = list(sel.distinctClause);
  if (distinct.length === 1 && typeOf(distinct[0]) === undefined) {
    const tl = list(sel.targetList);
    outs.forEach((o, i) => {
      report('a DISTINCT column', [outputReading({ val: (tl[i] as { ResTarget?: JsonNode } | undefined)?.ResTarget?.val, out: o })], false);
    });
  } else {
    // DISTINCT ON is a sort on its keys in PostgreSQL: the rows come back in the key's order
    // (attack round 9 H1), so a masked key is refused like an ORDER BY one, plain or not.
    for (const d of distinct) report('a DISTINCT ON key', readings(d, sel, outs, scope, outputsOnly), true);
  }
}
