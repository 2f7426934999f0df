/**
 * TraceIndex: which minutes (by span start) hold spans of a trace id.
 *
 * Trace ids are random, so DuckDB's min/max zone maps cannot skip anything for
 * `trace_id = ?` and a lookup would scan every span (≈40–60 ms per 10 M rows here, 400 ms cold).
 * Spans are stored roughly in time order, so a time range makes the same lookup a 1–2 row-group
 * read (≈3 ms). This index supplies that range: one Bloom filter (0.01% false positives) per
 * minute of span start times, ~19 bits per distinct trace per minute (≈5 MB per 2 M traces),
 * kept in memory and persisted as blobs. Open minutes are plain hash lists until they close.
 * Why 0.01 %: a lookup asks all 1,440 minutes of a day, so at 0.1 % it read ~1.4 minutes that
 * hold none of the trace (a narrow scan of a row group each, ~3–4 ms at 10 M spans); at 0.01 %
 * ~0.14. A filter persisted with other settings keeps them (its size and hash count are stored).
 */

import type { SpanBatch } from './batch.js';
import { packedIds } from './packed-ids.js';

const BITS_PER_KEY = 19.2; // −ln(0.0001) / ln(2)²
const HASHES = 13;
const US_PER_MIN = 60_000_000;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hexWord(s: string, at: number): number {
  const w = parseInt(s.slice(at, at + 8), 16);
  return Number.isNaN(w) ? 0 : w;
}

/** traceHashes of a 32-digit hex id whose 8-digit words, most significant first, are w0..w3 (unsigned). */
function wordHashes(w0: number, w1: number, w2: number, w3: number): [number, number] {
  // Every word feeds both hashes: ids are not always random (tests, some SDKs' counters).
  const a = (w0 + fmix32(w1 + fmix32(w2 + fmix32(w3)))) >>> 0;
  const b = (w3 ^ fmix32(w2 ^ fmix32(w1 ^ fmix32(w0 ^ 0x5bd1e995)))) >>> 0;
  return [fmix32(a), (fmix32(b) | 1) >>> 0];
}

/** Two independent 32-bit hashes of a trace id (hex; any other string is hashed by its chars). */
export function traceHashes(traceId: string): [number, number] {
  let a: number, b: number;
  if (traceId.length === 32) {
    return wordHashes(hexWord(traceId, 0), hexWord(traceId, 8), hexWord(traceId, 16), hexWord(traceId, 24));
  } else {
    a = 0x811c9dc5;
    b = 0x01000193;
    for (let i = 0; i < traceId.length; i++) {
      a = Math.imul(a ^ traceId.charCodeAt(i), 0x01000193);
      b = Math.imul(b + traceId.charCodeAt(i), 0x5bd1e995);
    }
  }
  return [fmix32(a), (fmix32(b) | 1) >>> 0];
}

export class BloomFilter {
  constructor(readonly words: Uint32Array, readonly hashes: number) {}

  static forKeys(n: number): BloomFilter {
    const bits = Math.max(64, Math.ceil(n * BITS_PER_KEY));
    return new BloomFilter(new Uint32Array(Math.ceil(bits / 32)), HASHES);
  }

  static fromBytes(bytes: Uint8Array, hashes: number): BloomFilter {
    const copy = new Uint8Array(bytes.byteLength - (bytes.byteLength % 4));
    copy.set(bytes.subarray(0, copy.byteLength));
    return new BloomFilter(new Uint32Array(copy.buffer), hashes);
  }

