import { OVER_LONG, type DetectorId, type DetectorSet } from './detectors.js';

/**
 * Sensitive-column classification. A column whose stored values the content detectors recognise
 * (or whose name says what it holds: email, phone, card, ssn, iban, ...) gets an implied column
 * rule, so lineage masks every value computed from it (`reverse(card)`, `split_part(email, '@', 1)`,
 * `encode(convert_to(email, 'UTF8'), 'base64')`) — a value that no longer looks like PII is still
 * masked. Explicit column rules win; `{ name, mode: 'none' }` exempts a column from classification.
 *
 * The gateway classifies from a sample it reads itself, with the resource's login, before a
 * session's relay starts (catalog.ts): every selectable column of every table, partitioned table
 * and materialized view, up to SAMPLE_ROWS rows each. Columns it could not sample (foreign tables,
 * over the column cap) are classified `unsampled`: fail closed, their derived values are masked.
 */

export interface CatalogColumn {
  schema: string;
  table: string;
  column: string;
  /** pg_class.relkind: r, p, m, f, v. */
  kind: string;
  /** format_type() of the column. */
  type: string;
}

export type ClassSource = 'sample' | 'name' | 'seen' | 'unsampled';

export interface ClassifiedColumn {
  /** `schema.table`, or `*` for a column learnt from a result. */
  table: string;
  column: string;
  source: ClassSource;
  detectors: DetectorId[];
  /** Share of the sampled non-null values a detector matched. */
  share?: number;
  /**
   * `values`: the stored values are PII as a whole, so a plain reference is masked as a whole in
   * the policy's mode; `contains`: some values hold PII, so a plain reference is left to the
   * detectors. Either way every value derived from the column is masked as a whole.
   */
  kind: 'values' | 'contains';
}

/** Rows read per table for classification. */
export const SAMPLE_ROWS = 50;
/** Columns sampled per resource; the rest are classified `unsampled` (fail closed). */
export const SAMPLE_COLUMN_CAP = 4_000;
/** Characters read of each sampled value. */
const SAMPLE_CHARS = 512;
/** Share of matched values from which a column's values are PII as a whole. */
const VALUES_SHARE = 0.8;

/** Types whose values no detector can match: never sampled, never classified by name. */
const UNSAMPLED_TYPES = /^(boolean|date|time|timestamp|interval|uuid|point|line|lseg|box|path|polygon|circle|tsvector|tsquery|pg_lsn|oid|regclass|regtype|money|bit)\b/;
/** Types a name hint may classify: text-like and numeric. */
const HINTABLE_TYPES = /^(text|character|citext|name|bigint|integer|numeric|json|jsonb|bytea)\b|\[\]$/;

/** Name parts that say a column holds personal data (split on `_`, digits and camelCase). */
const NAME_HINTS = new Set(['email', 'emails', 'mail', 'phone', 'phones', 'mobile', 'msisdn', 'telephone', 'card', 'pan', 'ccnum', 'cc', 'ssn', 'iban', 'passport', 'taxid']);

export function nameHinted(column: string): boolean {
  const parts = column.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z]+/).filter((p) => p !== '');
  if (parts.includes('e') && parts.includes('mail')) return true;
  return parts.some((p) => NAME_HINTS.has(p)) || NAME_HINTS.has(parts.join(''));
}

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export interface SamplePlan {
  /** The sampling query (undefined when nothing is to be sampled). */
  sql: string | undefined;
  /** Per sub-query index: the columns its JSON array holds, in order. */
  parts: CatalogColumn[][];
  /** Columns that could not be sampled. */
  unsampled: CatalogColumn[];
}

/**
 * One query that reads up to SAMPLE_ROWS rows of every sampled table: rows of (tag, part, JSON
 * array of the part's columns as text). Timeouts are local to the query's implicit transaction,
 * so the session that follows keeps its own settings.
 */
