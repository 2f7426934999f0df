import { controlOf, exprLineage, list, str, unionAll, type Lineage, type Scope } from './lineage.js';
import { comparison, conjuncts, semiJoinLevels } from './lineage-compare.js';
import { choosing, mixed, tested } from './lineage-quantities.js';
import { controlledLeaves, type Leaf } from './lineage-mixing.js';
import type { JsonNode } from './walk.js';

/**
 * The mixing rule inside expressions (attack round 5 #1), and control-only tests.
 *
 * A masked value combined with a value of another row source changes more than the masked cell
 * it may end up in: `1/(ascii(substr(c.name, 1, 1)) - g)` over `generate_series(31, 127) g`
 * raises division by zero at the row where they match, so the rows streamed before the error
 * spell the value; a CASE doing heavy work only on the matching row does it through timing,
 * without any error; a statement_timeout through 57014. So every node of an expression that
 * computes from several values — an operator, a function's arguments, a comparison inside CASE,
 * `IN`/`ANY` against a subquery, a subscript — is reported to the mixing rule with the leaves of
 * its operands (lineage-mixing.ts), wherever the expression stands: select list, CASE, function
 * arguments, scalar and correlated subqueries, VALUES, RETURNING, SET, window and aggregate
 * arguments, LATERAL. Only nodes that hold values side by side without computing with them
 * (HOLDERS) are not: their values meet, if at all, in the node that uses them.
 *
 * Control-only tests. A CASE WHEN condition and an aggregate's FILTER are predicates the statement
 * spells out, like a WHERE conjunct: each tells at most one bit per row (docs/gateway.md, "What
 * masking does not promise"). They are judged like WHERE conjuncts (each conjunct reported to the
 * mixing rule), and what they read stays in the value's `ctl`, with its row sources (`count(*)
 * FILTER (WHERE email LIKE 'g%')` runs, its count masked): a value chosen by a masked test is masked as derived, and is judged where it acts
 * as a quantity (a recursive CTE's condition, LIMIT, EXPLAIN ANALYZE) or is written into a table
 * (masker.ts). Where the CASE is itself a predicate (or part of one), its conditions are judged
 * with its results (lineage-compare.ts `comparison`): a test of another row source there would
 * choose which masked test each joined row answers.
 */

/** Nodes that hold values side by side without computing with them, or only test for NULL. */
const HOLDERS = new Set([
  'List', 'BoolExpr', 'RowExpr', 'A_ArrayExpr', 'CoalesceExpr', 'CollateClause', 'NamedArgExpr',
  'ResTarget', 'SortBy', 'NullTest', 'BooleanTest', 'GroupingFunc', 'JsonValueExpr', 'MultiAssignRef',
  'String', 'Integer', 'Float', 'Boolean', 'BitString',
]);

const leafy = (l: Lineage): boolean => (l.leaves ?? []).length > 0;

/**
 * Reports a node that computes from the values `parts` (its operands) to the mixing rule. With
 * one operand that reads anything, the node computes from one value at a time: masked leaves of
 * several row sources there are alternatives (the branches of a UNION ALL or a recursive CTE), not
 * values that meet, so only a masked leaf beside a leaf of another source refuses.
 */
export function computedFrom(what: string, lin: Lineage, parts: readonly Lineage[], directEq = false): void {
  mixed(what, lin, directEq || parts.filter(leafy).length < 2);
}

/** A node of type `type` (not a holder) over the operands `parts`. */
export function computed(type: string, lin: Lineage, parts: readonly Lineage[]): void {
  if (!HOLDERS.has(type)) computedFrom(`an expression (${type}) in the statement`, lin, parts);
}

/** `a = b` (or IS NOT DISTINCT FROM) of two plain column references: the equality oracle of a join on a masked key. */
function plainEquality(e: JsonNode, l: Lineage, r: Lineage): boolean {
  const names = list(e.name);
  const eq = (e.kind === 'AEXPR_OP' || e.kind === 'AEXPR_NOT_DISTINCT') && names.length === 1 && str(names[0]) === '=';
  return eq && l.direct && r.direct;
}

/** An operator (A_Expr): its operands are compared or combined. */
export function operatorLineage(e: JsonNode, scope: Scope, depth: number): Lineage {
  const l = exprLineage(e.lexpr, scope, depth + 1);
  const r = exprLineage(e.rexpr, scope, depth + 1);
  const out = unionAll([l, r]);
  out.direct = false;
  computedFrom('an operator in the statement', out, [l, r], plainEquality(e, l, r));
  return out;
}

/**
 * The leaves of work that may raise an error or take time over a value: what chose it (its
 * tests) and, unless it is a plain column reference, what it computes from.
 */
