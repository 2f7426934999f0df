/**
 * Column batches → DuckDB data chunks, the fastest append path measured here.
 *
 * The high-level DuckDBDataChunk.setColumns converts value by value (BigInt per BIGINT, one native
 * call per string) and ran at ~80k spans/s. This writer fills each column into one reused staging
 * buffer and copies it with a single native call (`copy_data_to_vector`):
 * - integers/doubles/booleans: written straight into the staging buffer (no BigInt);
 * - hex ids: parsed into UBIGINT / UHUGEINT words in JS (no string crosses into native code);
 *   ids the protobuf decoder kept as words (packed-ids.ts) are copied as they are;
 * - strings: strings of ≤ 12 bytes are written inline into DuckDB's 16-byte `duckdb_string_t`
 *   slot (its public C layout: u32 length + 12 inline bytes); the longer ones of a column are
 *   encoded one after another into one buffer, handed to DuckDB in one call (it copies them into
 *   the vector's own string heap, valid until the chunk is reset), and each slot is written in JS
 *   as length + 4-byte prefix + pointer into that copy. Repeats (runs, or any repeat in
 *   low-cardinality columns) copy the slot.
 * - integer lists: child values and (offset, length) entries, one copy each per chunk.
 * `@duckdb/node-bindings` is the native layer `@duckdb/node-api` is built on (pinned by it).
 */
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT, BLOB, BOOLEAN, DOUBLE, DuckDBDataChunk, INTEGER, LIST, SMALLINT, UBIGINT, UHUGEINT, UINTEGER, UTINYINT, VARCHAR,
  type DuckDBAppender, type DuckDBConnection, type DuckDBType,
} from '@duckdb/node-api';
import { packedIds, type PackedIds } from './packed-ids.js';
import { packedColumns, type PackedText } from './packed-text.js';

/**
 * i64: safe-integer number → BIGINT; u8/u32: number → UTINYINT/UINTEGER; f64: number → DOUBLE;
 * bool → BOOLEAN; hex64/hex128: lowercase hex id → UBIGINT/UHUGEINT (0 when absent);
 * words64: Uint32Array, two little-endian words per row → UBIGINT;
 * str: mostly distinct strings; strLow: low-cardinality strings (deduplicated per chunk);
 * i16list/i32list: arrays of integers → SMALLINT[] / INTEGER[]; blob: Uint8Array → BLOB.
 */
export type ColumnKind = 'i64' | 'u8' | 'u32' | 'f64' | 'bool' | 'hex64' | 'hex128' | 'words64' | 'str' | 'strLow'
  | 'i16list' | 'i32list' | 'blob';

export interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  /** Key of the column array in a row source. */
  field: string;
}

/** One batch's columns (a SpanBatch etc., plus computed columns) and its row count. */
export interface RowSource {
  length: number;
  cols: Record<string, unknown>;
  /** String columns carried as UTF-8 bytes (packed-text.ts), used instead of `cols`' entry. */
  packed?: Readonly<Record<string, PackedText>>;
  /** Id columns carried as words (packed-ids.ts), used instead of `cols`' entry. */
  ids?: Readonly<Record<string, PackedIds>>;
}

/**
 * A batch as a row source, plus computed columns: its columns kept as bytes or words stay so (a
 * spread of the batch would decode them into strings).
 */
export function batchSource(b: { length: number }, extra: Record<string, unknown>): RowSource {
  const packed = packedColumns(b);
  const ids = packedIds(b);
  const cols: Record<string, unknown> = {};
  for (const k of Object.keys(b)) if (packed?.[k] === undefined && ids?.[k] === undefined) cols[k] = (b as Record<string, unknown>)[k];
  Object.assign(cols, extra);
  return { length: b.length, cols, packed, ids };
}

const SQL_TYPES: Record<ColumnKind, string> = {
  i64: 'BIGINT', u8: 'UTINYINT', u32: 'UINTEGER', f64: 'DOUBLE', bool: 'BOOLEAN',
  hex64: 'UBIGINT', hex128: 'UHUGEINT', words64: 'UBIGINT', str: 'VARCHAR', strLow: 'VARCHAR',
  i16list: 'SMALLINT[]', i32list: 'INTEGER[]', blob: 'BLOB',
};
const DUCK_TYPES: Record<ColumnKind, DuckDBType> = {
  i64: BIGINT, u8: UTINYINT, u32: UINTEGER, f64: DOUBLE, bool: BOOLEAN,
  hex64: UBIGINT, hex128: UHUGEINT, words64: UBIGINT, str: VARCHAR, strLow: VARCHAR,
  i16list: LIST(SMALLINT), i32list: LIST(INTEGER), blob: BLOB,
};

