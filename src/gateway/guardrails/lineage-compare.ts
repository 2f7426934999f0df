import {
  columnRefOnly, empty, exprLineage, list, selectOutputs, starAll, str, typeOf, union, unionAll, wholeOf,
  type Item, type Lineage, type OutputColumn, type Scope,
} from './lineage.js';
import { controlledLeaves, newSrc } from './lineage-mixing.js';
import { mixed, quantity } from './lineage-quantities.js';
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

/** The level tag of a SubLink that a predicate judges as a semi-join (lineage.ts), if it is one. */
export function semiJoinLevel(sublink: JsonNode): string | undefined {
  return semiJoins.get(sublink);
}

/**
 * The subqueries of a conjunct whose rows it uses only conjunctively: `EXISTS (…)`, `x IN (…)`,
 * `x op ANY (…)` as the conjunct itself, and a scalar subquery as an operand of the conjunct's
 * operator (no row: NULL, so the conjunct fails). Such a conjunct holds exactly when the
 * subquery's own conjuncts hold for some of its rows, each judged at its level: together they
 * tell no more than the same tests as conjuncts of a join. Not so under NOT, `ALL`, `IN (list)`,
 * `IS [NOT] DISTINCT FROM`, OR, CASE or a function: there a test that fails can make the
 * predicate hold, and another source's test can choose which test a row answers.
 */
function semiJoinNodes(node: unknown): JsonNode[] {
  const s = (node as { SubLink?: JsonNode }).SubLink;
  if (s !== undefined) return s.subLinkType === 'EXISTS_SUBLINK' || s.subLinkType === 'ANY_SUBLINK' ? [s] : [];
  const e = (node as { A_Expr?: JsonNode }).A_Expr;
  if (e?.kind !== 'AEXPR_OP') return [];
  return [e.lexpr, e.rexpr].map((x) => (x as { SubLink?: JsonNode } | undefined)?.SubLink).filter((x): x is JsonNode => x?.subLinkType === 'EXPR_SUBLINK');
}

/**
 * One conjunct: reported to the mixing rule (equality of two plain references marked); its
 * lineage. A predicate's answer is judged with what chose the values it reads (attack round 8):
 * a CASE condition, a FILTER or a subquery's filter reading another row source must not choose
 * which masked test a row answers (`WHERE CASE WHEN g = 0 THEN <bit 0 of email> WHEN g = 1 THEN
 * <bit 1> … END` over a series `g` spells a whole value in one statement; so do `o.id IN (SELECT
 * 1 … WHERE <bit 0> UNION ALL SELECT 2 … WHERE <bit 1> …)` and `NOT EXISTS (… o.id = 1 AND NOT
 * <bit 0>) AND NOT EXISTS (… o.id = 2 …)`). So the leaves of its control count as compared
 * with its values and each other, except the tests of its semi-joins (semiJoinNodes), judged at
 * their own level, and (`levelTag`, for HAVING) the level's own WHERE, whose rows its aggregates
 * summarise. `choosesRows`: false for an outer join's ON, which chooses no rows of its
 * level (what it chooses of the nullable side is that side's control: lineage.ts fromItem).
 */
export function comparison(what: string, node: unknown, scope: Scope, choosesRows = true, levelTag?: string): Lineage {
  const semis = choosesRows ? semiJoinNodes(node) : [];
  const tags = new Set<string>(levelTag === undefined ? [] : [levelTag]);
  for (const s of semis) {
    const tag = newSrc();
    semiJoins.set(s, tag);
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
    } else {
      lin = exprLineage(node, scope);
      mixed(what, lin, false);
    }
    if (choosesRows && lin.ctl !== undefined) {
      if (strictConjunct(node)) tags.add(OUTER_JOIN_LEVEL);
      const leaves = controlledLeaves(lin, tags);
      if (leaves.length > (lin.leaves ?? []).length) mixed(`${what} (with what chose the values it tests: a CASE condition, a FILTER, a subquery's filter)`, { ...empty(), leaves }, false);
    }
    return lin;
  } finally {
    for (const s of semis) semiJoins.delete(s);
  }
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
