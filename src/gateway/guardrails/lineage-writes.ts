import {
  empty, exprLineage, list, OPAQUE, queryOutputs, selectOutputs, starAll, statementOutputs, str, typeOf, union, unionAll,
  type Item, type Lineage, type OutputColumn, type Scope, type StarInfo, type Written,
} from './lineage.js';
import type { JsonNode } from './walk.js';

/**
 * Lineage of values a statement writes into stored columns: INSERT (VALUES, SELECT, ON CONFLICT
 * DO UPDATE), UPDATE (SET, also `(a, b) = (SELECT ...)`), MERGE, and the relations a statement
 * creates from a query (CREATE TABLE AS, SELECT INTO, CREATE VIEW). The target's RETURNING reads
 * these values (lineage.ts), and masking refuses a write that would store a masked value where
 * a later read would not mask it (masker.ts `writeRefusal`): the class of "masked values written
 * into an unmasked column".
 *
 * Over-approximating like the rest of lineage. Not followed: column defaults, generated columns,
 * triggers, rules and functions that write on their own (a function the tree cannot see into is
 * opaque, and an opaque written value counts as masked).
 */

export interface WrittenValue {
  /** The relation written to, as the statement names it. */
  rel: string;
  /** The target column; undefined when the statement names none (then `position`, if known). */
  col?: string;
  /** 0-based position in the target's columns (INSERT without a column list). */
  position?: number;
  lin: Lineage;
  /** `CREATE TABLE t AS SELECT * FROM s`: stored columns land in columns of the same name. */
  sameNames?: boolean;
  /** 1-based statement of the query string. */
  statement?: number;
}

/** Collects the writes of the statement being analysed (set only inside `statementAnalysis`; analysis is synchronous). */
let sink: WrittenValue[] | undefined;

function merge(a: Lineage | undefined, b: Lineage): Lineage {
  return a === undefined ? { ...b, cols: [...b.cols] } : unionAll([a, b]);
}

function report(rel: string, col: string | undefined, lin: Lineage, position?: number): void {
  if (sink === undefined) return;
  const w: WrittenValue = { rel, lin };
  if (col !== undefined) w.col = col;
  else if (position !== undefined) w.position = position;
  sink.push(w);
}

/** Lineage of each output column (a star as a whole). */
function flat(outs: readonly OutputColumn[]): Lineage[] {
  return outs.map((o) => (o.star !== undefined ? starAll(o.star) : o.lin));
}

/**
 * What a data-modifying statement writes into its target `rel`, by column. `scope` holds the
 * target and the FROM/USING items; reported to the sink as well.
 */
export function writtenBy(type: string, n: JsonNode, scope: Scope, rel: string): Written {
  const w: Written = { byCol: new Map(), any: empty() };
  const put = (col: string | undefined, lin: Lineage, position?: number): void => {
    if (col === undefined) union(w.any, lin);
    else w.byCol.set(col, merge(w.byCol.get(col), lin));
    report(rel, col, lin, position);
  };
  const setList = (targetList: unknown, s: Scope): void => {
    for (const t of list(targetList)) {
      const rt = (t as { ResTarget?: JsonNode }).ResTarget;
      if (rt === undefined) continue;
      const val = rt.val as { MultiAssignRef?: JsonNode } | undefined;
      // `SET (a, b) = (SELECT x, y ...)`: every column of the source, over-approximated.
      const lin = exprLineage(val?.MultiAssignRef !== undefined ? val.MultiAssignRef.source : val, s);
      put(typeof rt.name === 'string' ? rt.name : undefined, lin);
    }
  };
  /** Values laid out on the target's columns, by name where the statement names them. */
  const positional = (names: readonly (string | undefined)[], values: readonly Lineage[], star: boolean): void => {
    if (star) {
      const all = unionAll(values);
      if (names.length > 0) for (const c of names) put(c, all);
      else put(undefined, all);
      return;
    }
    values.forEach((lin, i) => put(names[i], lin, names.length === 0 ? i : undefined));
  };
  const colNames = (targetList: unknown): (string | undefined)[] => list(targetList).map((t) => {
    const name = (t as { ResTarget?: { name?: unknown } }).ResTarget?.name;
    return typeof name === 'string' ? name : undefined;
  });
  switch (type) {
    case 'UpdateStmt':
      setList(n.targetList, scope);
      break;
    case 'InsertStmt': {
      const names = colNames(n.cols);
      const src = n.selectStmt === undefined ? [] : selectOutputs(n.selectStmt, scope.outer, scope.ctes, true);
      positional(names, flat(src), src.some((o) => o.star !== undefined));
      const conflict = n.onConflictClause as JsonNode | undefined;
      if (conflict?.targetList !== undefined) {
        // `excluded.x` is the value proposed for x: the target's column plus what the INSERT writes.
        const excluded: Item = { alias: 'excluded', base: rel, written: { byCol: new Map(w.byCol), any: { ...w.any, cols: [...w.any.cols] } } };
        setList(conflict.targetList, { ...scope, items: [...scope.items, excluded] });
      }
      break;
    }
    case 'MergeStmt':
      for (const c of list(n.mergeWhenClauses)) {
        const clause = (c as { MergeWhenClause?: JsonNode }).MergeWhenClause;
        if (clause?.commandType === 'CMD_UPDATE') setList(clause.targetList, scope);
        else if (clause?.commandType === 'CMD_INSERT') {
          const values = list(clause.values).map((v) => exprLineage(v, scope));
          positional(colNames(clause.targetList), values, false);
        }
      }
      break;
    default:
      break;
  }
  return w;
}

