/**
 * Merges rollup rows (group, count, errors, keys, counts) per group in JS.
 *
 * Merging the sketch bins in SQL (unnest + GROUP BY + window for the cumulative counts) took
 * ~45 ms for a 24 h service chart (2,960 minute rows, 264k bins) on the 2-core test machine; most
 * of it was the hash aggregate and the window. Reading the two list columns' child vectors as
 * typed arrays (one copy per chunk) and adding them into dense per-group arrays takes a few ms.
 */
import duckdb from '@duckdb/node-bindings';
import type { DuckDBDataChunk, DuckDBMaterializedResult } from '@duckdb/node-api';
import type { RollupRow } from './rollup.js';
import { sketchValue } from './sketch.js';

export interface MergedRollup {
  count: number;
  errors: number;
  /** Latency quantiles in ms (null when there is no request). */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

interface Acc {
  count: number;
  errors: number;
  bins: Float64Array;
}

export function int64s(chunk: DuckDBDataChunk, column: number, rows: number): Float64Array {
  const bytes = duckdb.vector_get_data(duckdb.data_chunk_get_vector(chunk.chunk, column), rows * 8);
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, rows * 2);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = (words[2 * i] >>> 0) + words[2 * i + 1] * 4294967296;
  return out;
}

/** A flat list column: per row [offset, length] and the child values. */
function list(chunk: DuckDBDataChunk, column: number, rows: number, width: 2 | 4): { entries: Uint32Array; values: Int16Array | Int32Array } {
  const vec = duckdb.data_chunk_get_vector(chunk.chunk, column);
  const e = duckdb.vector_get_data(vec, rows * 16);
  const size = duckdb.list_vector_get_size(vec);
  const v = duckdb.vector_get_data(duckdb.list_vector_get_child(vec), Math.max(1, size) * width);
  return {
    entries: new Uint32Array(e.buffer, e.byteOffset, rows * 4),
    values: width === 2 ? new Int16Array(v.buffer, v.byteOffset, size) : new Int32Array(v.buffer, v.byteOffset, size),
  };
}

/**
 * Merges a result whose columns are (g, count BIGINT, errors BIGINT, keys SMALLINT[],
 * counts INTEGER[]) — `groups` reads column 0 of a chunk — and `extra` rows (buffered rollups).
 */
export function mergeRollupResult<G>(result: DuckDBMaterializedResult, groups: (chunk: DuckDBDataChunk, rows: number) => ArrayLike<G>,
  extra: Array<[G, RollupRow]> = []): Map<G, MergedRollup> {
  const parts = [];
  // First pass: read the vectors and the key range, so each group's bins are one small array.
  let minKey = Infinity, maxKey = -Infinity;
  for (let c = 0; c < result.chunkCount; c++) {
    const chunk = result.getChunk(c);
    const rows = chunk.rowCount;
    if (rows === 0) continue;
    const keys = list(chunk, 3, rows, 2);
    for (let i = 0; i < keys.values.length; i++) {
      const k = keys.values[i];
      if (k < minKey) minKey = k;
      if (k > maxKey) maxKey = k;
    }
    parts.push({ rows, g: groups(chunk, rows), counts: int64s(chunk, 1, rows), errors: int64s(chunk, 2, rows), keys, bins: list(chunk, 4, rows, 4) });
  }
  for (const [, row] of extra) {
    for (const k of row.keys) { if (k < minKey) minKey = k; if (k > maxKey) maxKey = k; }
  }
  const width = maxKey >= minKey ? maxKey - minKey + 1 : 0;
  const accs = new Map<G, Acc>();
  const accOf = (g: G): Acc => {
    let acc = accs.get(g);
    if (!acc) { acc = { count: 0, errors: 0, bins: new Float64Array(width) }; accs.set(g, acc); }
    return acc;
  };
  for (const p of parts) {
    for (let r = 0; r < p.rows; r++) {
      const acc = accOf(p.g[r]);
      acc.count += p.counts[r];
      acc.errors += p.errors[r];
      const off = p.keys.entries[4 * r], len = p.keys.entries[4 * r + 2], cOff = p.bins.entries[4 * r];
      for (let i = 0; i < len; i++) acc.bins[p.keys.values[off + i] - minKey] += p.bins.values[cOff + i];
    }
  }
  for (const [g, row] of extra) {
    const acc = accOf(g);
    acc.count += row.count;
    acc.errors += row.errors;
    for (let i = 0; i < row.keys.length; i++) acc.bins[row.keys[i] - minKey] += row.counts[i];
  }
  const out = new Map<G, MergedRollup>();
  for (const [g, a] of accs) out.set(g, { count: a.count, errors: a.errors, ...quantilesMs(a.bins, minKey) });
  return out;
}

/** p50/p95/p99 by DDSketch's rank rule (first key whose cumulative count exceeds q·(n−1)). */
function quantilesMs(bins: Float64Array, minKey: number): { p50Ms: number | null; p95Ms: number | null; p99Ms: number | null } {
  let total = 0;
  for (let k = 0; k < bins.length; k++) total += bins[k];
  if (total === 0) return { p50Ms: null, p95Ms: null, p99Ms: null };
  const qs = [0.5, 0.95, 0.99];
  const found: number[] = [];
  let cum = 0;
  for (let k = 0; k < bins.length && found.length < qs.length; k++) {
    if (bins[k] === 0) continue;
    cum += bins[k];
    while (found.length < qs.length && cum > qs[found.length] * (total - 1)) found.push(sketchValue(k + minKey) / 1e6);
  }
  return { p50Ms: found[0] ?? null, p95Ms: found[1] ?? null, p99Ms: found[2] ?? null };
}