export function columnDdl(specs: readonly ColumnSpec[]): string {
  return specs.map((s) => `${s.name} ${SQL_TYPES[s.kind]}`).join(', ');
}

const CAP = 2048; // DuckDB's standard vector size
const staging = new ArrayBuffer(CAP * 16);
const u8 = new Uint8Array(staging);
const u32 = new Uint32Array(staging);
const i32 = new Int32Array(staging);
const f64 = new Float64Array(staging);
/** Per row of the current string column: INLINE, NATIVE, or the row whose slot to copy. */
const slotSource = new Int32Array(CAP);
const INLINE = -1;
const NATIVE = -2;
const TWO32 = 4294967296;

interface Segment {
  src: RowSource;
  from: number;
  rows: number;
  /** First row of the segment within the chunk. */
  at: number;
}

/** Appends all sources, in order, through one appender; rows of small sources share chunks. */
export function appendSources(appender: DuckDBAppender, specs: readonly ColumnSpec[], sources: readonly RowSource[],
  chunk: DuckDBDataChunk = createChunk(specs)): void {
  forEachChunk(specs, sources, () => chunk, (c) => appender.appendDataChunk(c));
}

/**
 * Chunks of one table's specs, reused. fill() puts the sources' rows into chunks of up to 2,048
 * rows, taken from the pool (or created): a chunk holds its values in native memory (strings in its
 * own heap), so the sources' JS strings can be collected as soon as it returns, and the chunks can
 * wait for a transaction without costing the garbage collector anything. release() resets
 * (which frees each chunk's string heap at once) and keeps up to `keep` for the next fill. Chunks
 * dropped to the garbage collector hold their native buffers until V8 happens to collect them.
 * A spans chunk keeps ~0.4 MB of fixed-width vectors (~200 bytes a row), so a full pool holds
 * ~26 MB; at 100k spans/s a commit of ~0.5 s leaves ~25 chunks waiting.
 */
export class ChunkPool {
  private readonly free: DuckDBDataChunk[] = [];

  constructor(private readonly specs: readonly ColumnSpec[], private readonly keep = 64) {}

  fill(sources: readonly RowSource[]): DuckDBDataChunk[] {
    const out: DuckDBDataChunk[] = [];
    forEachChunk(this.specs, sources, () => this.free.pop() ?? createChunk(this.specs), (c) => out.push(c));
    return out;
  }

  release(chunks: readonly DuckDBDataChunk[]): void {
    for (const c of chunks) {
      c.reset();
      if (this.free.length < this.keep) this.free.push(c);
    }
  }
}

/** Fills the sources' rows, in order, into chunks from `take` and hands each full (or last) one to `done`. */
function forEachChunk(specs: readonly ColumnSpec[], sources: readonly RowSource[], take: () => DuckDBDataChunk,
  done: (chunk: DuckDBDataChunk) => void): void {
  let segs: Segment[] = [];
  let filled = 0;
  const emit = (): void => {
    if (filled === 0) return;
    const chunk = take();
    chunk.reset();
    chunk.rowCount = filled;
    for (let c = 0; c < specs.length; c++) fillColumn(duckdb.data_chunk_get_vector(chunk.chunk, c), specs[c], segs, filled);
    done(chunk);
    segs = [];
    filled = 0;
  };
  for (const src of sources) {
    let from = 0;
    while (from < src.length) {
      const rows = Math.min(CAP - filled, src.length - from);
      segs.push({ src, from, rows, at: filled });
      filled += rows;
      from += rows;
      if (filled === CAP) emit();
    }
  }
  emit();
}

export function createChunk(specs: readonly ColumnSpec[]): DuckDBDataChunk {
  return DuckDBDataChunk.create(specs.map((s) => DUCK_TYPES[s.kind]));
}

/**
 * An appender kept open across transactions, with its chunk. Creating an appender per
 * transaction doubled the fixed cost of a small commit (measured on the 18-column spans table:
 * ~10 ms vs ~5 ms); `flush()` hands the rows to the open transaction, `discard()` drops rows of
 * a failed one.
 *
 * `claim()` must run once per transaction before the first `append()`. The first write of a
 * transaction waits for DuckDB's checkpoint lock; a checkpoint runs inside another connection's
 * COMMIT for up to seconds. Left to `flush()` (synchronous) that wait blocked the event loop:
 * `flushSync` was ~30% of the ingest server's main thread, with single flushes of 1–6 s while the
 * other write connection checkpointed (p99 ack >1 s). `claim()` makes the transaction a writer
 * with an empty DELETE through the asynchronous `run()`, so the wait happens on a DuckDB thread
 * and the flush only moves rows. Checkpoints still run (WAL stays under the threshold).
 */
