import { attributeCall } from './attribute-calls.js';
import { writtenBy } from './lineage-writes.js';
import { analyzed, condition, inRecursive, mixed, quantity, SET_RETURNING_FUNCTIONS, SIZE_ARGUMENTS } from './lineage-quantities.js';
import { comparison, conjuncts, groupingKeys, joinComparisons, ordering, OUTER_JOIN_LEVEL, semiJoinLevel, setOperation } from './lineage-compare.js';
import { plainRef, rowKeys } from './lineage-keys.js';
import { caseLineage, computed, computedFrom, filterControl, inOrder, operatorLineage } from './lineage-control.js';
import { atLevel, leafSources, makeLeaf, mergeLeaves, newGroup, newSrc, selfLeaf, through, withSources, type Leaf } from './lineage-mixing.js';
import { CATALOG_SAFE_FUNCTIONS } from './catalog-functions.js';
import { DEFAULT_ALLOWED_FUNCTIONS } from './rules.js';
import type { JsonNode } from './walk.js';
import { charge, QUERY_LEVEL_WORK } from './work.js';

/**
 * Column lineage: for each output column of a statement, the stored columns its value is
 * computed from, read off the parse tree — through functions, casts, operators, aggregates,
 * subqueries, CTEs, set operations, VALUES, `*` and `t.*`, whole-row references and RETURNING.
 * Masking's column rules apply to these sources, not to the name the result column happens to
 * carry (masker.ts), so `reverse(card)` or `split_part(email, '@', 1)` stay masked.
 *
 * Policy-free, so it is cached with the rest of a statement's facts. The analysis
 * over-approximates: an unqualified name adds every plausible source, and where the tree cannot
 * say which columns a value comes from it says so (`wholeRow`: whole rows of a stored relation,
 * whose columns only the catalog knows; `opaque`: a function that is not a known built-in, or a
 * FETCH/EXECUTE of something prepared earlier), and the masker masks such a column as a whole
 * when the policy has column rules — fail closed.
 */

export interface Lineage {
  /** Stored column names the value is computed from (as the parser spells them). */
  cols: string[];
  /** Includes whole rows of a stored table or view (`row_to_json(u)`, `u`, `u.*` inside an expression). */
  wholeRow: boolean;
  /** Computed by something the tree cannot see into. */
  opaque: boolean;
  /** A plain column reference (possibly cast): the column rule's own mode applies. */
  direct: boolean;
  /** Stored relations (tables or views, by name) the value may come from: views are looked up in the catalog. */
  rels?: string[];
  /**
   * Qualified references `x.name` to a stored relation, as `rel` NUL `name`. PostgreSQL reads
   * `x.name` as the call `name(x)` on the whole row when the relation has no column `name`; only
   * the catalog can say, so the masker checks each (masker.ts).
   */
  attrs?: string[];
  /** The stored columns (and other values) it is computed from, with the row sources they are read through (lineage-mixing.ts). */
  leaves?: Leaf[];
  /**
   * What chose the value: what the tests that chose it read (a CASE WHEN condition, an
   * aggregate's FILTER, a nested level's row choice: rowControl), with their leaves (row
   * sources). A value chosen by masked data is masked as derived (masker.ts); a predicate that
   * uses the value judges its control with it (lineage-compare.ts `comparison`).
   */
  ctl?: Lineage;
}

/** An `attrs` entry. */
export function attrKey(rel: string, name: string): string {
  return `${rel}\u0000${name}`;
}

/** One entry of a target list: a column, or a `*`/`t.*` that expands to columns named by the server. */
export interface OutputColumn {
  name?: string;
  lin: Lineage;
  star?: StarInfo;
}

export interface StarInfo {
  /** Expands columns of stored relations: each such column is its own source, by name. */
  base: boolean;
  /** Those stored relations. */
  rels?: string[];
  /** Each such relation with the row sources it is read through (lineage-mixing.ts). */
  bases?: { rel: string; srcs: string[] }[];
  /** Columns of derived tables (subqueries, CTEs) by output name. */
  derived: Record<string, Lineage>;
  /** Union of everything the non-base part can produce (for names not in `derived`). */
  other: Lineage;
  /** What chose the rows every expanded column comes from (a nested query level's filters: rowControl). */
  ctl?: Lineage;
}

export interface ResultLineage {
  columns: OutputColumn[];
  /** Several statements return rows, or the shape is unknown: every column gets `all`. */
  merged: boolean;
  /** Union over every column. */
  all: Lineage;
}

/** The lineage of a result nothing is known about (a statement the gateway did not see defined). */
export const UNKNOWN_LINEAGE: ResultLineage = { columns: [], merged: true, all: { cols: [], wholeRow: false, opaque: true, direct: false } };

export const empty = (): Lineage => ({ cols: [], wholeRow: false, opaque: false, direct: false });

export function union(into: Lineage, from: Lineage): Lineage {
  charge(1 + into.cols.length + from.cols.length + (into.rels?.length ?? 0) + (from.rels?.length ?? 0) + (into.attrs?.length ?? 0) + (from.attrs?.length ?? 0));
  for (const c of from.cols) if (!into.cols.includes(c)) into.cols.push(c);
  if (from.rels !== undefined && from.rels.length > 0) into.rels = [...new Set([...(into.rels ?? []), ...from.rels])];
  if (from.attrs !== undefined && from.attrs.length > 0) into.attrs = [...new Set([...(into.attrs ?? []), ...from.attrs])];
  into.wholeRow ||= from.wholeRow;
  into.opaque ||= from.opaque;
  if (from.leaves !== undefined && from.leaves.length > 0) into.leaves = mergeLeaves(into.leaves, from.leaves);
  if (from.ctl !== undefined) into.ctl = controlOf(into.ctl, from.ctl);
  return into;
}

/**
 * `ctl` merged with what `c` reads (its data and its own control), leaves included: which row
 * sources chose a value decides whether a predicate over it mixes sources (attack round 8: a CASE
 * condition or a subquery's filter of another source choosing which masked test a row answers).
 */
export function controlOf(ctl: Lineage | undefined, c: Lineage): Lineage {
  const out: Lineage = ctl === undefined ? empty() : { ...ctl, cols: [...ctl.cols] };
  const { ctl: inner, ...data } = c;
  union(out, data);
  if (inner !== undefined) union(out, inner);
  out.direct = false;
  return out;
}

