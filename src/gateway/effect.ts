import { parseSync } from 'libpg-query';
import { attributeCall } from './guardrails/attribute-calls.js';
import type { StatementFacts } from './guardrails/index.js';
import type { StatementInfo } from './pipeline.js';

/**
 * Which statements may change the database, for "audit before effect": a statement that may
 * write waits until its audit record is durable before it goes upstream; one that is provably
 * read-only does not wait (its outcome record follows as before).
 *
 * Provably read-only, from libpg-query's tree: every top-level statement is a SELECT (without
 * INTO, FOR UPDATE/SHARE or a data-modifying WITH), SHOW, or transaction control (BEGIN, COMMIT,
 * ROLLBACK, SAVEPOINT: they change no data themselves; every write inside the transaction waits
 * on its own), and every function called is a built-in known to have no side effect. Anything
 * else — INSERT, UPDATE, DELETE, MERGE, COPY, DDL, SET, CALL, EXPLAIN (ANALYZE runs the
 * statement), a SELECT calling `nextval`, `lo_create`, `set_config` or any function not on the
 * list, an unparseable text or an unknown prepared statement — counts as a possible write.
 *
 * Operators, casts and views are taken as side-effect free: making one that writes needs DDL,
 * which the guardrails gate and which is itself audited before it runs.
 */

const READ_ONLY_TOP = new Set(['SelectStmt', 'VariableShowStmt', 'TransactionStmt']);

/** Nodes that write, or lock rows (SELECT ... FOR UPDATE), wherever they appear. */
const WRITING_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Built-in functions without side effects (by name; unqualified or in pg_catalog). */
const PURE_FUNCTIONS = new Set(`
count sum avg min max every bool_and bool_or bit_and bit_or array_agg string_agg json_agg jsonb_agg
json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp
percentile_cont percentile_disc mode corr covar_pop covar_samp regr_slope regr_intercept
rank dense_rank row_number ntile lag lead first_value last_value nth_value cume_dist percent_rank
lower upper length char_length character_length octet_length bit_length substr substring trim btrim
ltrim rtrim replace concat concat_ws left right split_part strpos position reverse lpad rpad initcap
repeat translate md5 sha224 sha256 sha384 sha512 encode decode to_char to_number to_date
to_timestamp format quote_ident quote_literal quote_nullable regexp_replace regexp_match
regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_substr
starts_with ascii chr convert_from convert_to
abs round ceil ceiling floor trunc mod power pow sqrt cbrt exp ln log log10 sign div pi degrees
radians sin cos tan asin acos atan atan2 random width_bucket scale
now date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz
make_interval justify_days justify_hours justify_interval timezone clock_timestamp
statement_timestamp transaction_timestamp timeofday isfinite date_bin to_json to_jsonb
generate_series generate_subscripts unnest array_length array_position array_positions
array_to_string string_to_array cardinality array_upper array_lower array_dims array_ndims
array_append array_prepend array_cat array_remove array_replace
json_build_object jsonb_build_object json_build_array jsonb_build_array row_to_json array_to_json
json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text
json_array_length jsonb_array_length json_array_elements jsonb_array_elements
json_array_elements_text jsonb_array_elements_text json_each jsonb_each json_each_text
jsonb_each_text json_object_keys jsonb_object_keys jsonb_set jsonb_insert jsonb_pretty
json_typeof jsonb_typeof jsonb_strip_nulls json_strip_nulls jsonb_path_query jsonb_path_exists
pg_typeof version current_database current_schema current_schemas current_setting
num_nonnulls num_nulls gen_random_uuid host hostmask masklen network netmask family abbrev
`.split(/\s+/).filter((s) => s !== ''));

const cache = new WeakMap<StatementFacts, boolean>();

/** True when the statement may change data (or cannot be shown not to). */
export function mayWrite(info: StatementInfo | undefined): boolean {
  if (info === undefined) return true;
  const known = cache.get(info.facts);
  if (known !== undefined) return !known;
  // A call the rules could not show free of side effects (`s.f` over a function in FROM may be
  // a user function f(s), visitors.ts fromFunctionCalls) may write.
  if (info.facts.findings.some((f) => f.rule === 'unlisted-function' || f.rule === 'read-only')) {
    cache.set(info.facts, false);
    return true;
  }
  // The facts object is shared by texts with the same literal-free shape; so is this answer
  // (it never looks at a constant).
  const readOnly = provablyReadOnly(info.sql);
  cache.set(info.facts, readOnly);
  return !readOnly;
}

export function provablyReadOnly(sql: string): boolean {
  if (sql.trim() === '') return true;
  let tree: { stmts?: { stmt?: Record<string, unknown> }[] };
  try {
    tree = parseSync(sql);
  } catch { // unparsable SQL is not provably read-only (fail closed)
    return false;
  }
  for (const raw of tree.stmts ?? []) {
    const stmt = raw.stmt;
    if (stmt === undefined) continue;
    const kind = Object.keys(stmt)[0];
    if (kind === undefined || !READ_ONLY_TOP.has(kind)) return false;
    if (kind === 'TransactionStmt') continue;
    if (!readOnlyNode(stmt)) return false;
  }
  return true;
}

function readOnlyNode(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(readOnlyNode);
  if (node === null || typeof node !== 'object') return true;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (WRITING_NODES.has(key) || key === 'intoClause' || key === 'lockingClause') return false;
    if (key === 'FuncCall' && !pureCall(value)) return false;
    if (key === 'ColumnRef' && !pureAttributeCall(value)) return false;
    if (!readOnlyNode(value)) return false;
  }
  return true;
}

/** `c.f` may be f(c) (guardrails/attribute-calls.ts): pure only when f is. */
function pureAttributeCall(ref: unknown): boolean {
  const fn = attributeCall(((ref as { fields?: { String?: { sval?: string } }[] }).fields ?? []).map((n) => n.String?.sval));
  return fn === undefined || PURE_FUNCTIONS.has(fn);
}

function pureCall(call: unknown): boolean {
  const names = ((call as { funcname?: { String?: { sval?: string } }[] }).funcname ?? []).map((n) => n.String?.sval ?? '');
  if (names.length === 0 || names.length > 2) return false;
  if (names.length === 2 && names[0] !== 'pg_catalog') return false;
  return PURE_FUNCTIONS.has(names[names.length - 1]);
}