  add(h1: number, h2: number): void {
    const m = this.words.length * 32;
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % m;
      this.words[bit >>> 5] |= 1 << (bit & 31);
    }
  }

  has(h1: number, h2: number): boolean {
    const m = this.words.length * 32;
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % m;
      if ((this.words[bit >>> 5] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  toBytes(): Uint8Array {
    return new Uint8Array(this.words.buffer, this.words.byteOffset, this.words.byteLength);
  }
}

/** Hash pairs of one open minute, growable. */
class HashList {
  data = new Uint32Array(256);
  size = 0;

  push(h1: number, h2: number): void {
    if (this.size * 2 + 2 > this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.size * 2] = h1;
    this.data[this.size * 2 + 1] = h2;
    this.size++;
  }

  has(h1: number, h2: number): boolean {
    for (let i = 0; i < this.size; i++) if (this.data[2 * i] === h1 && this.data[2 * i + 1] === h2) return true;
    return false;
  }

  toFilter(): BloomFilter {
    // Spans of one trace repeat its id: size the filter by distinct ids, not by spans.
    const firsts = new Uint32Array(this.size);
    for (let i = 0; i < this.size; i++) firsts[i] = this.data[2 * i];
    firsts.sort();
    let distinct = 0;
    for (let i = 0; i < firsts.length; i++) if (i === 0 || firsts[i] !== firsts[i - 1]) distinct++;
    const f = BloomFilter.forKeys(distinct);
    for (let i = 0; i < this.size; i++) f.add(this.data[2 * i], this.data[2 * i + 1]);
    return f;
  }
}

export interface BloomRow {
  minuteUs: number;
  filter: BloomFilter;
}

export class TraceIndex {
  private open = new Map<number, HashList>();
  /**
   * Minutes a running flush took (`take`): out of `open`, so spans added meanwhile go to fresh
   * lists that the flush does not drop; still searched until `committed()`, merged back by
   * `restore()` if the flush fails.
   */
  private inFlight: Map<number, HashList> | undefined;
  private persisted: BloomRow[] = [];

  /** Indexes a batch's spans: from the trace ids' words when the decoder kept them (packed-ids.ts). */
  addBatch(b: SpanBatch): void {
    const ids = packedIds(b)?.traceId;
    if (ids === undefined || ids.perId !== 4) {
      this.add(b.traceId, b.startUs, b.length);
      return;
    }
    const w = ids.words, startUs = b.startUs;
    let lastMinute = NaN;
    let h: [number, number] = [0, 0];
    for (let i = 0, k = 0; i < b.length; i++, k += 4) {
      const minute = Math.floor(startUs[i] / US_PER_MIN);
      const same = i > 0 && w[k] === w[k - 4] && w[k + 1] === w[k - 3] && w[k + 2] === w[k - 2] && w[k + 3] === w[k - 1];
      if (same && minute === lastMinute) continue;
      // All-zero words are no id: the decoder never keeps one (it rejects such spans).
      if (!same) h = wordHashes(w[k + 3], w[k + 2], w[k + 1], w[k]);
      lastMinute = minute;
      let list = this.open.get(minute);
      if (!list) { list = new HashList(); this.open.set(minute, list); }
      list.push(h[0], h[1]);
    }
  }

  /** Indexes spans (trace id, start) whose position `keep` accepts (all when absent). */
  add(traceIds: ArrayLike<string>, startUs: ArrayLike<number>, length: number, keep?: (i: number) => boolean): void {
    let lastId = '';
    let lastMinute = NaN;
    let h: [number, number] = [0, 0];
    for (let i = 0; i < length; i++) {
      if (keep && !keep(i)) continue;
      const id = traceIds[i];
      const minute = Math.floor(startUs[i] / US_PER_MIN);
      if (id === lastId && minute === lastMinute) continue;
      if (id !== lastId) h = traceHashes(id);
      lastId = id;
      lastMinute = minute;
      let list = this.open.get(minute);
      if (!list) { list = new HashList(); this.open.set(minute, list); }
      list.push(h[0], h[1]);
    }
  }

  /**
   * Takes every open minute < `minuteBelow` for a flush and returns its filters. One flush at a
   * time: then `committed(rows)` after its COMMIT, or `restore()` if it failed.
   */
  take(minuteBelow: number): BloomRow[] {
    if (this.inFlight) throw new Error('a trace index flush is already running');
    const taken = new Map<number, HashList>();
    for (const [minute, list] of this.open) if (minute < minuteBelow) taken.set(minute, list);
    for (const m of taken.keys()) this.open.delete(m);
    this.inFlight = taken;
    return [...taken].map(([minute, list]) => ({ minuteUs: minute * US_PER_MIN, filter: list.toFilter() }));
  }

  /** The running flush committed `rows` (what `take` returned). */
  committed(rows: BloomRow[]): void {
    this.inFlight = undefined;
    this.persisted.push(...rows);
  }

  /** The running flush failed: its minutes are open again. */
  restore(): void {
    const taken = this.inFlight;
    if (!taken) return;
    this.inFlight = undefined;
    for (const [minute, list] of taken) {
      const now = this.open.get(minute);
      if (now) for (let i = 0; i < now.size; i++) list.push(now.data[2 * i], now.data[2 * i + 1]);
      this.open.set(minute, list);
    }
  }

  load(rows: BloomRow[]): void {
    this.persisted.push(...rows);
  }

  forgetBefore(minuteUs: number): void {
    this.persisted = this.persisted.filter((r) => r.minuteUs >= minuteUs);
    for (const m of [this.open, this.inFlight]) {
      if (m) for (const minute of [...m.keys()]) if (minute * US_PER_MIN < minuteUs) m.delete(minute);
    }
  }

  /**
   * Start (µs) of every minute that may hold spans of the trace, ascending; only minutes in
   * [fromUs, toUs) when given (fewer false positives when the caller knows roughly when).
   */
  candidateMinutes(traceId: string, fromUs = -Infinity, toUs = Infinity): number[] {
    const [h1, h2] = traceHashes(traceId);
    const out = new Set<number>();
    for (const r of this.persisted) {
      if (r.minuteUs >= fromUs - US_PER_MIN && r.minuteUs < toUs && r.filter.has(h1, h2)) out.add(r.minuteUs);
    }
    for (const m of [this.open, this.inFlight]) {
      if (!m) continue;
      for (const [minute, list] of m) {
        const t = minute * US_PER_MIN;
        if (t >= fromUs - US_PER_MIN && t < toUs && list.has(h1, h2)) out.add(t);
      }
    }
    return [...out].sort((a, b) => a - b);
  }
}