export function samplePlan(columns: readonly CatalogColumn[]): SamplePlan {
  const byTable = new Map<string, CatalogColumn[]>();
  const unsampled: CatalogColumn[] = [];
  let taken = 0;
  for (const c of columns) {
    if (c.kind === 'v' || UNSAMPLED_TYPES.test(c.type)) continue;
    if (c.kind === 'f' || taken >= SAMPLE_COLUMN_CAP) {
      unsampled.push(c);
      continue;
    }
    taken++;
    const key = `${c.schema}.${c.table}`;
    const list = byTable.get(key) ?? [];
    list.push(c);
    byTable.set(key, list);
  }
  const parts: CatalogColumn[][] = [];
  const selects: string[] = [];
  for (const cols of byTable.values()) {
    // json_build_array takes at most 100 arguments.
    for (let i = 0; i < cols.length; i += 100) {
      const chunk = cols.slice(i, i + 100);
      const values = chunk.map((c) => (c.type === 'bytea'
        ? `pg_catalog.encode(pg_catalog.substr(${ident(c.column)}, 1, ${SAMPLE_CHARS}), 'escape')`
        : `pg_catalog.left(${ident(c.column)}::text, ${SAMPLE_CHARS})`));
      selects.push(`(SELECT 's', ${parts.length}, pg_catalog.json_build_array(${values.join(', ')})::text FROM ${ident(chunk[0].schema)}.${ident(chunk[0].table)} LIMIT ${SAMPLE_ROWS})`);
      parts.push(chunk);
    }
  }
  if (selects.length === 0) return { sql: undefined, parts, unsampled };
  const sql = `SELECT pg_catalog.set_config('statement_timeout', ${literal('10s')}, true), pg_catalog.set_config('lock_timeout', ${literal('2s')}, true);\n${selects.join('\nUNION ALL ')}`;
  return { sql, parts, unsampled };
}

/** Classifies the sampled columns (rows of the sampling query) plus name hints and unsampled columns. */
export function classify(columns: readonly CatalogColumn[], plan: SamplePlan, rows: readonly (string | null)[][], detectors: DetectorSet): ClassifiedColumn[] {
  const seen = new Map<CatalogColumn, { nonNull: number; hits: number; ids: Set<DetectorId> }>();
  for (const row of rows) {
    if (row.length !== 3 || row[0] !== 's' || row[2] === null) continue;
    const part = plan.parts[Number(row[1])];
    if (part === undefined) continue;
    const values = JSON.parse(row[2]) as unknown[];
    part.forEach((col, i) => {
      const v = values[i];
      if (v === null || v === undefined) return;
      const stat = seen.get(col) ?? { nonNull: 0, hits: 0, ids: new Set<DetectorId>() };
      stat.nonNull++;
      // Samples are cut at 512 characters, far below the over-long bound; a length alone classifies nothing.
      const found = detectors.find(String(v)).flatMap((m) => (m.id === OVER_LONG ? [] : [m.id]));
      if (found.length > 0) {
        stat.hits++;
        for (const id of found) stat.ids.add(id);
      }
      seen.set(col, stat);
    });
  }
  const out: ClassifiedColumn[] = [];
  const unsampled = new Set(plan.unsampled);
  for (const c of columns) {
    const table = `${c.schema}.${c.table}`;
    const stat = seen.get(c);
    if (stat !== undefined && stat.hits > 0) {
      const share = stat.hits / stat.nonNull;
      out.push({ table, column: c.column, source: 'sample', detectors: [...stat.ids], share, kind: share >= VALUES_SHARE ? 'values' : 'contains' });
    } else if (c.kind !== 'v' && HINTABLE_TYPES.test(c.type) && nameHinted(c.column)) {
      out.push({ table, column: c.column, source: 'name', detectors: [], kind: 'values' });
    } else if (unsampled.has(c)) {
      out.push({ table, column: c.column, source: 'unsampled', detectors: [], kind: 'contains' });
    }
  }
  return out;
}

/** Relations of the system catalogs by name: known to hold no user data (pg_stats is judged apart). */
export const SYSTEM_RELATIONS_SQL = `SELECT DISTINCT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')`;

/** Columns of the system relations: a qualified name that is none of them is a call in attribute form (masker.ts). */
export const SYSTEM_COLUMNS_SQL = `SELECT DISTINCT c.relname, a.attname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')`;

/** Names of constraints and indexes (error messages of class 23 name them; catalog-names.ts). */
export const CONSTRAINT_NAMES_SQL = `SELECT conname FROM pg_catalog.pg_constraint UNION SELECT relname FROM pg_catalog.pg_class WHERE relkind IN ('i', 'I')`;

/** The catalog query listing every column the gateway classifies (and the views it follows). */
export const COLUMNS_SQL = `SELECT n.nspname, c.relname, a.attname, c.relkind::text, pg_catalog.format_type(a.atttypid, NULL)
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'm', 'f', 'v') AND a.attnum > 0 AND NOT a.attisdropped AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')
  ORDER BY 1, 2, a.attnum`;
