/**
 * A work budget for judging one statement (issue 15, attack: `SELECT greatest((select 1), …
 * 4,000 scalar subqueries …)` held the gateway's only thread for seconds while every other
 * session waited). Analysis runs on the event loop, and parts of it grow faster than the text:
 * lineage merges sets of leaves and columns at every level (a chain of `LATERAL` items, a wide
 * select list, long `CASE`/`AND` chains), CTE scopes are copied per query level. The token cap
 * (engine.ts `MAX_TOKENS`) bounds the text, the walks' depth guards bound nesting; this bounds
 * the work: the walks charge one unit per node they visit, and the lineage primitives charge the
 * sizes of the sets they copy and merge. A statement that spends the budget is refused
 * (SQLSTATE 54001, `unparseable`) before it has cost more than a fraction of a second, and the
 * units are deterministic, so the same statement is always judged the same way, whatever the
 * machine's load.
 */

/**
 * Units one statement string may spend (setting `gateway.maxStatementWork`). A unit is about
 * the cost of copying or comparing one element of a set in the lineage analysis (~0.05 µs on a
 * quiet 2-core machine), so the default bounds one statement's analysis to roughly 0.2 s.
 */
export const DEFAULT_WORK_BUDGET = 4_000_000;
/** Charged per node of the parse tree a walk visits. */
export const NODE_WORK = 10;
/**
 * Charged per query level (a SELECT, subquery, CTE body, set-operation arm, data-modifying
 * statement) the lineage analysis opens: scopes, CTE maps, ordering and key checks per level.
 * With the default budget a statement holds at most ~4,000 of them (`SELECT greatest((select 1),
 * …)` with 4,000 scalar subqueries is refused; PostgreSQL itself takes seconds to plan it).
 */
export const QUERY_LEVEL_WORK = 1_000;

/** Thrown by `charge` once the running analysis has spent its budget; engine.ts turns it into a refusal. */
export class WorkBudgetExceeded extends Error {
  constructor(readonly budget: number) {
    super(`statement analysis over its work budget of ${budget} units`);
    this.name = 'WorkBudgetExceeded';
  }
}

let remaining = Number.POSITIVE_INFINITY;
let budget = 0;

/** Runs `f` with a budget of `units`; returns its result and the units it spent. */
export function withWorkBudget<T>(units: number, f: () => T): { result: T; spent: number } {
  const saved = [remaining, budget] as const;
  remaining = units;
  budget = units;
  try {
    const result = f();
    return { result, spent: units - remaining };
  } finally {
    [remaining, budget] = saved;
  }
}

/** Charges `units` of work to the running analysis (no-op outside `withWorkBudget`). */
export function charge(units: number): void {
  remaining -= units;
  if (remaining < 0) throw new WorkBudgetExceeded(budget);
}
