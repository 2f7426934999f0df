import {
  columnRefOnly, empty, exprLineage, list, selectOutputs, starAll, str, typeOf, union, unionAll, wholeOf,
  type Item, type Lineage, type OutputColumn, type Scope,
} from './lineage.js';
import { controlledLeaves, newSrc } from './lineage-mixing.js';
import { combined, mixed, quantity, tested } from './lineage-quantities.js';
import type { JsonNode } from './walk.js';

/**
 * The places of a query level where values are compared with each other, for the mixing rule
 * (lineage-mixing.ts): conjuncts of WHERE/ON/HAVING, JOIN USING/NATURAL, GROUP BY, ORDER BY and
 * DISTINCT (ON) keys, and the columns of set operations without ALL. Each is reported with the
 * lineage (and leaves) of the values it compares.
 */

/** UNION, INTERSECT, EXCEPT: columns by position; without ALL, the two sides' values are compared. */
export function setOperation(sel: JsonNode, outer: Scope | undefined, ctes: Map<string, OutputColumn[]>): OutputColumn[] {
  const l = selectOutputs({ SelectStmt: sel.larg }, outer, ctes);
  const r = selectOutputs({ SelectStmt: sel.rarg }, outer, ctes);
  // Only UNION ALL keeps both sides apart: INTERSECT ALL and EXCEPT ALL match rows too.
  const compares = sel.all !== true || sel.op !== 'SETOP_UNION';
  const what = `a column of ${String(sel.op).replace('SETOP_', '')}${sel.all === true ? ' ALL' : ' without ALL'} (it compares the values of both sides)`;
  if (l.some((o) => o.star !== undefined) || r.some((o) => o.star !== undefined) || l.length !== r.length) {
    const all = unionAll([...l, ...r].map((o) => (o.star !== undefined ? starAll(o.star) : o.lin)));
    if (compares) mixed(what, all, false);
    return [{ star: { base: [...l, ...r].some((o) => o.star?.base === true), derived: {}, other: all }, lin: all }];
  }
  return l.map((o, i) => {
    const lin = { ...union({ ...o.lin, cols: [...o.lin.cols] }, r[i].lin), direct: o.lin.direct && r[i].lin.direct };
    if (compares) mixed(what, lin, lin.direct);
    return { ...o, lin };
  });
}

/**
 * ORDER BY, DISTINCT (ON), LIMIT/OFFSET of a query level. A sort or DISTINCT key compares values
 * of rows with each other: the mixing rule. A name or position may denote an output column
 * (only that, for a set operation or VALUES): both readings are traced.
 */
export function ordering(sel: JsonNode, outs: OutputColumn[], scope: Scope, outputsOnly: boolean): void {
  quantity('LIMIT/OFFSET', exprLineage([sel.limitCount, sel.limitOffset], scope));
  const key = (node: unknown): Lineage => {
    const byOutput = outputKey(node, outs);
    if (byOutput !== undefined && outputsOnly) return byOutput;
    const own = exprLineage(node, scope);
    return byOutput === undefined ? own : unionAll([byOutput, own]);
  };
  for (const s of list(sel.sortClause)) mixed('an ORDER BY key (it ranks the values of rows against each other)', key((s as { SortBy?: JsonNode }).SortBy?.node), false);
  const distinct = list(sel.distinctClause);
  const plain = distinct.length === 1 && typeOf(distinct[0]) === undefined;
  if (plain) for (const o of outs) mixed('a DISTINCT column (it compares the values of rows)', o.star !== undefined ? starAll(o.star) : o.lin, false);
  else for (const d of distinct) mixed('a DISTINCT ON key (it compares the values of rows)', key(d), false);
}