export class TableAppender {
  private readonly chunk: DuckDBDataChunk;
  private readonly claimSql: string;

  constructor(private readonly appender: DuckDBAppender, private readonly specs: readonly ColumnSpec[],
    private readonly con?: DuckDBConnection, table?: string) {
    this.chunk = createChunk(specs);
    this.claimSql = table === undefined ? '' : `DELETE FROM "${table.replaceAll('"', '""')}" WHERE false`;
  }

  /** An appender on `table` (main schema) of `con`, with `claim()` enabled. */
  static async open(con: DuckDBConnection, table: string, specs: readonly ColumnSpec[]): Promise<TableAppender> {
    return new TableAppender(await con.createAppender(table), specs, con, table);
  }

  /** Takes the open transaction's write lock off the JS thread (see above); once per transaction. */
  async claim(): Promise<void> {
    if (this.con && this.claimSql) await this.con.run(this.claimSql);
  }

  append(sources: readonly RowSource[]): void {
    appendSources(this.appender, this.specs, sources, this.chunk);
  }

  /** Chunks a ChunkPool of this table's specs filled (the caller returns them to the pool). */
  appendChunks(chunks: readonly DuckDBDataChunk[]): void {
    for (const c of chunks) this.appender.appendDataChunk(c);
  }

  flush(): void {
    this.appender.flushSync();
  }

  discard(): void {
    this.appender.clear();
  }

  close(): void {
    this.appender.closeSync();
  }
}