/** The value and what chose it: the lineage judged where a value acts as a quantity or is written. */
export function controlled(lin: Lineage): Lineage {
  if (lin.ctl === undefined) return lin;
  const { ctl, ...data } = lin;
  return { ...union({ ...data, cols: [...data.cols] }, ctl), direct: false };
}

/** Union; direct only when every part is a plain column reference. */
export function unionAll(list: readonly Lineage[]): Lineage {
  // What `union` into one fresh lineage gives, in one pass: merging one by one copies the sets
  // gathered so far at every step (quadratic in a wide select list or a long CASE; work.ts).
  const out = empty();
  const cols = new Set<string>();
  const rels = new Set<string>();
  const attrs = new Set<string>();
  const keys = new Set<string>();
  const leaves: Leaf[] = [];
  let hasRels = false;
  let hasAttrs = false;
  for (const l of list) {
    charge(1 + l.cols.length + (l.rels?.length ?? 0) + (l.attrs?.length ?? 0) + 2 * (l.leaves?.length ?? 0));
    for (const c of l.cols) cols.add(c);
    if (l.rels !== undefined && l.rels.length > 0) {
      hasRels = true;
      for (const r of l.rels) rels.add(r);
    }
    if (l.attrs !== undefined && l.attrs.length > 0) {
      hasAttrs = true;
      for (const a of l.attrs) attrs.add(a);
    }
    out.wholeRow ||= l.wholeRow;
    out.opaque ||= l.opaque;
    for (const leaf of l.leaves ?? []) if (!keys.has(leaf.key)) {
      keys.add(leaf.key);
      leaves.push(leaf);
    }
    if (l.ctl !== undefined) out.ctl = controlOf(out.ctl, l.ctl);
  }
  out.cols = [...cols];
  if (hasRels) out.rels = [...rels];
  if (hasAttrs) out.attrs = [...attrs];
  if (leaves.length > 0) out.leaves = leaves;
  out.direct = list.length > 0 && list.every((l) => l.direct);
  return out;
}

export interface Item {
  alias: string;
  /** Row source id (lineage-mixing.ts); assigned on first use. */
  id?: string;
  /** A stored relation (table or view) by name. */
  base?: string;
  /** A derived table's columns. */
  outs?: OutputColumn[];
  /** Every column has this lineage (functions in FROM, XMLTABLE, JSON_TABLE, joins with an alias). */
  all?: Lineage;
  /** The target of an INSERT/UPDATE/MERGE: what the statement writes into its columns (RETURNING reads it). */
  written?: Written;
  /**
   * The nullable side of an outer join: its ON conditions choose whether a row of this item or
   * NULLs stand beside each row of the other side, so they chose every value read from it.
   */
  ctl?: Lineage;
}

/** Values a data-modifying statement writes into its target, by column (`any`: columns it does not name). */
export interface Written {
  byCol: Map<string, Lineage>;
  any: Lineage;
}

export interface Scope {
  items: Item[];
  outer?: Scope;
  ctes: Map<string, OutputColumn[]>;
  /** Past grouping (targets, HAVING, ORDER BY of a grouped query): function values depend on the rows of every item. */
  grouped?: boolean;
  /** What chose this level's rows (WHERE/ON, its FROM items' rows: rowControl): the ctl of its aggregates and window functions. */
  rowCtl?: Lineage;
}

/**
 * Aggregates by name (built-ins; an unknown function is opaque anyway). Any call with `*`,
 * DISTINCT, ORDER BY, FILTER or OVER is one too.
 */
const AGGREGATES = new Set([
  'count', 'sum', 'avg', 'min', 'max', 'bool_or', 'bool_and', 'every', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg',
  'json_object_agg', 'jsonb_object_agg', 'json_objectagg', 'json_arrayagg', 'bit_or', 'bit_and', 'bit_xor', 'xmlagg', 'any_value',
  'range_agg', 'range_intersect_agg', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr',
  'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx',
  'regr_sxy', 'regr_syy', 'percentile_cont', 'percentile_disc', 'mode', 'rank', 'dense_rank', 'percent_rank', 'cume_dist',
]);

function aggregateCall(name: string, call: JsonNode): boolean {
  return AGGREGATES.has(name) || call.agg_star === true || call.agg_distinct === true || call.agg_order !== undefined || call.agg_filter !== undefined || call.over !== undefined;
}

/** The row source id of a FROM item. */
export function itemId(item: Item): string {
  item.id ??= newSrc();
  return item.id;
}

/** Every row source an item's rows are made of: its own, and those of the values it passes on. */
function itemSources(item: Item): string[] {
  const out = new Set<string>([itemId(item)]);
  const add = (l: Lineage | undefined): void => {
    charge(1 + (l?.leaves?.length ?? 0));
    for (const s of leafSources(l)) out.add(s);
  };
  add(item.all);
  for (const o of item.outs ?? []) {
    add(o.lin);
    for (const b of o.star?.bases ?? []) for (const s of b.srcs) out.add(s);
  }
  return [...out];
}

/** Row sources of every item of one query level. */
function levelSources(scope: Scope): string[] {
  charge(1 + scope.items.length);
  return [...new Set(scope.items.flatMap(itemSources))];
}

/** A stored column (or whole row) of the base item: its own leaf. */
function baseLeaf(lin: Lineage, srcs: readonly string[], alt?: [number, number]): Lineage {
  return { ...lin, leaves: [makeLeaf(lin, srcs, alt)] };
}

/**
 * Built-ins whose value comes from no row: sequence numbers and transaction ids. Volatile, so not
 * in the catalog's safe list, but no more opaque than a constant (`INSERT ... VALUES (nextval(...))`).
 */
const ROWLESS_FUNCTIONS = ['nextval', 'setval', 'txid_current', 'pg_current_xact_id'];
const KNOWN_FUNCTIONS = new Set([...CATALOG_SAFE_FUNCTIONS, ...DEFAULT_ALLOWED_FUNCTIONS, ...ROWLESS_FUNCTIONS]);

/** Says nothing: no column, no whole row, nothing opaque (a constant, a parameter). */
function isEmpty(l: Lineage): boolean {
  return l.cols.length === 0 && !l.wholeRow && !l.opaque && (l.rels === undefined || l.rels.length === 0);
}

