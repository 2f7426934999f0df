import type { JsonNode, WalkContext } from './walk.js';

/**
 * The row ceiling (attack round 3 #8): whether a write touches a few rows or the whole table is
 * a property of its predicate and the data, and no rule on the predicate's shape can decide it
 * (`x IS NOT NULL`, `x IN (SELECT x FROM same_table)`, `MERGE ... WHEN MATCHED THEN DELETE`, an
 * upsert fed by the table itself). So the gateway counts instead: a statement that changes
 * existing rows runs upstream with its commit held back until the gateway has read the row
 * count of its command tag (relay.ts, row-ceiling in docs/gateway.md); above the resource's
 * `guardrails.maxWriteRows` it is undone and refused (`row-ceiling`).
 *
 * This file says which statements that applies to, from the tree:
 * - counted: a lone top-level UPDATE, DELETE, MERGE or INSERT ... ON CONFLICT DO UPDATE — its
 *   command tag counts its rows;
 * - not countable, so a `row-ceiling` finding: such a write nested where the tag does not count
 *   it (a WITH query, COPY (...) TO, EXPLAIN ANALYZE), sharing a simple-protocol string with
 *   other statements (the string commits as a whole, before the gateway could step in), or
 *   prepared by SQL PREPARE (the gateway does not follow names SQL defines, relay.ts; a driver's
 *   protocol-level Parse is counted at each Execute).
 * Definitions that do not run their body (CREATE FUNCTION/PROCEDURE, CREATE RULE, EXPLAIN
 * without ANALYZE) are neither: DDL has rules of its own.
 */

/** Top-level kinds whose command tag counts the rows they changed. */
const COUNTED_TOP = new Set(['UpdateStmt', 'DeleteStmt', 'MergeStmt']);
/** Nodes that change existing rows wherever they are. */
const CHANGING = new Set(['UpdateStmt', 'DeleteStmt', 'MergeStmt']);
/** Definitions whose body does not run now. */
const DEFINITIONS = new Set(['CreateFunctionStmt', 'RuleStmt']);

/** INSERT ... ON CONFLICT DO UPDATE rewrites existing rows. */
function isUpsert(insert: unknown): boolean {
  const c = (insert as { onConflictClause?: { action?: string } } | undefined)?.onConflictClause;
  return c?.action === 'ONCONFLICT_UPDATE';
}

/** Does this top-level statement change existing rows, counted by its own command tag? */
export function countedWrite(stmt: JsonNode | undefined): boolean {
  if (stmt === undefined) return false;
  const kind = Object.keys(stmt)[0];
  if (kind === undefined) return false;
  if (COUNTED_TOP.has(kind)) return true;
  return kind === 'InsertStmt' && isUpsert(stmt[kind]);
}

/**
 * Reports writes in `stmt` that change existing rows where no command tag counts them. Walks
 * with an explicit stack (a hostile tree is deep); `analyzes` says whether an EXPLAIN runs it.
 */
export function uncountedWrites(stmt: JsonNode | undefined, analyzes: boolean, ctx: WalkContext): void {
  if (stmt === undefined) return;
  const kind = Object.keys(stmt)[0];
  if (kind === undefined || DEFINITIONS.has(kind) || (kind === 'ExplainStmt' && !analyzes)) return;
  // The top node itself is counted (or is no write); look below it.
  const stack: unknown[] = [stmt[kind]];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (const v of value) stack.push(v);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value as JsonNode)) {
      if (DEFINITIONS.has(key)) continue;
      if (CHANGING.has(key) || (key === 'InsertStmt' && isUpsert(child))) {
        ctx.report('row-ceiling', `${verbOf(key)} inside ${where(kind)}: its rows cannot be counted before it commits`);
        return;
      }
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
}

/** A counted write in a string of several statements cannot be held before the string commits. */
export function countedInString(ctx: WalkContext, kind: string): void {
  ctx.report('row-ceiling', `${verbOf(kind)} in a string of several statements: send it as a statement of its own, so its rows are counted before it commits`);
}

function verbOf(kind: string): string {
  if (kind === 'InsertStmt') return 'INSERT ... ON CONFLICT DO UPDATE';
  return kind.replace(/Stmt$/, '').toUpperCase();
}

function where(kind: string): string {
  if (kind === 'ExplainStmt') return 'EXPLAIN ANALYZE';
  if (kind === 'CopyStmt') return 'COPY';
  if (kind === 'PrepareStmt') return 'SQL PREPARE (prepare it with the protocol, as drivers do, or send the statement itself)';
  return 'another statement (WITH)';
}
