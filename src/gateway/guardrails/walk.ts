/**
 * A generic visitor walk over libpg-query's JSON parse tree. Nodes appear as single-key wrapper
 * objects (`{"FuncCall": {...}}`) wherever the C struct field is a generic Node; the walk calls
 * the handlers registered for that node type, then descends into every field, so a rule sees
 * every occurrence, however deeply nested (CTEs, subqueries, EXPLAIN, PREPARE, ...).
 */

import type { RuleId } from './rules.js';
import type { LimitChange } from './session-limits.js';
import { charge, NODE_WORK } from './work.js';

export type JsonNode = Record<string, unknown>;

export interface WalkContext {
  /** 1-based index of the top-level statement being walked. */
  statement: number;
  report(rule: RuleId, detail: string, subject?: string): void;
  /** A handler that looked at a constant's value marks the result as literal-dependent. */
  usedConstants(): void;
  /** Called for every constant (A_Const) with its byte offset in the statement text. */
  sawConstant?(location: number): void;
  /** Called for everything that sets a limited session setting (session-limits.ts). */
  setsLimit?(change: LimitChange): void;
}

export type NodeHandler = (node: JsonNode, ctx: WalkContext, type: string) => void;

/** Key under which a visitor receives every statement node, whatever its type. */
export const ANY_STATEMENT = '*Stmt';
export type Visitor = Readonly<Record<string, NodeHandler>>;

/** Combines several rule visitors into one dispatch table, so the tree is walked once. */
export function combine(visitors: readonly Visitor[]): Map<string, NodeHandler[]> {
  const table = new Map<string, NodeHandler[]>();
  for (const v of visitors) {
    for (const [type, handler] of Object.entries(v)) {
      const list = table.get(type) ?? [];
      list.push(handler);
      table.set(type, list);
    }
  }
  return table;
}

/** Node type names are CamelCase; plain field names are snake/lower case. */
function isNodeTypeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

export function walk(value: unknown, table: Map<string, NodeHandler[]>, ctx: WalkContext, depth = 0): void {
  // The parser caps nesting far below this; the guard keeps a hostile tree from blowing the stack.
  if (depth > 10_000) {
    ctx.report('unparseable', 'statement nests too deeply for the gateway to judge');
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) walk(item, table, ctx, depth + 1);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  charge(NODE_WORK);
  for (const [key, child] of Object.entries(value as JsonNode)) {
    if (child !== null && typeof child === 'object' && !Array.isArray(child) && isNodeTypeName(key)) {
      // Statement-wide handlers first: their findings (e.g. read-only) name the broader reason.
      if (key.endsWith('Stmt')) {
        const all = table.get(ANY_STATEMENT);
        if (all !== undefined) for (const h of all) h(child as JsonNode, ctx, key);
      }
      const handlers = table.get(key);
      if (handlers !== undefined) for (const h of handlers) h(child as JsonNode, ctx, key);
    }
    walk(child, table, ctx, depth + 1);
  }
}

/** Last element of a qualified name list (`pg_catalog.pg_read_file` → `pg_read_file`). */
export function lastName(list: unknown): string {
  if (!Array.isArray(list) || list.length === 0) return '';
  const last = list[list.length - 1] as { String?: { sval?: string } };
  return (last.String?.sval ?? '').toLowerCase();
}

/** The single node type inside a wrapper, e.g. `{DeleteStmt: {...}}` → `DeleteStmt`. */
export function nodeType(wrapper: unknown): string | undefined {
  if (wrapper === null || typeof wrapper !== 'object') return undefined;
  const keys = Object.keys(wrapper);
  return keys.length === 1 ? keys[0] : undefined;
}

/** True when any node of one of `types` occurs in the subtree. */
export function contains(value: unknown, types: ReadonlySet<string>, depth = 0): boolean {
  if (depth > 10_000) return true;
  if (Array.isArray(value)) return value.some((v) => contains(v, types, depth + 1));
  if (value === null || typeof value !== 'object') return false;
  charge(1);
  for (const [key, child] of Object.entries(value as JsonNode)) {
    if (types.has(key)) return true;
    if (contains(child, types, depth + 1)) return true;
  }
  return false;
}

/** Structural equality ignoring source locations (`a = a` in either spelling). */
export function sameTree(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, dropLocation) === JSON.stringify(b, dropLocation);
}

function dropLocation(key: string, value: unknown): unknown {
  return key === 'location' ? undefined : value;
}