function workLeaves(l: Lineage): Leaf[] {
  // A semi-join's own tests run for every outer row the predicate asks about; each is a fixed
  // function of one row (lineage-compare.ts semiJoinNodes), judged at its level.
  const ctl = l.ctl === undefined ? [] : controlledLeaves(l.ctl, semiJoinLevels());
  return l.direct ? ctl : [...(l.leaves ?? []), ...ctl];
}

/**
 * Work that runs only where earlier operands say so (attack round 8): over `generate_series(0,
 * n) g`, `1 / CASE WHEN g = 0 THEN <0 or 1 by bit 0 of email> WHEN g = 1 THEN <by bit 1> … END`
 * streams rows until the first clear bit, and a branch that works hard does the same through the
 * time between rows. So the leaves of each choosing operand (a CASE condition, an AND/OR operand,
 * a COALESCE argument; `chooses`) are reported with the work leaves of the operands evaluated
 * after it: a masked value there, chosen by another row source, refuses (masker.ts
 * `chooserRefusal`).
 * The work after each operand is gathered from the end, once per distinct leaf, so a long chain
 * over the same columns stays linear (work.ts).
 */
export function inOrder(what: string, parts: readonly Lineage[], chooses: (i: number) => boolean = () => true): void {
  const after = new Map<string, Leaf>();
  const reported = new Set<string>();
  for (let i = parts.length - 1; i > 0; i--) {
    for (const l of workLeaves(parts[i])) after.set(l.key, l);
    if (!chooses(i - 1)) continue;
    const chooser = controlledLeaves(parts[i - 1], new Set());
    if (chooser.length === 0 || after.size === 0) continue;
    const key = `${chooser.map((l) => l.key).join('\u0001')}\u0002${after.size}`;
    if (reported.has(key)) continue;
    reported.add(key);
    choosing(what, chooser, [...after.values()]);
  }
}

/** Each conjunct of a control-only condition, judged as a WHERE conjunct; what they read. */
function conditionControl(what: string, node: unknown, scope: Scope, ctl: Lineage | undefined): Lineage | undefined {
  let out = ctl;
  for (const c of conjuncts(node)) out = controlOf(out, comparison(what, c, scope));
  return out;
}

/**
 * CASE: the WHEN conditions (searched form), or the tests of the operand against each WHEN value
 * (simple form), are control-only; the value is one of the results.
 */
export function caseLineage(c: JsonNode, scope: Scope, depth: number): Lineage {
  const arg = c.arg === undefined ? undefined : exprLineage(c.arg, scope, depth + 1);
  let ctl: Lineage | undefined;
  const results: Lineage[] = [];
  // In the order they run: each condition, then its result; the default last.
  const order: Lineage[] = [];
  const isCond: boolean[] = [];
  for (const w of list(c.args)) {
    const when = (w as { CaseWhen?: JsonNode }).CaseWhen;
    if (when === undefined) continue;
    if (arg === undefined) {
      const cond = conditionControl('a CASE WHEN condition', when.expr, scope, undefined);
      if (cond !== undefined) {
        order.push(cond);
        isCond.push(true);
        ctl = controlOf(ctl, cond);
      }
    } else {
      const v = exprLineage(when.expr, scope, depth + 1);
      const test = unionAll([arg, v]);
      computedFrom('a CASE WHEN test', test, [arg, v], arg.direct && v.direct);
      if (!(arg.direct && v.direct)) tested(controlledLeaves(test, new Set()));
      order.push(test);
      isCond.push(true);
      ctl = controlOf(ctl, test);
    }
    const r = exprLineage(when.result, scope, depth + 1);
    results.push(r);
    order.push(r);
    isCond.push(false);
  }
  if (c.defresult !== undefined) {
    const r = exprLineage(c.defresult, scope, depth + 1);
    results.push(r);
    order.push(r);
    isCond.push(false);
  }
  // Which branch, and which later condition, runs is chosen by each condition.
  inOrder('a CASE (its conditions choose which branch runs)', order, (i) => isCond[i]);
  if (arg !== undefined) ctl = controlOf(ctl, arg);
  const out = unionAll(results);
  out.direct = false;
  if (ctl !== undefined) out.ctl = controlOf(out.ctl, ctl);
  return out;
}

/** An aggregate's FILTER (WHERE …): control-only, judged as WHERE conjuncts. */
export function filterControl(filter: unknown, scope: Scope): Lineage | undefined {
  if (filter === undefined || filter === null) return undefined;
  return conditionControl('an aggregate FILTER condition', filter, scope, undefined);
}
