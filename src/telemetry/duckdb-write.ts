/**
 * One write connection of the DuckDB store with its long-lived appenders, and the statements
 * the store writes through it (raw rows, resources, rollups, trace filters, watermarks).
 */
import type { DuckDBConnection, DuckDBDataChunk } from '@duckdb/node-api';
import { TableAppender, type ColumnSpec, type RowSource } from './duckdb-chunks.js';
import { BLOOM_COLUMNS, ROLLUP_COLUMNS } from './duckdb-schema.js';
import type { ResourceEntry } from './resource-registry.js';
import type { RollupRow } from './rollup.js';
import type { BloomRow } from './trace-index.js';

export class WriteConnection {
  private readonly appenders = new Map<string, TableAppender>();
  /** Appenders holding rows of the open transaction. */
  private readonly touched = new Set<TableAppender>();

  constructor(readonly con: DuckDBConnection) {}

  /** Runs `body` in a transaction; rows appended in it are committed with it or dropped. */
  async transaction(body: () => Promise<void>): Promise<void> {
    await this.con.run('BEGIN TRANSACTION');
    try {
      await body();
      for (const a of this.touched) a.flush();
      await this.con.run('COMMIT');
    } catch (e) {
      for (const a of this.touched) a.discard();
      await this.con.run('ROLLBACK').catch(() => undefined); // a failed COMMIT has already rolled back
      throw e;
    } finally {
      this.touched.clear();
    }
  }

  /** Hands the rows appended so far to the open transaction (they are committed with it). */
  flushAppended(): void {
    for (const a of this.touched) a.flush();
  }

  /** Appends rows to `table` inside the current transaction. */
  async append(table: string, specs: readonly ColumnSpec[], sources: readonly RowSource[]): Promise<void> {
    if (sources.length === 0) return;
    (await this.appender(table, specs)).append(sources);
  }

  /** Appends chunks a ChunkPool of `specs` filled to `table` inside the current transaction. */
  async appendChunks(table: string, specs: readonly ColumnSpec[], chunks: readonly DuckDBDataChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    (await this.appender(table, specs)).appendChunks(chunks);
  }

  /** The table's appender, claimed for the open transaction. */
  private async appender(table: string, specs: readonly ColumnSpec[]): Promise<TableAppender> {
    let a = this.appenders.get(table);
    if (!a) {
      a = await TableAppender.open(this.con, table, specs);
      this.appenders.set(table, a);
    }
    if (!this.touched.has(a)) {
      this.touched.add(a);
      await a.claim(); // before the synchronous flush can wait for a checkpoint (duckdb-chunks.ts)
    }
    return a;
  }

  /** Rollup rows of the flush `flushId` (every row carries it). */
  async insertRollups(table: string, rows: RollupRow[], flushId: number): Promise<void> {
    await this.append(table, ROLLUP_COLUMNS, [columns(rows.map((r) => ({ ...r, flushId })), ROLLUP_COLUMNS)]);
  }

  async insertBlooms(rows: BloomRow[]): Promise<void> {
    await this.append('trace_blooms', BLOOM_COLUMNS, [columns(rows.map((r) => ({
      minuteUs: r.minuteUs, hashes: r.filter.hashes, bits: r.filter.toBytes(),
    })), BLOOM_COLUMNS)]);
  }

  async insertResources(entries: ResourceEntry[]): Promise<void> {
    const json = JSON.stringify(entries.map((e) => ({ id: e.id, attrs: e.attrs, scopeName: e.scopeName, scopeVersion: e.scopeVersion })));
    await this.con.run(`INSERT OR IGNORE INTO resources
      SELECT unnest(from_json($j, '[{"id":"UBIGINT","attrs":"VARCHAR","scopeName":"VARCHAR","scopeVersion":"VARCHAR"}]'), recursive := true)`,
    { j: json });
  }

  close(): void {
    for (const a of this.appenders.values()) a.close();
    this.appenders.clear();
    this.con.closeSync();
  }
}

function columns<T extends object>(rows: T[], specs: readonly ColumnSpec[]): RowSource {
  const cols: Record<string, unknown[]> = {};
  for (const spec of specs) cols[spec.field] = rows.map((r) => r[spec.field as keyof T]);
  return { length: rows.length, cols };
}
