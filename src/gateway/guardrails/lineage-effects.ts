import { CATALOG_SAFE_FUNCTIONS } from './catalog-functions.js';
import { keyed } from './lineage-quantities.js';
import { DEFAULT_ALLOWED_FUNCTIONS } from './rules.js';
import type { Lineage } from './lineage.js';
import type { JsonNode } from './walk.js';

/**
 * Side effects under masking (attack round 5 #4). Some calls leave state that other sessions, or
 * the next statement, read back past every column plan: a held or released advisory lock
 * (`pg_locks.objid` in every session), a notification, a setting (SHOW, `pg_stat_activity`), a
 * sequence's value, a large object, a logical message. A key computed from rows is refused by the
 * function rules (visitors.ts), but *whether* and *which* call runs can depend on a masked value
 * too: `CASE WHEN ascii(substr(name, 2, 1)) = 114 THEN pg_advisory_lock(114) … END` takes the
 * lock whose constant key is the character (95 branches, one character per statement), and so do
 * COALESCE/NULLIF/AND/OR short-circuits, a FILTER, a WHERE that selects the row, or a subquery.
 *
 * The tree can name every such dependency only by following control flow through the planner's
 * choices (which conjunct runs first), so the rule over-approximates, per top-level statement: a
 * statement that calls one of these functions is judged by everything it reads — every column it
 * names, whole rows where it names a row (`c`, `c.*`, `*`, NATURAL JOIN), and functions the
 * gateway cannot see into — and masking refuses it when any of that is masked
 * (`masking-bypass`, masker.ts `quantityRefusal`). The same calls in a statement that reads
 * nothing masked run (`SELECT pg_advisory_lock(42)`, `SELECT nextval('orders_id_seq')`,
 * `INSERT … VALUES (nextval(…), …)`: the target's columns are written, not read).
 */

/** Functions whose effect other sessions or later statements can observe. */
export const EFFECT_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared', 'pg_advisory_unlock', 'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all', 'pg_notify', 'set_config', 'nextval', 'setval', 'pg_logical_emit_message',
  'lo_create', 'lo_creat', 'lo_unlink', 'lo_put', 'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_open',
  'lo_from_bytea', 'lo_import', 'lo_export',
]);

const SEEN_INTO = new Set([...CATALOG_SAFE_FUNCTIONS, ...DEFAULT_ALLOWED_FUNCTIONS, ...EFFECT_FUNCTIONS]);

const REASON = 'its effect (a lock in pg_locks or a row\'s xmax, a notification, a setting, a sequence value, a large object) is read back by other sessions and later statements past every column plan, and whether or how it runs could depend on the masked value; run it in a statement that reads no masked data';

function names(v: unknown): string[] {
  return (Array.isArray(v) ? v : []).map((n) => (n as { String?: { sval?: string } }).String?.sval ?? '');
}

/** Reports, for one top-level statement, the calls with observable effects and everything the statement reads. */
export function effectReads(stmt: unknown): void {
  const calls: string[] = [];
  const lin: Lineage = { cols: [], wholeRow: false, opaque: false, direct: false, rels: [] };
  const aliases = new Set<string>();
  const refs: string[][] = [];
  const stack: unknown[] = [stmt];
  let steps = 0;
  while (stack.length > 0) {
    if (++steps > 1_000_000) {
      lin.opaque = true;
      break;
    }
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    const o = v as Record<string, JsonNode>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const [type] = keys;
      const n = o[type];
      if (type === 'FuncCall') {
        const fn = names(n.funcname);
        const name = fn[fn.length - 1] ?? '';
        const schema = fn.length > 1 ? fn[fn.length - 2] : 'pg_catalog';
        if (schema === 'pg_catalog' && EFFECT_FUNCTIONS.has(name)) calls.push(`${name}()`);
        if (schema !== 'pg_catalog' || !SEEN_INTO.has(name)) lin.opaque = true;
      } else if (type === 'ColumnRef') {
        const fields = Array.isArray(n.fields) ? n.fields : [];
        if (fields.some((f) => (f as { A_Star?: unknown }).A_Star !== undefined)) lin.wholeRow = true;
        refs.push(names(fields));
      } else if (type === 'RangeVar') {
        const rel = String(n.relname ?? '');
        lin.rels?.push(rel);
        aliases.add(rel);
        const alias = (n.alias as { aliasname?: string } | undefined)?.aliasname;
        if (alias !== undefined) aliases.add(alias);
      } else if (type === 'SelectStmt' && Array.isArray(n.lockingClause) && n.lockingClause.length > 0) {
        // Row locks: the locked rows' xmax (and lock waits) are read by other sessions, and
        // which rows a statement locks can depend on a masked value (attack round 6 #3).
        calls.push('a row lock (FOR UPDATE/SHARE)');
      } else if (type === 'JoinExpr' && n.isNatural === true) {
        lin.wholeRow = true;
      } else if (type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
        // The target is read (its WHERE, SET expressions, RETURNING). An INSERT's target is
        // written, not read: ON CONFLICT and RETURNING name its columns.
        const rel = String((n.relation as JsonNode | undefined)?.relname ?? '');
        const alias = ((n.relation as JsonNode | undefined)?.alias as { aliasname?: string } | undefined)?.aliasname;
        lin.rels?.push(rel);
        aliases.add(rel);
        if (alias !== undefined) aliases.add(alias);
      }
    }
    for (const x of Object.values(o)) stack.push(x);
  }
  if (calls.length === 0) return;
  for (const r of refs) {
    const last = r[r.length - 1];
    if (last !== undefined && last !== '' && !lin.cols.includes(last)) lin.cols.push(last);
    // A name that is a FROM item's alias is its whole row (`row_to_json(c)`, `c IS NOT NULL`).
    if (r.length === 1 && aliases.has(r[0])) lin.wholeRow = true;
  }
  keyed(`${[...new Set(calls)].join(', ')} in a statement that reads it`, lin, REASON);
}