function fillColumn(vec: duckdb.Vector, spec: ColumnSpec, segs: Segment[], rows: number): void {
  let bytes = rows * 8;
  for (const seg of segs) {
    const col = seg.src.cols[spec.field];
    const { from, rows: n, at } = seg;
    switch (spec.kind) {
      case 'i64': {
        // A number instead of an array is a constant column (e.g. the commit's ingest time).
        const a = col as ArrayLike<number> | number;
        for (let i = 0; i < n; i++) {
          const x = typeof a === 'number' ? a : a[from + i];
          const v = Number.isFinite(x) ? x : 0;
          const hi = Math.floor(v / TWO32);
          u32[2 * (at + i)] = v - hi * TWO32;
          i32[2 * (at + i) + 1] = hi;
        }
        break;
      }
      case 'f64': {
        const a = col as ArrayLike<number>;
        for (let i = 0; i < n; i++) f64[at + i] = a[from + i];
        break;
      }
      case 'u8': case 'bool': {
        const a = col as ArrayLike<number | boolean>;
        for (let i = 0; i < n; i++) u8[at + i] = Number(a[from + i]) & 255;
        bytes = rows;
        break;
      }
      case 'u32': {
        const a = col as ArrayLike<number>;
        for (let i = 0; i < n; i++) u32[at + i] = a[from + i] >>> 0;
        bytes = rows * 4;
        break;
      }
      case 'words64': {
        const a = col as Uint32Array;
        u32.set(a.subarray(2 * from, 2 * (from + n)), 2 * at);
        break;
      }
      case 'hex64': case 'hex128': {
        const words = spec.kind === 'hex64' ? 2 : 4;
        if (words === 4) bytes = rows * 16;
        // Ids the decoder kept as words are in this layout already: one copy.
        const ids = seg.src.ids?.[spec.field];
        if (ids !== undefined && ids.perId === words) {
          u32.set(ids.words.subarray(words * from, words * (from + n)), words * at);
          break;
        }
        const a = col as ArrayLike<string>;
        for (let i = 0; i < n; i++) putHex(a[from + i], words * (at + i), words);
        break;
      }
      case 'str': case 'strLow':
        fillStrings(vec, spec.kind === 'strLow', segs, spec.field, rows);
        return;
      case 'i16list': case 'i32list':
        fillLists(vec, spec.kind === 'i16list' ? 2 : 4, segs, spec.field, rows);
        return;
      case 'blob': // rare and small (trace filters): one native call per value
        for (const sg of segs) {
          const a = sg.src.cols[spec.field] as ArrayLike<Uint8Array>;
          for (let i = 0; i < sg.rows; i++) duckdb.vector_assign_string_element_len(vec, sg.at + i, a[sg.from + i]);
        }
        return;
    }
  }
  duckdb.copy_data_to_vector(vec, 0, staging, 0, bytes);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Big-endian hex of `words`·8 chars → little-endian u32 words at `word`; 0 when absent/invalid. */
function putHex(s: string, word: number, words: number): void {
  if (s.length === words * 8) {
    let ok = true;
    for (let w = 0; w < words && ok; w++) {
      const base = (words - 1 - w) * 8;
      let x = 0;
      for (let k = 0; k < 8; k++) {
        const d = hexDigit(s.charCodeAt(base + k));
        if (d < 0) { ok = false; break; }
        x = (x << 4) | d;
      }
      u32[word + w] = x >>> 0;
    }
    if (ok) return;
  }
  for (let w = 0; w < words; w++) u32[word + w] = 0;
}

/**
 * The long strings of one column of one chunk, as UTF-8, one after another. DuckDB gets them in
 * one `vector_assign_string_element_len` call (into the vector's own string heap) and each row's
 * `duckdb_string_t` then points into that copy (see fillStrings): one native call per column
 * per chunk instead of one per string, which converted each JS string through N-API and copied
 * it into a heap allocation of its own (~40 % of filling the spans' chunks).
 */
let blob = Buffer.allocUnsafe(1 << 20);
/** Per row of the current string column: where its bytes start in `blob` (rows not INLINE). */
const blobAt = new Float64Array(CAP);

interface Utf8Write { utf8Write(s: string, offset: number, length: number): number }
const fastWrite = typeof (Buffer.prototype as unknown as Partial<Utf8Write>).utf8Write === 'function';
const writeUtf8 = fastWrite
  ? (b: Buffer, s: string, at: number): number => (b as unknown as Utf8Write).utf8Write(s, at, b.length - at)
  : (b: Buffer, s: string, at: number): number => b.write(s, at, 'utf8');

/** Writes an ASCII string of ≤ 12 chars inline into slot `row`; false when it does not qualify. */
function tryInline(s: string, row: number): boolean {
  const len = s.length;
  if (len > 12) return false;
  const o = row * 16;
  for (let k = 0; k < len; k++) {
    const c = s.charCodeAt(k);
    if (c > 127) return false;
    u8[o + 4 + k] = c;
  }
  u32[row * 4] = len;
  for (let k = 4 + len; k < 16; k++) u8[o + k] = 0;
  return true;
}

/**
 * Encodes `s` at the end of the blob; returns its byte length. A string of ≤ 12 bytes is written
 * inline into slot `row` instead (DuckDB reads any string that short as inline) and not kept.
 */
function toBlob(s: string, row: number, at: number): number {
  if (blob.length - at < s.length * 3) {
    const grown = Buffer.allocUnsafe(Math.max(blob.length * 2, at + s.length * 3));
    blob.copy(grown, 0, 0, at);
    blob = grown;
  }
  const n = writeUtf8(blob, s, at);
  const o = row * 16;
  u32[row * 4] = n;
  if (n <= 12) {
    for (let k = 0; k < 12; k++) u8[o + 4 + k] = k < n ? blob[at + k] : 0;
    return n;
  }
  for (let k = 0; k < 4; k++) u8[o + 4 + k] = blob[at + k]; // prefix; the pointer is set later
  blobAt[row] = at;
  return n;
}

function fillStrings(vec: duckdb.Vector, lowCardinality: boolean, segs: Segment[], field: string, rows: number): void {
  const seen = lowCardinality ? new Map<string, number>() : undefined;
  let used = 0;
  let prev: string | undefined;
  for (const seg of segs) {
    const bytes = seg.src.packed?.[field];
    if (bytes !== undefined) {
      used = packedSegment(bytes, seg, used);
      prev = undefined;
      continue;
    }
    const a = seg.src.cols[field] as ArrayLike<string>;
    for (let i = 0; i < seg.rows; i++) {
      const row = seg.at + i;
      const s = a[seg.from + i] ?? '';
      const earlier = s === prev ? row - 1 : seen?.get(s);
      prev = s;
      if (earlier !== undefined) {
        // The same bytes: the same slot (an inline copy, or a pointer to the same blob bytes).
        // Four word copies: a copyWithin call per repeated row cost more than the copy.
        const to = row * 4, from = earlier * 4;
        u32[to] = u32[from]; u32[to + 1] = u32[from + 1]; u32[to + 2] = u32[from + 2]; u32[to + 3] = u32[from + 3];
        slotSource[row] = slotSource[earlier];
        blobAt[row] = blobAt[earlier];
        continue;
      }
      seen?.set(s, row);
      if (tryInline(s, row)) { slotSource[row] = INLINE; continue; }
      const n = toBlob(s, row, used);
      if (n <= 12) { slotSource[row] = INLINE; continue; }
      slotSource[row] = NATIVE;
      used += n;
    }
  }
  if (used > 0) {
    // The blob goes into the vector's string heap through row 0's slot (overwritten below): the
    // pointer DuckDB wrote there is where the copy starts, and stays valid until the chunk is reset.
    duckdb.vector_assign_string_element_len(vec, 0, blob.subarray(0, used));
    const slot0 = duckdb.vector_get_data(vec, 16);
    const baseLo = (slot0[8] | (slot0[9] << 8) | (slot0[10] << 16) | (slot0[11] << 24)) >>> 0;
    const baseHi = (slot0[12] | (slot0[13] << 8) | (slot0[14] << 16) | (slot0[15] << 24)) >>> 0;
    for (let row = 0; row < rows; row++) {
      if (slotSource[row] !== NATIVE) continue;
      const lo = baseLo + blobAt[row];
      const carry = lo >= TWO32 ? 1 : 0;
      u32[row * 4 + 2] = lo - carry * TWO32;
      u32[row * 4 + 3] = baseHi + carry;
    }
  }
  duckdb.copy_data_to_vector(vec, 0, staging, 0, rows * 16);
}

/**
 * Rows of a column kept as bytes: their values are one range of `col.bytes`, copied to the blob
 * at `used` in one go; values of ≤ 12 bytes go inline instead. Returns the blob bytes used.
 */
function packedSegment(col: PackedText, seg: Segment, used: number): number {
  const first = col.start(seg.from);
  const last = col.ends[seg.from + seg.rows - 1];
  const n = last - first;
  if (blob.length - used < n) {
    const grown = Buffer.allocUnsafe(Math.max(blob.length * 2, used + n));
    blob.copy(grown, 0, 0, used);
    blob = grown;
  }
  col.bytes.copy(blob, used, first, last);
  const src = col.bytes;
  let s = first;
  for (let i = 0; i < seg.rows; i++) {
    const row = seg.at + i;
    const e = col.ends[seg.from + i];
    const len = e - s;
    const o = row * 16;
    u32[row * 4] = len;
    if (len <= 12) {
      for (let k = 0; k < 12; k++) u8[o + 4 + k] = k < len ? src[s + k] : 0;
      slotSource[row] = INLINE;
    } else {
      for (let k = 0; k < 4; k++) u8[o + 4 + k] = src[s + k];
      blobAt[row] = used + (s - first);
      slotSource[row] = NATIVE;
    }
    s = e;
  }
  return used + n;
}

let listValues = new ArrayBuffer(1 << 16);

/** List column: (offset, length) u64 pairs in the vector, values in its child vector. */
function fillLists(vec: duckdb.Vector, width: 2 | 4, segs: Segment[], field: string, rows: number): void {
  let total = 0;
  for (const seg of segs) {
    const a = seg.src.cols[field] as ArrayLike<ArrayLike<number>>;
    for (let i = 0; i < seg.rows; i++) {
      const row = seg.at + i;
      const len = a[seg.from + i].length;
      u32[4 * row] = total; u32[4 * row + 1] = 0; // offset
      u32[4 * row + 2] = len; u32[4 * row + 3] = 0; // length
      total += len;
    }
  }
  if (listValues.byteLength < total * width) listValues = new ArrayBuffer(Math.max(total * width, listValues.byteLength * 2));
  const out = width === 2 ? new Int16Array(listValues) : new Int32Array(listValues);
  let at = 0;
  for (const seg of segs) {
    const a = seg.src.cols[field] as ArrayLike<ArrayLike<number>>;
    for (let i = 0; i < seg.rows; i++) {
      const list = a[seg.from + i];
      for (let k = 0; k < list.length; k++) out[at++] = list[k];
    }
  }
  duckdb.copy_data_to_vector(vec, 0, staging, 0, rows * 16);
  duckdb.list_vector_reserve(vec, total);
  duckdb.list_vector_set_size(vec, total);
  if (total > 0) duckdb.copy_data_to_vector(duckdb.list_vector_get_child(vec), 0, listValues, 0, total * width);
}