/** The output column an ORDER BY/DISTINCT ON key names (`ORDER BY 2`, `ORDER BY alias`), if any. */
function outputKey(node: unknown, outs: readonly OutputColumn[]): Lineage | undefined {
  const flatOut = (o: OutputColumn): Lineage => (o.star !== undefined ? starAll(o.star) : o.lin);
  const c = (node as { A_Const?: { ival?: { ival?: number } } } | undefined)?.A_Const;
  if (c !== undefined && c.ival !== undefined) {
    const n = c.ival.ival ?? 0;
    if (outs.some((o) => o.star !== undefined)) return unionAll(outs.map(flatOut));
    return n >= 1 && n <= outs.length ? flatOut(outs[n - 1]) : undefined;
  }
  const fields = list((node as { ColumnRef?: { fields?: unknown[] } } | undefined)?.ColumnRef?.fields);
  if (fields.length !== 1) return undefined;
  const name = str(fields[0]);
  const hits = outs.filter((o) => o.star === undefined && o.name === name);
  if (hits.length === 0) return outs.some((o) => o.star !== undefined) ? unionAll(outs.map(flatOut)) : undefined;
  return unionAll(hits.map(flatOut));
}

/** The keys of one GROUP BY item (`GROUPING SETS`, `ROLLUP`, `CUBE` list their keys). */
export function groupingKeys(item: unknown, depth = 0): unknown[] {
  const g = (item as { GroupingSet?: JsonNode } | undefined)?.GroupingSet;
  if (g === undefined || depth > 100) return [item];
  return list(g.content).flatMap((c) => {
    const inner = (c as { List?: { items?: unknown[] } }).List;
    return inner !== undefined ? list(inner.items).flatMap((x) => groupingKeys(x, depth + 1)) : groupingKeys(c, depth + 1);
  });
}

/** The top-level conjuncts of a condition. */
export function conjuncts(node: unknown, depth = 0): unknown[] {
  if (node === undefined || node === null) return [];
  const b = (node as { BoolExpr?: JsonNode }).BoolExpr;
  if (b?.boolop === 'AND_EXPR' && depth < 1000) return list(b.args).flatMap((a) => conjuncts(a, depth + 1));
  return [node];
}

/**
 * The level tag of an outer join's ON in the control of its nullable side's values. A conjunct
 * that is false wherever such a value is NULL (strictConjunct) holds only where the ON matched:
 * it tests the joined row's values conjunctively, as an inner join would, so the ON's tests are
 * not judged with it again. Elsewhere (`c1.id IS NULL OR <test of c1.email>` over a chain of
 * LEFT JOINs, each ON choosing another row of the kept side) they are.
 */
export const OUTER_JOIN_LEVEL = 'outer-join';

/** Functions that return NULL for a NULL argument (a few common ones; others count as not). */
const STRICT_FUNCTIONS = new Set(['lower', 'upper', 'substr', 'substring', 'length', 'char_length', 'ascii', 'btrim', 'ltrim', 'rtrim', 'left', 'right', 'split_part', 'replace', 'strpos', 'abs', 'round', 'date_trunc', 'md5', 'reverse']);

