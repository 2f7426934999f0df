import { createRequire } from 'node:module';
import { CompiledQuery, type Kysely } from 'kysely';
import { apiError } from '../core/app-error.js';

/**
 * Copying an embedded SQLite state database into a PostgreSQL one (`tightloop state migrate`).
 *
 * The tables are discovered from the SQLite schema, never listed here: a table a later version
 * adds is copied too, or the copy refuses with its name when the target has no such table or a
 * column it cannot convert. Values keep their exact form: SQLite integers are read as BigInt
 * (no rounding past 2^53) and sent as decimal text, reals as JavaScript numbers (whose text is
 * the shortest exact form), blobs as bytes, text unchanged; booleans (0/1 in SQLite) become
 * PostgreSQL booleans. Everything is written in the caller's transaction on the target.
 */

const req = createRequire(import.meta.url);

/** Kysely's own bookkeeping: the target's migrations write their own. */
const MIGRATION_TABLES = new Set(['tightloop_migration', 'tightloop_migration_lock']);

export type SqliteValue = string | number | bigint | Buffer | null;

/** The source: the SQLite file, opened with an exclusive lock that no running server holds. */
export interface SqliteSource {
  readonly tables: readonly string[];
  readonly migrations: readonly string[];
  columns(table: string): string[];
  count(table: string): number;
  rows(table: string): IterableIterator<SqliteValue[]>;
  close(): void;
}

interface BetterStatement { raw(on: boolean): BetterStatement; safeIntegers(on: boolean): BetterStatement; iterate(...p: unknown[]): IterableIterator<unknown>; all(...p: unknown[]): unknown[]; get(...p: unknown[]): unknown }
interface BetterDb { prepare(sql: string): BetterStatement; exec(sql: string): void; pragma(s: string, o?: { simple: boolean }): unknown; close(): void }

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Opens `path` and takes SQLite's exclusive lock at once (no waiting). In WAL mode every open
 * connection holds a shared lock on the file for as long as it is open, so this fails while a
 * tightloop process (or anything else) has the state database open: `state_in_use`. The lock is
 * kept until `close`, so no server can start on the file during the copy either.
 */
export function openSqliteSource(path: string): SqliteSource {
  const Database = req('better-sqlite3') as new (p: string, o: object) => BetterDb;
  let db: BetterDb;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 0 });
  } catch (cause) {
    throw apiError('state_not_found', `no SQLite state database at ${path} (${(cause as Error).message}); pass --data-dir`, { cause });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('begin exclusive');
  } catch (cause) {
    db.close();
    if ((cause as { code?: string }).code === 'SQLITE_BUSY') {
      throw apiError('state_in_use', `${path} is in use: stop the tightloop process on this data directory first (tightloop state migrate copies a database nobody writes)`, { cause });
    }
    throw cause;
  }
  const names = (db.prepare(`select name, sql from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\' order by name`).all() as Array<{ name: string }>).map((r) => r.name);
  const migrations = names.includes('tightloop_migration')
    ? (db.prepare('select name from tightloop_migration order by name').all() as Array<{ name: string }>).map((r) => r.name)
    : [];
  return {
    tables: names.filter((n) => !MIGRATION_TABLES.has(n)),
    migrations,
    columns: (t) => (db.prepare(`select name from pragma_table_info(?) order by cid`).all(t) as Array<{ name: string }>).map((r) => r.name),
    count: (t) => Number((db.prepare(`select count(*) as n from ${ident(t)}`).get() as { n: number }).n),
    rows: (t) => db.prepare(`select * from ${ident(t)}`).raw(true).safeIntegers(true).iterate() as IterableIterator<SqliteValue[]>,
    close: () => {
      try { db.exec('rollback'); } catch { /* nothing open */ }
      db.close();
    },
  };
}

type Target = Kysely<unknown>;

async function query<R>(db: Target, text: string, params: unknown[] = []): Promise<R[]> {
  return (await db.executeQuery<R>(CompiledQuery.raw(text, params))).rows;
}

/** Tables of the target's current schema. */
export async function targetTables(db: Target): Promise<string[]> {
  const rows = await query<{ name: string }>(db, `select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`);
  return rows.map((r) => r.name);
}

/** Tables among `names` that hold rows on the target, with their counts. */
export async function tablesWithRows(db: Target, names: readonly string[]): Promise<Array<{ table: string; rows: number }>> {
  const present = new Set(await targetTables(db));
  const out: Array<{ table: string; rows: number }> = [];
  for (const t of names) {
    if (!present.has(t)) continue;
    const [{ n }] = await query<{ n: string }>(db, `select count(*) as n from ${ident(t)}`);
    if (Number(n) > 0) out.push({ table: t, rows: Number(n) });
  }
  return out;
}

type Convert = (v: SqliteValue) => unknown;

/** How a SQLite value becomes a parameter for a target column of `type`; undefined: unknown type. */
function converter(type: string, where: string): Convert | undefined {
  const bad = (v: SqliteValue, want: string): never => {
    throw apiError('state_copy_value', `${where}: cannot copy a ${Buffer.isBuffer(v) ? 'blob' : typeof v} value into a ${want} column`);
  };
  switch (type) {
    case 'text': case 'character varying': case 'character':
      return (v) => (v === null || typeof v === 'string' ? v : typeof v === 'bigint' || typeof v === 'number' ? String(v) : bad(v, type));
    case 'smallint': case 'integer': case 'bigint':
      return (v) => (v === null ? null : typeof v === 'bigint' ? v.toString() : typeof v === 'number' && Number.isInteger(v) ? String(v)
        : typeof v === 'string' && /^-?\d+$/.test(v) ? v : bad(v, type));
    case 'double precision': case 'real': case 'numeric':
      return (v) => (v === null || typeof v === 'number' ? v : typeof v === 'bigint' ? v.toString() : typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? v : bad(v, type));
    case 'boolean':
      return (v) => (v === null ? null : v === 0n || v === 0 ? false : v === 1n || v === 1 ? true : bad(v, type));
    case 'bytea':
      return (v) => (v === null || Buffer.isBuffer(v) ? v : bad(v, type));
    case 'json': case 'jsonb':
      return (v) => (v === null || typeof v === 'string' ? v : bad(v, type));
    default:
      return undefined;
  }
}

