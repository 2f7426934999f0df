import {
  columnRefOnly, exprLineage, list, selectOutputs, starAll, str, typeOf, union, unionAll, wholeOf,
  type Item, type Lineage, type OutputColumn, type Scope,
} from './lineage.js';
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

/** One conjunct: reported to the mixing rule (equality of two plain references marked); its lineage. */
export function comparison(what: string, node: unknown, scope: Scope): Lineage {
  const e = (node as { A_Expr?: JsonNode }).A_Expr;
  const eq = e !== undefined && (e.kind === 'AEXPR_OP' || e.kind === 'AEXPR_NOT_DISTINCT') && list(e.name).length === 1 && str(list(e.name)[0]) === '=';
  if (eq && e !== undefined) {
    const l = exprLineage(e.lexpr, scope);
    const r = exprLineage(e.rexpr, scope);
    const lin = unionAll([l, r]);
    mixed(what, lin, lin.direct);
    return lin;
  }
  const lin = exprLineage(node, scope);
  mixed(what, lin, false);
  return lin;
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
