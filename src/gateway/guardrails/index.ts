/**
 * guardrails/ — what a SQL statement does, from libpg-query's parse tree, and what a resource's
 * policy says about it. visitors.ts holds one visitor per rule; engine.ts caches analyses and
 * applies policies; shape.ts is the literal-free cache key of the simple-protocol hot path.
 */
export { Guardrails, actionFor, decide, describeBlock, loadParser } from './engine.js';
export type { Decision, DecisionContext, StatementFacts } from './engine.js';
export { DEFAULT_ALLOWED_FUNCTIONS, DEFAULT_MAX_WRITE_ROWS, RULE_IDS, RULE_ACTIONS, RULE_DESCRIPTIONS } from './rules.js';
export type { Finding, RuleAction, RuleId } from './rules.js';
export { shapeKey } from './shape.js';
export { columnsOf, statementOutputs, UNKNOWN_LINEAGE } from './lineage.js';
export type { Lineage, ResultLineage } from './lineage.js';
export type { WrittenValue } from './lineage-writes.js';