/** A relation created from a query: its columns are the query's, under `colnames` where given. */
function created(rel: string, colnames: unknown, outs: readonly OutputColumn[]): void {
  const names = list(colnames).map(str);
  outs.forEach((o, i) => {
    if (o.star === undefined) {
      const col = names[i] ?? o.name;
      report(rel, col, o.lin, col === undefined ? i : undefined);
      return;
    }
    starCreated(rel, o.star);
  });
}

function starCreated(rel: string, star: StarInfo): void {
  for (const [name, lin] of Object.entries(star.derived)) report(rel, name, lin);
  if (star.other.cols.length > 0 || star.other.wholeRow || star.other.opaque) report(rel, undefined, star.other);
  if (star.base && sink !== undefined) {
    sink.push({ rel, lin: { cols: [], wholeRow: true, opaque: false, direct: false, rels: star.rels ?? [] }, sameNames: true });
  }
}

/** Writes of statements a statement carries or creates from a query (reported to the sink). */
function collectMore(stmt: unknown, outputs: OutputColumn[] | undefined): void {
  const t = typeOf(stmt);
  if (t === undefined) return;
  const [type, n] = t;
  const root: Scope = { items: [], ctes: new Map() };
  const into = (n.intoClause ?? n.into) as { rel?: { relname?: string }; colNames?: unknown } | undefined;
  switch (type) {
    case 'SelectStmt':
      if (into !== undefined) created(String(into.rel?.relname ?? ''), into.colNames, outputs ?? []);
      return;
    case 'CreateTableAsStmt': {
      const q = typeOf(n.query);
      const outs = q?.[0] === 'ExecuteStmt' ? OPAQUE : queryOutputs(n.query, root, true);
      created(String(into?.rel?.relname ?? ''), into?.colNames, outs);
      return;
    }
    case 'ViewStmt':
      created(String((n.view as JsonNode | undefined)?.relname ?? ''), n.aliases, queryOutputs(n.query, root, true));
      return;
    // EXPLAIN ANALYZE runs its statement, PREPARE defines one that EXECUTE runs.
    case 'ExplainStmt':
    case 'PrepareStmt':
      collectMore(n.query, statementOutputs(n.query));
      return;
    default:
      return;
  }
}

/** A statement's result columns (lineage.ts statementOutputs) and every value it writes into a stored column. */
export function statementAnalysis(stmt: unknown): { outputs: OutputColumn[] | undefined; writes: WrittenValue[] } {
  const writes: WrittenValue[] = [];
  const prev = sink;
  sink = writes;
  try {
    const outputs = statementOutputs(stmt);
    collectMore(stmt, outputs);
    return { outputs, writes };
  } finally {
    sink = prev;
  }
}