/** A stored column's own lineage plus whatever the statement writes into it (a target's RETURNING). */
function withWritten(own: Lineage, w: Written | undefined, col: string | undefined): Lineage {
  if (w === undefined) return own;
  const parts = [own];
  const byCol = col === undefined ? [...w.byCol.values()] : [w.byCol.get(col)];
  for (const l of [...byCol, w.any]) if (l !== undefined && !isEmpty(l)) parts.push(l);
  return parts.length === 1 ? own : unionAll(parts);
}

export function str(n: unknown): string | undefined {
  return (n as { String?: { sval?: string } } | undefined)?.String?.sval;
}

export function typeOf(n: unknown): [string, JsonNode] | undefined {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) return undefined;
  const keys = Object.keys(n);
  if (keys.length !== 1) return undefined;
  return [keys[0], (n as Record<string, JsonNode>)[keys[0]]];
}

export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Lineage of an output column: stored columns of a derived column, or the star's share. `call`:
 * the name was written qualified (`o.name`), where a name that is no column of the expanded
 * relations is a call on the row (attrs); an unqualified name never is (PostgreSQL reads it as a
 * column, else as a FROM item's whole row).
 */
function starLineage(star: StarInfo, name: string, call = true): Lineage {
  const parts: Lineage[] = [];
  if (star.base) parts.push({ cols: [name], wholeRow: false, opaque: false, direct: true, rels: star.rels ?? [], ...(call ? { attrs: (star.rels ?? []).map((r) => attrKey(r, name)) } : {}) });
  const d = star.derived[name];
  if (d !== undefined) parts.push(d);
  else if (star.other.cols.length > 0 || star.other.wholeRow || star.other.opaque || !star.base) parts.push(star.other);
  const out = unionAll(parts);
  // Leaves: the name comes from exactly one of the expanded relations or derived columns.
  const bases = star.bases ?? [];
  const alts: Leaf[][] = bases.map((b) => [makeLeaf({ cols: [name], wholeRow: false, opaque: false, direct: true, rels: [b.rel], ...(call ? { attrs: [attrKey(b.rel, name)] } : {}) }, b.srcs)]);
  if (star.base && bases.length === 0) alts.push([makeLeaf({ cols: [name], wholeRow: false, opaque: false, direct: true, rels: star.rels ?? [] }, [newSrc()])]);
  const rest = d ?? (star.other.cols.length > 0 || star.other.wholeRow || star.other.opaque || !star.base || (star.other.leaves ?? []).length > 0 ? star.other : undefined);
  if (rest !== undefined) alts.push(rest.leaves ?? [makeLeaf(rest, [newSrc()])]);
  out.leaves = alternatives(alts);
  if (star.ctl !== undefined) out.ctl = controlOf(out.ctl, star.ctl);
  return out;
}

/** Leaf sets of which exactly one is the real source. */
function alternatives(alts: readonly Leaf[][]): Leaf[] {
  if (alts.length === 1) return [...alts[0]];
  const group = newGroup();
  return alts.flatMap((ls, i) => ls.map((l) => makeLeaf(l.lin, l.srcs, [group, i], l.lvl)));
}

/** A value read from `item`, with what chose the item's rows in its level (an outer join's ON: Item.ctl). */
function chosenIn(item: Item, lin: Lineage): Lineage {
  return item.ctl === undefined ? lin : { ...lin, ctl: controlOf(lin.ctl, item.ctl) };
}

function resolveIn(item: Item, col: string, qualified = true): Lineage {
  return chosenIn(item, resolveOwn(item, col, qualified));
}

function resolveOwn(item: Item, col: string, qualified: boolean): Lineage {
  const id = itemId(item);
  if (item.base !== undefined) return withWritten(baseLeaf({ cols: [col], wholeRow: false, opaque: false, direct: true, rels: [item.base] }, [id]), item.written, col);
  if (item.all !== undefined) return through(item.all, id);
  const outs = item.outs ?? [];
  const hits = outs.filter((o) => o.star === undefined && o.name === col).map((o) => o.lin);
  for (const o of outs) if (o.star !== undefined) hits.push(starLineage(o.star, col, qualified));
  return through(hits.length > 0 ? unionAll(hits) : unionAll(outs.map((o) => o.lin)), id);
}

export function wholeOf(item: Item): Lineage {
  return chosenIn(item, wholeOwn(item));
}

function wholeOwn(item: Item): Lineage {
  const id = itemId(item);
  if (item.base !== undefined) return { ...withWritten(baseLeaf({ cols: [], wholeRow: true, opaque: false, direct: false, rels: [item.base] }, [id]), item.written, undefined), direct: false };
  if (item.all !== undefined) return { ...through(item.all, id), direct: false };
  return { ...through(unionAll((item.outs ?? []).map((o) => (o.star !== undefined ? starAll(o.star) : o.lin))), id), direct: false };
}

export function starAll(star: StarInfo): Lineage {
  const out = unionAll([star.other, ...Object.values(star.derived)]);
  if (star.base) {
    out.wholeRow = true;
    union(out, { cols: [], wholeRow: true, opaque: false, direct: false, rels: star.rels ?? [] });
    const bases = star.bases ?? [];
    const leaves = bases.map((b) => makeLeaf({ cols: [], wholeRow: true, opaque: false, direct: false, rels: [b.rel] }, b.srcs));
    if (bases.length === 0) leaves.push(makeLeaf({ cols: [], wholeRow: true, opaque: false, direct: false, rels: star.rels ?? [] }, [newSrc()]));
    out.leaves = mergeLeaves(out.leaves, leaves);
  }
  if (star.ctl !== undefined) out.ctl = controlOf(out.ctl, star.ctl);
  out.direct = false;
  return out;
}

function findItem(scope: Scope | undefined, alias: string): Item | undefined {
  for (let s = scope; s !== undefined; s = s.outer) {
    charge(1 + s.items.length);
    const hit = s.items.find((i) => i.alias === alias);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function columnRef(fields: unknown[], scope: Scope): Lineage {
  const names = fields.map(str);
  // `c.to_jsonb` may be to_jsonb(c): whatever precedes the name, as a whole (attribute-calls.ts).
  if (attributeCall(names) !== undefined) return { ...union(columnRefOnly(fields, scope), columnRef(fields.slice(0, -1), scope)), direct: false };
  return columnRefOnly(fields, scope);
}

export function columnRefOnly(fields: unknown[], scope: Scope): Lineage {
  const names = fields.map(str);
  const last = names[names.length - 1];
  if (last === undefined) {
    // `*` or `t.*` inside an expression (row_to_json(t.*)): whole rows.
    const rel = names.length > 1 ? names[names.length - 2] : undefined;
    const items = rel === undefined ? allItems(scope) : [findItem(scope, rel)].filter((i): i is Item => i !== undefined);
    if (items.length === 0) return baseLeaf({ cols: [], wholeRow: true, opaque: false, direct: false }, [newSrc()]);
    return unionAll(items.map(wholeOf));
  }
  if (names.length >= 2) {
    const item = findItem(scope, names[names.length - 2] ?? '');
    if (item?.base !== undefined) return { ...union(resolveIn(item, last), { ...empty(), attrs: [attrKey(item.base, last)] }) };
    if (item?.outs !== undefined && !item.outs.some((o) => o.star !== undefined || o.name === last)) {
      // No output column of that name: `x.f` is f(x), a function of the derived table's whole row.
      return { ...wholeOf(item), opaque: true, direct: false };
    }
    if (item !== undefined) return resolveIn(item, last);
  }
  // Unqualified (or qualified by something that is not a FROM item): every plausible source,
  // plus the whole row when the name is a FROM item's alias.
  const out: Lineage = { cols: [last], wholeRow: false, opaque: false, direct: true };
  // Leaves: exactly one of the plausible items supplies the name (lineage-mixing.ts).
  const alts: Leaf[][] = [];
  for (let s: Scope | undefined = scope; s !== undefined; s = s.outer) {
    for (const item of s.items) {
      if (item.base !== undefined) union(out, { cols: [], wholeRow: false, opaque: false, direct: true, rels: [item.base] });
      const own = resolveIn(item, last, false);
      const parts = item.base === undefined || item.written !== undefined ? [own] : [];
      if (item.alias === last) parts.push(wholeOf(item));
      const alt: Leaf[] = [...(own.leaves ?? [])];
      for (const p of parts) {
        out.direct &&= p.direct;
        const { leaves, ...rest } = p;
        union(out, rest);
        if (p !== own) alt.push(...(leaves ?? []));
      }
      alts.push(alt);
    }
  }
  out.leaves = alts.length === 0 ? [makeLeaf(out, [newSrc()])] : alternatives(alts);
  return out;
}

function allItems(scope: Scope): Item[] {
  return scope.items;
}

/** Every source an expression's value can come from. */
export function exprLineage(node: unknown, scope: Scope, depth = 0): Lineage {
  charge(1);
  if (depth > 2000) return { cols: [], wholeRow: false, opaque: true, direct: false };
  if (Array.isArray(node)) return unionAll(node.map((n) => exprLineage(n, scope, depth + 1)));
  const t = typeOf(node);
  if (t === undefined) {
    if (node === null || typeof node !== 'object') return empty();
    return unionAll(Object.values(node as JsonNode).map((v) => exprLineage(v, scope, depth + 1)));
  }
  const [type, inner] = t;
  switch (type) {
    case 'ColumnRef':
      return columnRef(list(inner.fields), scope);
    case 'SubLink': {
      // A semi-join a predicate judges conjunct by conjunct (lineage-compare.ts): its level's row
      // choice is tagged, so the predicate does not judge those tests again, together.
      const sub = unionAll(selectOutputs(inner.subselect, scope, undefined, false, semiJoinLevel(inner), true).map((o) => (o.star !== undefined ? starAll(o.star) : o.lin)));
      const test = exprLineage(inner.testexpr, scope, depth + 1);
      const out = union({ ...sub, cols: [...sub.cols] }, test);
      out.direct = false;
      // `x IN (SELECT …)`, `x = ANY (SELECT …)`, `(a, b) < (SELECT …)`: x is compared with the rows.
      if (inner.testexpr !== undefined) computedFrom('a comparison with a subquery', out, [test, sub]);
      return out;
    }
    case 'A_Expr':
      return operatorLineage(inner, scope, depth);
    case 'CaseExpr':
      return caseLineage(inner, scope, depth);
    case 'FuncCall': {
      const names = list(inner.funcname).map(str);
      const name = names[names.length - 1] ?? '';
      const schema = names.length > 1 ? names[names.length - 2] : 'pg_catalog';
      // The arguments are computed with together (lineage-control.ts); the FILTER only chooses rows.
      const argList = list(inner.args).map((a) => exprLineage(a, scope, depth + 1));
      const args = unionAll(argList);
      computedFrom(`the arguments of ${name}()`, args, argList);
      let out = unionAll([args, exprLineage(inner.agg_order, scope, depth + 1)]);
      const filter = filterControl(inner.agg_filter, scope);
      if (filter !== undefined) out.ctl = controlOf(out.ctl, filter);
      // An aggregate per group, or a window function per row, computes over the rows the level's
      // WHERE/ON chose: a count over a join whose condition tests a masked value per joined row
      // is a number of many bits for each row (attack round 7 #1), at the top level too. (A
      // nested level's values carry all of its row choice anyway; a top-level aggregate without
      // GROUP BY is one value per statement, like the top level's row choice.)
      if (scope.rowCtl !== undefined && (inner.over !== undefined || scope.grouped === true) && aggregateCall(name, inner)) out.ctl = controlOf(out.ctl, scope.rowCtl);
      const known = schema === 'pg_catalog' && KNOWN_FUNCTIONS.has(name);
      out.direct = false;
      // `count(email)`, `count(DISTINCT email)` of a plain stored column: how many rows hold a
      // value, or how many different whole values there are — a number that `count(*) … WHERE
      // email IS NOT NULL` and `SELECT DISTINCT email` (whole-value equality, lineage-keys.ts)
      // give already. Not masked; what a FILTER tests stays its control (masked as chosen).
      if (name === 'count' && schema === 'pg_catalog' && inner.over === undefined && argList.length === 1 && list(inner.agg_order).length === 0 && plainRef(list(inner.args)[0], argList[0])) {
        let n: Lineage = filter === undefined ? empty() : { ...empty(), ctl: controlOf(undefined, filter) };
        if (scope.grouped === true) n = withSources(n, levelSources(scope));
        return n;
      }
      // Quantities (lineage-quantities.ts): how many rows a set-returning function returns, and
      // how a window numbers rows, must not follow a masked value.
      if (SET_RETURNING_FUNCTIONS.has(name)) quantity(`the arguments of ${name}() (the number of rows it returns)`, out);
      // How much work a call does, set by an argument: time would tell the value (attack round 5 #1).
      const sized = SIZE_ARGUMENTS.get(name);
      if (sized !== undefined && schema === 'pg_catalog') quantity(`the size argument of ${name}() (the time it takes)`, unionAll(sized.map((i) => argList[i]).filter((l): l is Lineage => l !== undefined)));
      const over = inner.over as JsonNode | undefined;
      if (over !== undefined) {
        quantity('the PARTITION BY/ORDER BY of a window', exprLineage([over.partitionClause, over.orderClause], scope, depth + 1));
        quantity('a window frame offset (the number of rows a frame holds)', exprLineage([over.startOffset, over.endOffset], scope, depth + 1));
      }
      // Row sources (lineage-mixing.ts): rows a set-returning function adds, a function the tree
      // cannot see into (it may be one), and values computed over several rows.
      if (SET_RETURNING_FUNCTIONS.has(name)) out = withSources(out, [newSrc()]);
      if (!known) {
        out.opaque = true;
        out = selfLeaf(out, [newSrc(), ...leafSources(out)]);
      }
      if (over !== undefined || scope.grouped === true) out = withSources(out, levelSources(scope));
      return out;
    }
    case 'A_Const':
    case 'ParamRef':
    case 'SQLValueFunction':
      return empty();
    default: {
      // Operands: each field, and each element of a list field (MinMaxExpr's arguments, ...).
      // AND/OR and COALESCE evaluate an operand only where those before it leave the answer open.
      const ordered = (type === 'BoolExpr' && inner.boolop !== 'NOT_EXPR') || type === 'CoalesceExpr';
      const parts = ordered
        ? list(inner.args).map((a) => exprLineage(a, scope, depth + 1))
        : Object.values(inner).flatMap((v): unknown[] => (Array.isArray(v) ? (v as unknown[]) : [v])).map((v) => exprLineage(v, scope, depth + 1));
      const out = unionAll(parts);
      out.direct = type === 'TypeCast' && out.direct;
      computed(type, out, parts);
      if (ordered) inOrder(`the operands of ${type === 'BoolExpr' ? String(inner.boolop).replace('_EXPR', '') : 'COALESCE'} (each runs only where those before it leave the answer open)`, parts);
      return out;
    }
  }
}

export function fromItem(node: unknown, scope: Scope, into: Item[]): void {
  const t = typeOf(node);
  if (t === undefined) return;
  const [type, n] = t;
  const alias = (n.alias as { aliasname?: string; colnames?: unknown[] } | undefined);
  const rename = (outs: OutputColumn[]): OutputColumn[] => {
    const cols = list(alias?.colnames).map(str);
    return outs.map((o, i) => (cols[i] !== undefined && o.star === undefined ? { ...o, name: cols[i] } : o));
  };
  switch (type) {
    case 'RangeVar': {
      const relname = String(n.relname ?? '');
      const cte = n.schemaname === undefined ? scope.ctes.get(relname) : undefined;
      const name = alias?.aliasname ?? relname;
      if (cte !== undefined) into.push({ alias: name, outs: rename(cte) });
      // `customers AS c(i, n, x)` renames stored columns: which is which only the catalog knows.
      else if (list(alias?.colnames).length > 0) into.push({ alias: name, all: { cols: [], wholeRow: true, opaque: false, direct: false, rels: [relname] } });
      else into.push({ alias: name, base: relname });
      return;
    }
    case 'RangeSubselect': {
      const lateral = n.lateral === true ? { ...scope, items: [...scope.items, ...into] } : scope;
      into.push({ alias: alias?.aliasname ?? '', outs: rename(selectOutputs(n.subquery, { items: [], outer: lateral, ctes: scope.ctes })) });
      return;
    }
    case 'JoinExpr': {
      const inner: Item[] = [];
      fromItem(n.larg, scope, inner);
      const left = inner.length;
      fromItem(n.rarg, { ...scope, items: [...scope.items, ...into, ...inner] }, inner);
      joinComparisons(n, inner.slice(0, left), inner.slice(left), scope.ctes);
      // An outer join's ON chooses, per row of the kept side, whether the other side's values or
      // NULLs stand beside it (one ON test per joined row: attack round 8, a chain of LEFT JOINs
      // of the masked table, each ON testing another bit for another row of the kept side).
      const nullable = n.jointype === 'JOIN_LEFT' ? inner.slice(left) : n.jointype === 'JOIN_RIGHT' ? inner.slice(0, left) : n.jointype === 'JOIN_FULL' ? inner : [];
      if (nullable.length > 0 && n.quals !== undefined) {
        const on = exprLineage(n.quals, { ...scope, items: [...scope.items, ...into, ...inner] });
        const chose = atLevel(controlOf(undefined, on), OUTER_JOIN_LEVEL);
        for (const item of nullable) item.ctl = controlOf(item.ctl, chose);
      }
      into.push(...inner);
      if (alias?.aliasname !== undefined) into.push({ alias: alias.aliasname, all: unionAll(inner.map(wholeOf)) });
      return;
    }
    case 'RangeTableSample':
      // How many rows the sample keeps (attack round 4 #2).
      quantity('the arguments of TABLESAMPLE (the number of rows it keeps)', exprLineage([n.args, n.repeatable], { ...scope, items: [...scope.items, ...into] }));
      fromItem(n.relation, scope, into);
      return;
    default: {
      // Functions in FROM, XMLTABLE, JSON_TABLE: every column comes from all their arguments.
      const lateral: Scope = { ...scope, items: [...scope.items, ...into] };
      const all = exprLineage(n, lateral);
      all.direct = false;
      quantity('the arguments of a function in FROM (the number of rows it returns)', all);
      into.push({ alias: alias?.aliasname ?? '', all });
    }
  }
}

function targets(targetList: unknown, scope: Scope): OutputColumn[] {
  const outs: OutputColumn[] = [];
  for (const t of list(targetList)) {
    const rt = (t as { ResTarget?: JsonNode }).ResTarget;
    if (rt === undefined) continue;
    const ref = (rt.val as { ColumnRef?: { fields?: unknown[] } } | undefined)?.ColumnRef;
    const fields = list(ref?.fields);
    if (ref !== undefined && fields.length > 0 && (fields[fields.length - 1] as { A_Star?: unknown }).A_Star !== undefined) {
      const rel = fields.length > 1 ? str(fields[fields.length - 2]) : undefined;
      const items = rel === undefined ? scope.items : [findItem(scope, rel)].filter((i): i is Item => i !== undefined);
      const star: StarInfo = { base: items.length === 0, derived: {}, other: empty() };
      for (const item of items) {
        const id = itemId(item);
        if (item.ctl !== undefined) star.ctl = controlOf(star.ctl, item.ctl);
        if (item.base !== undefined) {
          star.base = true;
          star.rels = [...(star.rels ?? []), item.base];
          star.bases = [...(star.bases ?? []), { rel: item.base, srcs: [id] }];
        }
        else if (item.all !== undefined) union(star.other, through(item.all, id));
        else for (const o of item.outs ?? []) {
          if (o.star !== undefined) {
            star.base ||= o.star.base;
            if (o.star.rels !== undefined) star.rels = [...(star.rels ?? []), ...o.star.rels];
            star.bases = [...(star.bases ?? []), ...(o.star.bases ?? []).map((b) => ({ rel: b.rel, srcs: [...b.srcs, id] }))];
            if (o.star.ctl !== undefined) star.ctl = controlOf(star.ctl, o.star.ctl);
            union(star.other, through(starAll({ ...o.star, base: false }), id));
          } else if (o.name !== undefined) star.derived[o.name] = union(star.derived[o.name] ?? empty(), through(o.lin, id));
          else union(star.other, through(o.lin, id));
        }
      }
      outs.push({ star, lin: starAll(star) });
      continue;
    }
    const lin = exprLineage(rt.val, scope);
    const name = typeof rt.name === 'string' ? rt.name : ref !== undefined ? str(fields[fields.length - 1]) : undefined;
    outs.push(name === undefined ? { lin } : { name, lin });
  }
  return outs;
}

/** The CTEs of a WITH clause (of a SELECT or a data-modifying statement), added to those in scope. */
function withCtes(withClause: unknown, outer: Scope | undefined, inherited: Map<string, OutputColumn[]>): Map<string, OutputColumn[]> {
  charge(1 + inherited.size);
  const ctes = new Map(inherited);
  const w = withClause as { ctes?: unknown[]; recursive?: boolean } | undefined;
  for (const c of list(w?.ctes)) {
    const cte = (c as { CommonTableExpr?: JsonNode }).CommonTableExpr;
    if (cte === undefined) continue;
    const name = String(cte.ctename ?? '');
    const colnames = list(cte.aliascolnames).map(str);
    const rename = (outs: OutputColumn[]): OutputColumn[] => outs.map((o, i) => (colnames[i] !== undefined && o.star === undefined ? { ...o, name: colnames[i] } : o));
    const compute = (): OutputColumn[] => {
      const run = (): OutputColumn[] => rename(queryOutputs(cte.ctequery, { items: [], outer, ctes }));
      return w?.recursive === true ? inRecursive(run) : run();
    };
    if (w?.recursive === true) {
      // The recursive term reads the CTE itself: iterate column by column to a fixpoint (a few
      // rounds), else every column gets the union of all (over-approximating, never missing).
      // Seeded with the non-recursive term's columns (each round adds what the recursive term
      // computes from them): a placeholder without sources would look like a dictionary to the
      // mixing rule (lineage-control.ts), `reverse(v)` of a masked `v` a comparison with it.
      const q = (cte.ctequery as { SelectStmt?: JsonNode } | undefined)?.SelectStmt;
      const seed = q?.op === 'SETOP_UNION' && q.larg !== undefined ? inRecursive(() => rename(selectOutputs({ SelectStmt: q.larg }, outer, ctes))) : [];
      ctes.set(name, seed.length > 0 ? seed : [{ star: { base: false, derived: {}, other: empty() }, lin: empty() }]);
      let cur = compute();
      const perColumn = (outs: OutputColumn[]): boolean => outs.length > 0 && outs.every((o) => o.star === undefined && o.name !== undefined);
      let stable = false;
      for (let round = 0; round < 8 && perColumn(cur); round++) {
        ctes.set(name, cur);
        const prev = cur;
        const next = compute();
        if (next.length !== prev.length) break;
        cur = next.map((o, i) => (o.star === undefined ? { ...o, lin: unionAll([prev[i].lin, o.lin]) } : o));
        if (cur.every((o, i) => sameLineage(o.lin, prev[i].lin))) {
          stable = true;
          break;
        }
      }
      if (!stable) {
        const all = unionAll(cur.map((o) => (o.star !== undefined ? starAll(o.star) : o.lin)));
        ctes.set(name, [{ star: { base: false, derived: {}, other: all }, lin: all }]);
      }
    }
    ctes.set(name, compute());
  }
  return ctes;
}

/** Reads something: a column, whole rows or something the tree cannot see into. */
export function reads(l: Lineage | undefined): boolean {
  return l !== undefined && (l.cols.length > 0 || l.wholeRow || l.opaque);
}

/**
 * Control through a query level (attack round 7 #1): which rows a nested level yields — whether
 * it yields any (EXISTS, a scalar subquery's NULL), how many (count(*)), which (IN, ARRAY, a
 * LATERAL or outer-joined derived table, a branch of a set operation tagged with a constant) — is
 * decided by its WHERE/ON/HAVING conditions, GROUP BY keys, LIMIT/OFFSET and by the rows of its
 * own FROM items. Every value the level yields is chosen by them, so what they read is the `ctl`
 * of each of its output columns, and flows on wherever the value goes (result cells, keys,
 * quantities, writes). Only the statement's top level is exempt: there the same tests choose
 * which rows come back, one bit per row (docs/gateway.md, "What masking does not promise").
 */
export function rowControl(tests: readonly Lineage[], items: readonly Item[], lvl?: string): Lineage | undefined {
  let ctl: Lineage | undefined;
  const add = (l: Lineage | undefined): void => {
    if (l === undefined) return;
    // A test that reads no column still says which rows of *which sources* pass (`g = 0` over a
    // series beside a masked test): its leaves count.
    if (reads(l) || (l.leaves ?? []).length > 0) ctl = controlOf(ctl, l);
    else if (l.ctl !== undefined) ctl = controlOf(ctl, l.ctl);
  };
  // The level's own tests, tagged with the level (lineage-mixing.ts `lvl`); what chose its FROM
  // items' rows keeps its own tags.
  for (const t of tests) add(lvl === undefined ? t : atLevel(t, lvl));
  for (const item of items) {
    add(item.all?.ctl === undefined ? undefined : { ...empty(), ctl: item.all.ctl });
    for (const o of item.outs ?? []) {
      add(o.lin.ctl === undefined ? undefined : { ...empty(), ctl: o.lin.ctl });
      add(o.star?.ctl);
    }
  }
  return ctl;
}

/** Output columns chosen by `ctl` (rowControl). */
export function chosenBy(outs: OutputColumn[], ctl: Lineage | undefined): OutputColumn[] {
  if (ctl === undefined) return outs;
  return outs.map((o) => {
    const lin = { ...o.lin, ctl: controlOf(o.lin.ctl, ctl) };
    return o.star === undefined ? { ...o, lin } : { ...o, lin, star: { ...o.star, ctl: controlOf(o.star.ctl, ctl) } };
  });
}

/**
 * Output columns of a SELECT (or VALUES, or set operation). `top`: the statement's own top level,
 * whose row choice is not control of its values (rowControl).
 */
export function selectOutputs(node: unknown, outer: Scope | undefined, inheritedCtes?: Map<string, OutputColumn[]>, top = false, lvl?: string, asValue = false): OutputColumn[] {
  charge(QUERY_LEVEL_WORK);
  const sel = (node as { SelectStmt?: JsonNode } | undefined)?.SelectStmt;
  if (sel === undefined) return [{ lin: { cols: [], wholeRow: false, opaque: true, direct: false } }];
  const ctes = withCtes(sel.withClause, outer, inheritedCtes ?? outer?.ctes ?? new Map<string, OutputColumn[]>());
  const scope: Scope = { items: [], outer, ctes };
  if (sel.op !== undefined && sel.op !== 'SETOP_NONE') {
    const outs = setOperation(sel, outer, ctes);
    ordering(sel, outs, scope, true);
    rowKeys(sel, outs, scope, true);
    return outs;
  }
  if (sel.valuesLists !== undefined) {
    const rows = list(sel.valuesLists).map((row) => list((row as { List?: { items?: unknown[] } }).List?.items));
    const width = Math.max(0, ...rows.map((r) => r.length));
    const outs: OutputColumn[] = [];
    for (let i = 0; i < width; i++) {
      const lin = unionAll(rows.map((r) => exprLineage(r[i], scope)));
      lin.direct = false;
      outs.push({ name: `column${i + 1}`, lin });
    }
    ordering(sel, outs, scope, true);
    rowKeys(sel, outs, scope, true);
    return outs;
  }
  for (const f of list(sel.fromClause)) fromItem(f, scope, scope.items);
  // Clauses that return no value still run subqueries, and some act as quantities
  // (lineage-quantities.ts): traced for what they report, not for the result's lineage. Each
  // conjunct compares values: the mixing rule (lineage-mixing.ts).
  const where = [
    ...conjuncts(sel.whereClause).map((c) => comparison('a WHERE/ON condition', c, scope)),
    ...joinConditions(sel.fromClause).flatMap((j) => conjuncts(j.quals).map((c) => comparison('a WHERE/ON condition', c, scope, !j.outer))),
  ];
  // Tagged: the level's HAVING tests aggregates over the rows its own WHERE chose, conjunctively
  // (lineage-compare.ts `comparison`).
  const whereTag = newSrc();
  scope.rowCtl = rowControl(where, scope.items, whereTag);
  quantity('the PARTITION BY/ORDER BY of a window', exprLineage(list(sel.windowClause).map((w) => {
    const def = (w as { WindowDef?: JsonNode }).WindowDef;
    return [def?.partitionClause, def?.orderClause];
  }), scope));
  quantity('a window frame offset (the number of rows a frame holds)', exprLineage(list(sel.windowClause).map((w) => {
    const def = (w as { WindowDef?: JsonNode }).WindowDef;
    return [def?.startOffset, def?.endOffset];
  }), scope));
  // GROUP BY keys are computed per input row; everything after grouping sees groups of rows.
  const groupKeys = list(sel.groupClause).flatMap(groupingKeys);
  for (const k of groupKeys) mixed('a GROUP BY key (it compares the values of rows)', exprLineage(k, scope), false);
  scope.grouped = groupKeys.length > 0;
  const outs = targets(sel.targetList, scope);
  const having = conjuncts(sel.havingClause).map((c) => comparison('a HAVING condition', c, scope, true, whereTag));
  condition(unionAll([...where, ...having]));
  ordering(sel, outs, scope, false);
  rowKeys(sel, outs, scope, false);
  for (const o of outs) analyzed(o.star !== undefined ? starAll(o.star) : o.lin);
  if (top) return outs;
  const limits = exprLineage([sel.limitCount, sel.limitOffset], scope);
  // `EXISTS (SELECT FROM …)` has no column to carry what chose its rows: a value of its own does
  // (`asValue`, a subquery used as a value), else its answer would come back in the clear.
  return chosenBy(outs.length === 0 && asValue ? [{ lin: empty() }] : outs, rowControl([...where, ...having, ...groupKeys.map((k) => exprLineage(k, scope)), limits], scope.items, lvl));
}

/** Same sources (ignoring order and `direct`, which only narrows). */
function sameLineage(a: Lineage, b: Lineage): boolean {
  const key = (l: Lineage): string => JSON.stringify([[...l.cols].sort(), l.wholeRow, l.opaque, [...(l.rels ?? [])].sort(), [...(l.attrs ?? [])].sort(), l.ctl === undefined ? 0 : key(l.ctl)]);
  return key(a) === key(b);
}

/** The ON conditions of the joins in a FROM clause; `outer`: of a LEFT, RIGHT or FULL join (it keeps rows it does not match). */
function joinConditions(from: unknown, depth = 0): { quals: unknown; outer: boolean }[] {
  if (depth > 1000) return [];
  return list(from).flatMap((f) => {
    const j = (f as { JoinExpr?: JsonNode }).JoinExpr;
    return j === undefined ? [] : [{ quals: j.quals, outer: j.jointype !== undefined && j.jointype !== 'JOIN_INNER' }, ...joinConditions([j.larg, j.rarg], depth + 1)];
  });
}

const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * A query that may be a SELECT or a data-modifying statement. For the latter, the values it
 * writes are traced (lineage-writes.ts): RETURNING reads them, and they are reported to the
 * write check of the statement being analysed.
 */
export function queryOutputs(node: unknown, scope: Scope, top = false): OutputColumn[] {
  const t = typeOf(node);
  if (t === undefined) return [];
  const [type, n] = t;
  if (type === 'SelectStmt') return selectOutputs(node, scope.outer, scope.ctes, top);
  if (!DML.has(type)) return [];
  charge(QUERY_LEVEL_WORK);
  const ctes = withCtes(n.withClause, scope.outer, scope.ctes);
  const inner: Scope = { items: [], outer: scope.outer, ctes };
  // The target is the stored relation, even where a CTE has its name.
  const rel = (n.relation ?? {}) as JsonNode;
  const relname = String(rel.relname ?? '');
  const target: Item = { alias: (rel.alias as { aliasname?: string } | undefined)?.aliasname ?? relname, base: relname };
  inner.items.push(target);
  for (const f of [...list(n.fromClause), ...list(n.usingClause)]) fromItem(f, inner, inner.items);
  if (n.sourceRelation !== undefined) fromItem(n.sourceRelation, inner, inner.items);
  // What the statement compares decides which rows it writes (and what UPDATE ... FROM copies):
  // the mixing rule applies as to a SELECT.
  const whens = list(n.mergeWhenClauses).map((c) => (c as { MergeWhenClause?: JsonNode }).MergeWhenClause?.condition);
  const conds = [n.whereClause, n.joinCondition, ...whens, ...joinConditions([...list(n.fromClause), ...list(n.usingClause)]).map((j) => j.quals)];
  const tests = conds.flatMap((c) => conjuncts(c)).map((c) => comparison('a WHERE/ON condition', c, inner));
  condition(unionAll(tests));
  const written = writtenBy(type, n, inner, relname);
  target.written = written;
  const returning = returningOf(n);
  if (returning === undefined) return [];
  // RETURNING old.* / new.* (PostgreSQL 18), under their default or given names.
  for (const a of ['old', 'new', ...list((n.returningClause as JsonNode | undefined)?.options).map((o) => String((o as { ReturningOption?: JsonNode }).ReturningOption?.value ?? ''))]) {
    if (a !== '') inner.items.push({ alias: a, base: relname, written });
  }
  const outs = targets(returning, inner);
  return top ? outs : chosenBy(outs, rowControl(tests, inner.items.slice(1)));
}

function returningOf(n: JsonNode): unknown[] | undefined {
  const clause = n.returningClause as { exprs?: unknown[] } | undefined;
  if (clause?.exprs !== undefined) return clause.exprs;
  return Array.isArray(n.returningList) ? n.returningList : undefined;
}

export const OPAQUE: OutputColumn[] = [{ lin: { cols: [], wholeRow: false, opaque: true, direct: false } }];

/** Output columns of one top-level statement; undefined when it returns no table data. */
export function statementOutputs(stmt: unknown): OutputColumn[] | undefined {
  const t = typeOf(stmt);
  if (t === undefined) return undefined;
  const [type, n] = t;
  const root: Scope = { items: [], ctes: new Map() };
  switch (type) {
    case 'SelectStmt':
      return selectOutputs(stmt, undefined, undefined, true);
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt': {
      // Traced also without RETURNING: the write check needs the values written.
      const outs = queryOutputs(stmt, root, true);
      return returningOf(n) === undefined ? undefined : outs;
    }
    case 'DeclareCursorStmt':
      return queryOutputs(n.query, root, true);
    case 'CopyStmt': {
      if (n.is_from === true) return undefined;
      if (n.query !== undefined) return queryOutputs(n.query, root, true);
      const attlist = list(n.attlist).map(str).filter((s): s is string => s !== undefined);
      const relname = String((n.relation as JsonNode | undefined)?.relname ?? '');
      if (attlist.length > 0) return attlist.map((c) => ({ name: c, lin: { cols: [c], wholeRow: false, opaque: false, direct: true, rels: [relname] } }));
      return [{ star: { base: true, rels: [relname], derived: {}, other: empty() }, lin: { cols: [], wholeRow: true, opaque: false, direct: false, rels: [relname] } }];
    }
    case 'FetchStmt':
    case 'ExecuteStmt':
      // Rows of something declared or prepared earlier: the tree of this statement cannot say.
      // Under EXPLAIN ANALYZE, its plan counts them (attack round 4 #2).
      analyzed(OPAQUE[0].lin);
      return OPAQUE;
    default:
      return undefined;
  }
}

/** Combines the statements of one string. */
export function resultLineage(perStatement: readonly (OutputColumn[] | undefined)[]): ResultLineage | undefined {
  const withRows = perStatement.filter((s): s is OutputColumn[] => s !== undefined);
  if (withRows.length === 0) return undefined;
  const all = unionAll(withRows.flat().map((o) => (o.star !== undefined ? starAll(o.star) : o.lin)));
  return { columns: withRows.length === 1 ? withRows[0] : [], merged: withRows.length > 1, all };
}

/**
 * The lineage of each of `names` (the result's columns as the server describes them), laying
 * `*` expansions out between the columns written before and after them.
 */
export function columnsOf(res: ResultLineage, names: readonly string[]): Lineage[] {
  const n = names.length;
  if (res.merged) return names.map(() => res.all);
  const cols = res.columns;
  const stars = cols.map((c, i) => (c.star !== undefined ? i : -1)).filter((i) => i >= 0);
  if (stars.length === 0) return cols.length === n ? cols.map((c) => c.lin) : names.map(() => res.all);
  const before = stars[0];
  const after = cols.length - 1 - stars[stars.length - 1];
  if (before + after > n) return names.map(() => res.all);
  const middle = cols.slice(before, cols.length - after);
  return names.map((name, i) => {
    if (i < before) return cols[i].lin;
    if (i >= n - after) return cols[cols.length - (n - i)].lin;
    if (middle.length === 1 && middle[0].star !== undefined) return starLineage(middle[0].star, name);
    // Several stars (and columns between them): any of them could have produced this one.
    return unionAll(middle.map((c) => (c.star !== undefined ? starLineage(c.star, name) : c.lin)));
  });
}