/** Parents before children (foreign keys on the target); ties by name. */
async function insertOrder(db: Target, tables: readonly string[]): Promise<string[]> {
  const edges = await query<{ child: string; parent: string }>(db, `
    select cl.relname as child, pcl.relname as parent from pg_constraint c
    join pg_class cl on cl.oid = c.conrelid join pg_class pcl on pcl.oid = c.confrelid
    join pg_namespace n on n.oid = cl.relnamespace
    where c.contype = 'f' and n.nspname = current_schema()`);
  const parents = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]));
  for (const e of edges) if (e.child !== e.parent && parents.has(e.child) && parents.has(e.parent)) parents.get(e.child)?.add(e.parent);
  const out: string[] = [];
  const done = new Set<string>();
  while (out.length < tables.length) {
    const next = [...parents].filter(([t, ps]) => !done.has(t) && [...ps].every((p) => done.has(p))).map(([t]) => t).sort();
    if (next.length === 0) throw apiError('state_copy_cycle', `foreign keys form a cycle among ${[...parents.keys()].filter((t) => !done.has(t)).join(', ')}`);
    for (const t of next) { out.push(t); done.add(t); }
  }
  return out;
}

export interface CopyResult { table: string; rows: number }

/**
 * Copies every source table into `trx` (the target, migrated, in a transaction). Refuses, before
 * writing anything, a table or column the target lacks or a column type it cannot convert.
 */
export async function copyTables(src: SqliteSource, trx: Target): Promise<CopyResult[]> {
  const present = new Set(await targetTables(trx));
  const unknown = src.tables.filter((t) => !present.has(t));
  if (unknown.length > 0) {
    throw apiError('state_copy_unknown_table', `the target has no table ${unknown.join(', ')} after its migrations: this version does not know how to copy ${unknown.length === 1 ? 'it' : 'them'}`);
  }
  const plans = new Map<string, { columns: string[]; convert: Convert[] }>();
  for (const t of src.tables) {
    const types = new Map((await query<{ name: string; type: string }>(trx,
      `select column_name as name, data_type as type from information_schema.columns where table_schema = current_schema() and table_name = $1`, [t])).map((r) => [r.name, r.type]));
    const columns = src.columns(t);
    const convert = columns.map((c) => {
      const type = types.get(c);
      if (type === undefined) throw apiError('state_copy_unknown_column', `the target table ${t} has no column ${c}: this version does not know how to copy it`);
      const f = converter(type, `${t}.${c}`);
      if (f === undefined) throw apiError('state_copy_unknown_type', `${t}.${c} has type ${type} on the target, which this version does not know how to copy`);
      return f;
    });
    plans.set(t, { columns, convert });
  }
  const results: CopyResult[] = [];
  for (const t of await insertOrder(trx, src.tables)) {
    const plan = plans.get(t);
    if (plan === undefined) continue;
    const already = await tablesWithRows(trx, [t]);
    if (already.length > 0) throw apiError('state_target_not_empty', `the target table ${t} has ${already[0].rows} rows (another process wrote to it during the migration?)`);
    const perBatch = Math.max(1, Math.min(500, Math.floor(60_000 / Math.max(1, plan.columns.length))));
    const head = `insert into ${ident(t)} (${plan.columns.map(ident).join(', ')}) values `;
    let batch: unknown[][] = [];
    let rows = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const params: unknown[] = [];
      const tuples = batch.map((r) => `(${r.map((v) => { params.push(v); return `$${params.length}`; }).join(', ')})`);
      await trx.executeQuery(CompiledQuery.raw(head + tuples.join(', '), params));
      batch = [];
    };
    for (const row of src.rows(t)) {
      batch.push(row.map((v, i) => plan.convert[i](v)));
      rows++;
      if (batch.length >= perBatch) await flush();
    }
    await flush();
    results.push({ table: t, rows });
  }
  await resetSequences(trx);
  return results.sort((a, b) => a.table.localeCompare(b.table));
}

/** Serial and identity columns continue after the copied ids (setval to the highest one). */
async function resetSequences(trx: Target): Promise<void> {
  const cols = await query<{ t: string; c: string; seq: string | null }>(trx, `
    select table_name as t, column_name as c, pg_get_serial_sequence(quote_ident(table_name), column_name) as seq
    from information_schema.columns
    where table_schema = current_schema() and (is_identity = 'YES' or column_default like 'nextval(%')`);
  for (const { t, c, seq } of cols) {
    if (seq === null) continue;
    await query(trx, `select setval($1, coalesce((select max(${ident(c)}) from ${ident(t)}), 0) + 1, false)`, [seq]);
  }
}

/** Row counts of every copied table, on the target, against the source's. */
export async function compareCounts(src: SqliteSource, trx: Target): Promise<Array<{ table: string; source: number; target: number }>> {
  const out: Array<{ table: string; source: number; target: number }> = [];
  for (const t of src.tables) {
    const [{ n }] = await query<{ n: string }>(trx, `select count(*) as n from ${ident(t)}`);
    out.push({ table: t, source: src.count(t), target: Number(n) });
  }
  return out;
}
