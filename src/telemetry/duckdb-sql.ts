/**
 * Small helpers shared by the DuckDB queries: a pool of read connections (so queries neither
 * queue behind the writer's transactions nor behind each other), value conversion, and the
 * newest-first time windows used by the "latest N" searches.
 */
import { UBIGINT, type DuckDBConnection, type DuckDBMaterializedResult, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';

export type SqlParams = Record<string, DuckDBValue>;
export type Row = Record<string, unknown>;

export interface SqlRunner {
  rows(sql: string, params?: SqlParams, types?: Record<string, DuckDBType>): Promise<Row[]>;
  result(sql: string, params?: SqlParams, types?: Record<string, DuckDBType>): Promise<DuckDBMaterializedResult>;
}

interface Slot {
  con: DuckDBConnection;
  tail: Promise<unknown>;
  pending: number;
}

/** Read connections, each running one statement at a time; a query takes the least busy one. */
export class ReadPool implements SqlRunner {
  private readonly slots: Slot[];

  constructor(connections: DuckDBConnection[]) {
    this.slots = connections.map((con) => ({ con, tail: Promise.resolve(), pending: 0 }));
  }

  async rows(sql: string, params?: SqlParams, types?: Record<string, DuckDBType>): Promise<Row[]> {
    return (await this.use((con) => con.runAndReadAll(sql, params, types))).getRowObjectsJS();
  }

  /** The materialized result, for readers that take vectors directly. */
  result(sql: string, params?: SqlParams, types?: Record<string, DuckDBType>): Promise<DuckDBMaterializedResult> {
    return this.use((con) => con.run(sql, params, types));
  }

  private async use<T>(fn: (con: DuckDBConnection) => Promise<T>): Promise<T> {
    const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    slot.pending++;
    const run = slot.tail.then(() => fn(slot.con));
    // The failure reaches this call's caller through `run`; the tail only orders the next use.
    slot.tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      slot.pending--;
    }
  }

  close(): void {
    for (const s of this.slots) s.con.closeSync();
  }
}

export function num(v: unknown): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return 0;
  return Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  // A cell of a DuckDB row: the client's value classes (lists, decimals, ...) print as SQL does.
  const cell = v as DuckDBValue;
  return String(cell);
}

/** UHUGEINT / UBIGINT id → lowercase hex of `chars` digits; 0 (absent) → ''. */
export function hexId(v: unknown, chars: number): string {
  const n = typeof v === 'bigint' ? v : BigInt(num(v));
  return n === 0n ? '' : n.toString(16).padStart(chars, '0');
}

const TRACE_ID = /^[0-9a-fA-F]{32}$/;
const SPAN_ID = /^[0-9a-fA-F]{16}$/;

/** Hex trace id → UHUGEINT parameter, or null when it is not a trace id. */
export function traceIdParam(id: string): bigint | null {
  return TRACE_ID.test(id) ? BigInt(`0x${id}`) : null;
}

export function spanIdParam(id: string): bigint | null {
  return SPAN_ID.test(id) ? BigInt(`0x${id}`) : null;
}

export function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string' || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch { // not written by this code as JSON: the caller's default
    return fallback;
  }
}

/** JSON pointer for one attribute key (keys contain dots, so `$.a.b` paths would misread them). */
export function jsonPointer(key: string): string {
  return `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * Newest-first windows [lo, hi) covering [fromUs, toUs): 10 minutes, then ×4 each step. A search
 * for the latest N rows usually stops after the first window; a rare match scans the range once.
 */
export function* newestFirstWindows(fromUs: number, toUs: number, firstUs = 600_000_000): Generator<[number, number]> {
  let hi = toUs;
  let size = firstUs;
  while (hi > fromUs) {
    const lo = Math.max(fromUs, hi - size);
    yield [lo, hi];
    hi = lo;
    size *= 4;
  }
}

/** Contiguous [start, end) ranges covering the given minute starts (µs, ascending). */
export function minuteRanges(minutes: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of minutes) {
    const last = out[out.length - 1];
    if (last && last[1] === m) last[1] = m + 60_000_000;
    else out.push([m, m + 60_000_000]);
  }
  return out;
}

export interface ResourceInfo {
  attrs: string;
  scopeName: string;
  scopeVersion: string;
}

/**
 * Resource rows by id, cached: a handful of resources serve millions of rows, and a join in
 * each query cost more (~6 ms on a 5-span trace) than the lookup of the few ids it returns.
 */
export class ResourceLookup {
  private readonly cache = new Map<bigint, ResourceInfo>();

  constructor(private readonly sql: SqlRunner) {}

  async get(ids: Iterable<unknown>): Promise<Map<bigint, ResourceInfo>> {
    const wanted = new Set<bigint>();
    for (const id of ids) if (typeof id === 'bigint') wanted.add(id);
    const missing = [...wanted].filter((id) => !this.cache.has(id));
    if (missing.length > 0) {
      const params: SqlParams = {};
      const types: Record<string, DuckDBType> = {};
      const list = missing.map((id, i) => { params[`r${i}`] = id; types[`r${i}`] = UBIGINT; return `$r${i}`; });
      const rows = await this.sql.rows(`SELECT resource_id, attrs, scope_name, scope_version FROM resources
        WHERE resource_id IN (${list.join(', ')})`, params, types);
      if (this.cache.size > 10_000) this.cache.clear();
      for (const r of rows) {
        this.cache.set(r.resource_id as bigint, { attrs: str(r.attrs), scopeName: str(r.scope_name), scopeVersion: str(r.scope_version) });
      }
    }
    const out = new Map<bigint, ResourceInfo>();
    for (const id of wanted) {
      const r = this.cache.get(id);
      if (r) out.set(id, r);
    }
    return out;
  }
}
