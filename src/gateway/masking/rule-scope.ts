import type { MaskMode } from './render.js';

/**
 * Which stored columns a column rule names. A rule names a column (`name`, a glob) and, when it
 * has one, a table (`table`, a glob over the relation's name in any schema); a rule without a
 * table names that column in every user table and view. Neither kind names the columns of the
 * system catalogs and views (pg_catalog, information_schema): `pg_settings.name`, `pg_class.relname`
 * under psql's `"Name"`, `information_schema.columns.table_name` hold the database's own names,
 * not data a policy protects. The catalogs that do hold user data keep their own rules (masker.ts:
 * the statistics' sample values, other sessions' statement texts), and the few whose values are
 * stored user data stay under the column rules as well (USER_DATA_SYSTEM_RELATIONS).
 *
 * Fail closed: a value whose relations are not known (no relation in its lineage) is judged by
 * every rule whose column matches, and so is a value that may come from a user relation and a
 * system one alike; a system relation's name that a user relation also has (any schema: the
 * search path decides which one a name reads) counts as the user relation.
 */

export interface ScopedRule {
  mode: MaskMode;
  name: string;
  table?: string;
}

/** System relations that hold user data as stored values (large objects): column rules apply as to user tables. */
export const USER_DATA_SYSTEM_RELATIONS = new Set(['pg_largeobject']);

/**
 * A case-insensitive `*` wildcard match in O(name × glob) at worst: a backtracking RegExp of
 * `*a*a*a*b` takes exponential time in the number of stars.
 */
export function globMatches(glob: string, name: string): boolean {
  const g = glob.toLowerCase();
  const s = name.toLowerCase();
  let gi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (gi < g.length && g[gi] !== '*' && g[gi] === s[si]) { gi++; si++; }
    else if (gi < g.length && g[gi] === '*') { star = gi++; mark = si; }
    else if (star >= 0) { gi = star + 1; si = ++mark; }
    else return false;
  }
  while (gi < g.length && g[gi] === '*') gi++;
  return gi === g.length;
}

/**
 * Does `rule` name column `column` of a value read from `rels` (lineage.ts: the relations the value
 * may come from; undefined or empty when unknown)? A table-scoped rule needs one of the relations
 * to match, or no relation to be known.
 */
export function ruleNames(rule: { name: string; table?: string }, column: string, rels: readonly string[] | undefined): boolean {
  if (!globMatches(rule.name, column)) return false;
  const table = rule.table;
  if (table === undefined || rels === undefined || rels.length === 0) return true;
  return rels.some((r) => globMatches(table, r));
}