/** A comparison whose every operand path is strict: NULL in any column it reads makes it NULL, i.e. false as a conjunct. */
function strictConjunct(node: unknown): boolean {
  const e = (node as { A_Expr?: JsonNode }).A_Expr;
  if (e === undefined || !['AEXPR_OP', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_SIMILAR'].includes(String(e.kind))) return false;
  const strict = (n: unknown, depth: number): boolean => {
    if (depth > 50) return false;
    if (n === undefined || n === null) return true;
    if (Array.isArray(n)) return n.every((x) => strict(x, depth + 1));
    const t = typeOf(n);
    if (t === undefined) return false;
    const [type, v] = t;
    switch (type) {
      case 'ColumnRef': case 'A_Const': case 'ParamRef': return true;
      case 'TypeCast': return strict(v.arg, depth + 1);
      case 'A_Expr': return v.kind === 'AEXPR_OP' && strict(v.lexpr, depth + 1) && strict(v.rexpr, depth + 1);
      case 'FuncCall': {
        const names = list(v.funcname).map(str);
        return v.agg_filter === undefined && v.over === undefined && STRICT_FUNCTIONS.has(names[names.length - 1] ?? '') && strict(list(v.args), depth + 1);
      }
      default: return false;
    }
  };
  return strict(e.lexpr, 0) && strict(e.rexpr, 0);
}

/** Semi-joins of the conjunct being judged, by their SubLink node: the tag of their level (rowControl). */
const semiJoins = new Map<JsonNode, string>();
/** The level tags of those semi-joins. */
const semiJoinTags = new Set<string>();

/** The level tag of a SubLink that a predicate judges as a semi-join (lineage.ts), if it is one. */
export function semiJoinLevel(sublink: JsonNode): string | undefined {
  return semiJoins.get(sublink);
}

/** The level tags of the semi-joins of the conjunct being judged: their tests are judged at their own level. */
export function semiJoinLevels(): ReadonlySet<string> {
  return semiJoinTags;
}

/**
 * The subqueries of a conjunct whose rows it uses only through whether (or which of) their rows
 * exist, under AND, OR and NOT: `EXISTS (…)`, `x IN (…)`, `x op ANY/ALL (…)`, and a scalar
 * subquery as an operand of an operator. Each of their own conjuncts was judged at its level
 * (`comparison`): a masked test there is a fixed function of one row of one row source, which no
 * outer value chooses (the mixing rule refuses `CASE WHEN o.id = 1 THEN <masked test> …` inside).
 * So however the outer predicate combines the answers with its own tests (`o.total > 90 OR
 * EXISTS (…)`, `NOT EXISTS (…)`), a row of the subquery's table tells the outer rows one bit —
 * the bound of one FROM item, and one row path per table holds it to one per statement
 * (masking/test-paths.ts; k EXISTS over one table, each testing another bit, are refused there).
 * Not so under CASE, or where a subquery's value is a function's argument: there another
 * source's value could choose which of several values of one row is tested.
 */
function semiJoinNodes(node: unknown, depth = 0): JsonNode[] {
  if (depth > 100) return [];
  const b = (node as { BoolExpr?: JsonNode }).BoolExpr;
  if (b !== undefined) return list(b.args).flatMap((a) => semiJoinNodes(a, depth + 1));
  const s = (node as { SubLink?: JsonNode }).SubLink;
  if (s !== undefined) return s.subLinkType === 'EXISTS_SUBLINK' || s.subLinkType === 'ANY_SUBLINK' || s.subLinkType === 'ALL_SUBLINK' ? [s] : [];
  const e = (node as { A_Expr?: JsonNode }).A_Expr;
  if (e?.kind !== 'AEXPR_OP') return [];
  return [e.lexpr, e.rexpr].map((x) => (x as { SubLink?: JsonNode } | undefined)?.SubLink).filter((x): x is JsonNode => x?.subLinkType === 'EXPR_SUBLINK');
}

/**
 * One conjunct: reported to the mixing rule (equality of two plain references marked); its
 * lineage. A predicate's answer is judged with what chose the values it reads (attack round 8):
 * a CASE condition, a FILTER or a subquery's filter reading another row source must not choose
 * which masked test a row answers (`WHERE CASE WHEN g = 0 THEN <bit 0 of email> WHEN g = 1 THEN
 * <bit 1> … END` over a series `g` spells a whole value in one statement; so does `o.id IN
 * (SELECT 1 … WHERE <bit 0> UNION ALL SELECT 2 … WHERE <bit 1> …)`). So the leaves of its control
 * count as compared with its values and each other, except the tests of its semi-joins
 * (semiJoinNodes), judged at their own level (several semi-joins over one table, `NOT EXISTS (…
 * o.id = 1 AND NOT <bit 0>) AND NOT EXISTS (… o.id = 2 …)`, are refused by masking's one row
 * path per table: masking/test-paths.ts), and (`levelTag`, for HAVING) the level's own WHERE, whose rows its aggregates
 * summarise. `choosesRows`: false for an outer join's ON, which chooses no rows of its
 * level (what it chooses of the nullable side is that side's control: lineage.ts fromItem).
 */
export function comparison(what: string, node: unknown, scope: Scope, choosesRows = true, levelTag?: string): Lineage {
  const semis = choosesRows ? semiJoinNodes(node) : [];
  const tags = new Set<string>(levelTag === undefined ? [] : [levelTag]);
  for (const s of semis) {
    const tag = newSrc();
    semiJoins.set(s, tag);
    semiJoinTags.add(tag);
    tags.add(tag);
  }
  try {
    const e = (node as { A_Expr?: JsonNode }).A_Expr;
    const eq = e !== undefined && (e.kind === 'AEXPR_OP' || e.kind === 'AEXPR_NOT_DISTINCT') && list(e.name).length === 1 && str(list(e.name)[0]) === '=';
    let lin: Lineage;
    if (eq && e !== undefined) {
      const l = exprLineage(e.lexpr, scope);
      const r = exprLineage(e.rexpr, scope);
      lin = unionAll([l, r]);
      mixed(what, lin, lin.direct);
    } else if (choosesRows && (node as { BoolExpr?: JsonNode }).BoolExpr !== undefined) {
      const atoms: Lineage[] = [];
      lin = boolAtoms(node, scope, atoms, 0);
      for (const a of atoms) mixed(what, a, false);
      combined(what, atoms);
    } else {
      lin = exprLineage(node, scope);
      mixed(what, lin, false);
    }
    // What the test reads and what chose it, for the one-row-path-per-table rule (`tested`); an
    // equality of two plain columns (a join on a masked key) tells whole-value equality only.
    if (!(eq && lin.direct)) tested(controlledLeaves(lin, new Set()));
    if (choosesRows && lin.ctl !== undefined) {
      if (strictConjunct(node)) tags.add(OUTER_JOIN_LEVEL);
      const leaves = controlledLeaves(lin, tags);
      if (leaves.length > (lin.leaves ?? []).length) mixed(`${what} (with what chose the values it tests: a CASE condition, a FILTER, a subquery's filter)`, { ...empty(), leaves }, false);
    }
    return lin;
  } finally {
    for (const s of semis) {
      const tag = semiJoins.get(s);
      if (tag !== undefined) semiJoinTags.delete(tag);
      semiJoins.delete(s);
    }
  }
}

/**
 * A conjunct made of AND/OR/NOT: the lineage exprLineage gives it (lineage.ts, BoolExpr), and
 * each of its atoms — the operands that are not AND/OR/NOT themselves — in `atoms`. Each atom is
 * judged by the mixing rule on its own; together they are judged as a combination (`combined`,
 * masker.ts): one test of a masked value may stand beside tests of another row source (`o.total
 * > 90 OR c.email LIKE '%.com'`: the other source decides whether the row's one answer matters,
 * one bit per row), several may not (`(o.id = 1 AND <bit 0>) OR (o.id = 2 AND <bit 1>)` lets
 * the other source choose which test each row answers).
 */
function boolAtoms(node: unknown, scope: Scope, atoms: Lineage[], depth: number): Lineage {
  const b = (node as { BoolExpr?: JsonNode }).BoolExpr;
  if (b === undefined || depth > 100) {
    const l = exprLineage(node, scope);
    atoms.push(l);
    return l;
  }
  const inner: Lineage[] = [];
  const parts = list(b.args).map((a) => boolAtoms(a, scope, inner, depth + 1));
  const out = unionAll(parts);
  out.direct = false;
  // AND and OR run an operand only where those before it leave the answer open; here that
  // choice is judged with the atoms (`combined`): one atom of a masked value is one test (or one
  // piece of work) of its row, whichever other row asks; two or more beside another source's
  // atom are refused, as are masked atoms of different sources meeting anything else, and what
  // chose the atoms' values is judged with them (the control check in `comparison`).
  // Operands that all read one row source (`c.email LIKE 'a%' AND c.email LIKE '%.com'`) are
  // one test of that row.
  const leaves = out.leaves ?? [];
  const one = leaves.length > 0 && leaves.every((l) => l.alt === undefined && l.srcs.length === leaves[0].srcs.length && l.srcs.every((x, i) => x === leaves[0].srcs[i]));
  if (one) atoms.push(out);
  else atoms.push(...inner);
  return out;
}

/**
 * `JOIN ... USING (c)` compares the two sides' `c`; `NATURAL JOIN` compares columns only the
 * catalog names: whole rows of both sides, fail closed.
 */
export function joinComparisons(n: JsonNode, left: Item[], right: Item[], ctes: Map<string, OutputColumn[]>): void {
  const side = (items: Item[]): Scope => ({ items, ctes });
  for (const u of list(n.usingClause)) {
    const name = str(u);
    if (name === undefined) continue;
    const lin = unionAll([columnRefOnly([u], side(left)), columnRefOnly([u], side(right))]);
    mixed('a JOIN USING column', lin, lin.direct);
  }
  if (n.isNatural === true) mixed('a NATURAL JOIN (it compares the columns both sides share)', unionAll([...left, ...right].map(wholeOf)), false);
}
