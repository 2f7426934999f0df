import type { JsonNode, Visitor } from './walk.js';

/**
 * SQL that names prepared statements (attack round 5 #2, #3). PostgreSQL keeps one namespace of
 * prepared statements per session: a driver's protocol Parse and SQL `PREPARE` both define names
 * in it, and SQL `EXECUTE name(...)` runs any of them — also inside `EXPLAIN` and `CREATE TABLE
 * ... AS EXECUTE`. An `EXECUTE` tree says nothing about what it runs, so the relay resolves the
 * name (relay-names.ts): this file only says, per top-level statement, which names it defines,
 * runs and drops. The rules that judge the resolution live with the names (relay.ts).
 */

export interface PreparedNames {
  /** The name a top-level `PREPARE` defines. */
  prepares?: string;
  /** Names run by `EXECUTE`, anywhere in the statement, and where (`top`, `explain`, `ctas`, `other`). */
  executes?: { name: string; where: 'top' | 'explain' | 'ctas' | 'other' }[];
  /** Names dropped by `DEALLOCATE`; `*` for `DEALLOCATE ALL` and `DISCARD ALL`. */
  drops?: string;
}

/** What one top-level statement does to prepared-statement names (undefined: nothing). */
export function preparedNames(stmt: JsonNode | undefined): PreparedNames | undefined {
  if (stmt === undefined) return undefined;
  const kind = Object.keys(stmt)[0];
  const node = stmt[kind] as JsonNode | undefined;
  const out: PreparedNames = {};
  if (kind === 'PrepareStmt' && typeof node?.name === 'string') out.prepares = node.name;
  if (kind === 'DeallocateStmt') out.drops = node?.isall === true || typeof node?.name !== 'string' ? '*' : node.name;
  if (kind === 'DiscardStmt' && node?.target === 'DISCARD_ALL') out.drops = '*';
  const executes = executesIn(stmt, kind);
  if (executes.length > 0) out.executes = executes;
  return out.prepares === undefined && out.drops === undefined && out.executes === undefined ? undefined : out;
}

/** Every ExecuteStmt in the tree (explicit stack: a hostile tree is deep). */
function executesIn(stmt: JsonNode, kind: string): NonNullable<PreparedNames['executes']> {
  const found: JsonNode[] = [];
  const stack: unknown[] = [stmt];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (const v of value) stack.push(v);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value as JsonNode)) {
      if (key === 'ExecuteStmt' && child !== null && typeof child === 'object') found.push(child as JsonNode);
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  // The grammar puts EXECUTE at the top, under EXPLAIN or under CREATE TABLE AS; anything else is 'other'.
  const node = stmt[kind] as JsonNode | undefined;
  const direct = kind === 'ExecuteStmt' ? node : ((node?.query as JsonNode | undefined)?.ExecuteStmt as JsonNode | undefined);
  const where = kind === 'ExecuteStmt' ? 'top' : kind === 'ExplainStmt' ? 'explain' : kind === 'CreateTableAsStmt' ? 'ctas' : 'other';
  return found.map((e) => ({ name: typeof e.name === 'string' ? e.name : '', where: e === direct ? where : 'other' }));
}

/** Arguments of EXECUTE: constants only (a Bind's values are constants too). */
const CONSTANT_ARG = new Set(['A_Const', 'ParamRef']);

/**
 * EXECUTE's arguments are expressions evaluated before the statement runs, and the prepared
 * statement uses them as it likes (a row count, a LIMIT, a comparison): a value computed from a
 * masked column would leave through it unseen, since the statement was judged with `$n`. So
 * they must be constants, as a Bind's are (`masking-bypass`; a cast of a constant is one).
 */
export const executeArguments: Visitor = {
  ExecuteStmt(node, ctx) {
    const params = Array.isArray(node.params) ? (node.params as JsonNode[]) : [];
    for (const p of params) {
      let arg: JsonNode | undefined = p;
      const cast = arg.TypeCast as JsonNode | undefined;
      if (cast !== undefined) arg = cast.arg as JsonNode | undefined;
      const type = arg === undefined ? undefined : Object.keys(arg)[0];
      if (type === undefined || !CONSTANT_ARG.has(type)) {
        ctx.report('masking-bypass', 'an EXECUTE argument that is not a constant (the prepared statement was judged with $n: pass constants)');
        return;
      }
    }
  },
};
