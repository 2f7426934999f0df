/**
 * Streaming RED rollups: per service × operation × version × environment × second (and minute),
 * from entry spans (kind SERVER or CONSUMER, or no parent): request count, errors (status ERROR)
 * and a latency sketch. A second "all operations" series per service × version × environment is
 * kept too, so service-level charts merge one series per version instead of one per operation.
 *
 * The buffer only aggregates; the store decides when a period is closed, persists it
 * (`take` → commit → `committed`, or `restore` on failure) and rebuilds the buffer from raw spans
 * after a crash.
 */
import { at } from '../core/indexed.js';
import type { SpanBatch } from './batch.js';
import { hasId, packedIds } from './packed-ids.js';
import { LatencySketch, sketchKey } from './sketch.js';

/** One flushed second of one operation, as detectors receive it. */
export interface RollupSecond {
  service: string;
  operation: string;
  version: string;
  environment: string;
  /** Start of the second, µs since the epoch. */
  second: number;
  count: number;
  errors: number;
  /** Latency sketch (nanoseconds): `sketch.quantile(0.95)`. */
  sketch: LatencySketch;
}

/** A persisted rollup row: one period (second or minute) of one series. */
export interface RollupRow {
  periodUs: number;
  service: string;
  operation: string;
  version: string;
  environment: string;
  /** True for the all-operations series (operation is then ''). */
  allOperations: boolean;
  count: number;
  errors: number;
  /** Sketch bins, keys ascending. */
  keys: number[];
  counts: number[];
}

export type RollupListener = (rows: RollupSecond[]) => void;

/**
 * Receives what one committed append added to the per-operation rollups (entry spans only),
 * right after its commit: detectors keep their own windows from these deltas instead of waiting
 * for the flush (seconds are flushed ~2 s after they end, too late for sub-second alerting).
 */
export type CommittedRollupListener = (deltas: RollupSecond[]) => void;

interface Acc {
  /**
   * The series' keys (opKey, allKey), made once when a batch's accumulator is created: the four
   * merges into the buffers (second and minute, operation and all-operations) then look up
   * strings whose hash is already computed instead of concatenating and hashing new ones.
   */
  key: string;
  allKey: string;
  service: string;
  operation: string;
  version: string;
  environment: string;
  allOperations: boolean;
  count: number;
  errors: number;
  bins: Map<number, number>;
}

type Period = Map<string, Acc>;

const SEP = '\u0001';
const US_PER_S = 1_000_000;
const KIND_SERVER = 2;
const KIND_CONSUMER = 5;
const STATUS_ERROR = 2;

export function isEntrySpan(kind: number, parentSpanId: string): boolean {
  return kind === KIND_SERVER || kind === KIND_CONSUMER || parentSpanId === '';
}

/** isEntrySpan for row i of a batch, without making its parent ids into strings (packed-ids.ts). */
export function isEntryRow(b: SpanBatch, i: number): boolean {
  const kind = at(b.kind, i);
  return kind === KIND_SERVER || kind === KIND_CONSUMER || !hasId(b, 'parentSpanId', i);
}

function newAcc(a: Omit<Acc, 'count' | 'errors' | 'bins'>): Acc {
  return {
    key: a.key, allKey: a.allKey, service: a.service, operation: a.operation, version: a.version, environment: a.environment,
    allOperations: a.allOperations, count: 0, errors: 0, bins: new Map(),
  };
}

function mergeInto(target: Acc, src: Acc): void {
  target.count += src.count;
  target.errors += src.errors;
  for (const [k, c] of src.bins) target.bins.set(k, (target.bins.get(k) ?? 0) + c);
}

const opKey = (service: string, operation: string, version: string, environment: string): string =>
  `${service}${SEP}${operation}${SEP}${version}${SEP}${environment}`;
const allKeyOf = (service: string, version: string, environment: string): string => `${SEP}${service}${SEP}${version}${SEP}${environment}`;

function periodOf(target: Map<number, Period>, period: number): Period {
  let p = target.get(period);
  if (!p) { p = new Map(); target.set(period, p); }
  return p;
}

/** The accumulator of series `key` in `p` for `src`'s series (the all-operations one when `all`). */
function accOf(p: Period, key: string, src: Acc, all: boolean): Acc {
  let acc = p.get(key);
  if (!acc) {
    acc = newAcc({ ...src, key, operation: all ? '' : src.operation, allOperations: all });
    p.set(key, acc);
  }
  return acc;
}

/** Merges `src` into the series `key` of `period` (as the all-operations series when `all`). */
function mergePeriod(target: Map<number, Period>, period: number, key: string, src: Acc, all: boolean): void {
  mergeInto(accOf(periodOf(target, period), key, src, all), src);
}

/**
 * Merges each accumulator of a batch's second into its four buffered series at once (second and
 * minute, the operation and all operations): one walk over its bins instead of four, and the
 * period maps looked up once per second instead of once per series (ingest's hot path: a request
 * of a busy collector touches hundreds of series).
 */
function mergeFour(seconds: Period, minutes: Period, period: Period): void {
  for (const src of period.values()) {
    const a = accOf(seconds, src.key, src, false), b = accOf(seconds, src.allKey, src, true);
    const c = accOf(minutes, src.key, src, false), d = accOf(minutes, src.allKey, src, true);
    a.count += src.count; b.count += src.count; c.count += src.count; d.count += src.count;
    a.errors += src.errors; b.errors += src.errors; c.errors += src.errors; d.errors += src.errors;
    for (const [k, n] of src.bins) {
      a.bins.set(k, (a.bins.get(k) ?? 0) + n);
      b.bins.set(k, (b.bins.get(k) ?? 0) + n);
      c.bins.set(k, (c.bins.get(k) ?? 0) + n);
      d.bins.set(k, (d.bins.get(k) ?? 0) + n);
    }
  }
}

function toRow(periodUs: number, a: Acc): RollupRow {
  const keys = [...a.bins.keys()].sort((x, y) => x - y);
  return {
    periodUs, service: a.service, operation: a.operation, version: a.version, environment: a.environment,
    allOperations: a.allOperations, count: a.count, errors: a.errors, keys, counts: keys.map((k) => a.bins.get(k) ?? 0),
  };
}

export function rollupSecondOf(row: RollupRow): RollupSecond {
  return {
    service: row.service, operation: row.operation, version: row.version, environment: row.environment,
    second: row.periodUs, count: row.count, errors: row.errors, sketch: LatencySketch.fromBins(row.keys, row.counts),
  };
}

/** One batch's entry spans aggregated per second × operation series (RollupBuffer.add returns it). */
export type BatchRollup = ReadonlyMap<number, Period>;

/**
 * The per-operation seconds one span batch adds (entry spans only), for committed-rollup
 * listeners, from the batch's aggregation that RollupBuffer.add() returned (not aggregated twice).
 */
export function deltasOf(perSecond: BatchRollup, out: RollupSecond[] = []): RollupSecond[] {
  for (const [second, period] of perSecond) {
    for (const acc of period.values()) out.push(rollupSecondOf(toRow(second * US_PER_S, acc)));
  }
  return out;
}

/** Aggregates the entry spans of one batch per second × operation series. */
function aggregateBatch(b: SpanBatch, keep?: (i: number) => boolean): Map<number, Period> {
  // The decoder's parent ids are words (packed-ids.ts): read them without making strings.
  const parents = packedIds(b)?.parentSpanId;
  const out = new Map<number, Period>();
  let lastSecond = NaN;
  let lastPeriod: Period | undefined;
  let last: Acc | undefined;
  for (let i = 0; i < b.length; i++) {
    const kind = at(b.kind, i);
    if (!(kind === KIND_SERVER || kind === KIND_CONSUMER || (parents === undefined ? at(b.parentSpanId, i) === '' : parents.isZero(i)))) continue;
    if (keep && !keep(i)) continue;
    const second = Math.floor(at(b.startUs, i) / US_PER_S);
    const service = at(b.service, i), operation = at(b.name, i), version = at(b.version, i), environment = at(b.environment, i);
    // Spans of one request burst share series and second: skip the lookups then.
    if (!(last && second === lastSecond && last.operation === operation && last.service === service
      && last.version === version && last.environment === environment)) {
      if (second !== lastSecond || !lastPeriod) {
        lastPeriod = out.get(second);
        if (!lastPeriod) { lastPeriod = new Map(); out.set(second, lastPeriod); }
        lastSecond = second;
      }
      const key = opKey(service, operation, version, environment);
      last = lastPeriod.get(key);
      if (!last) {
        last = newAcc({ key, allKey: allKeyOf(service, version, environment), service, operation, version, environment, allOperations: false });
        lastPeriod.set(key, last);
      }
    }
    last.count++;
    if (b.statusCode[i] === STATUS_ERROR) last.errors++;
    const k = sketchKey(at(b.durationNs, i));
    last.bins.set(k, (last.bins.get(k) ?? 0) + 1);
  }
  return out;
}

export class RollupBuffer {
  /** Second and minute numbers since the epoch → series accumulators not yet persisted. */
  private seconds = new Map<number, Period>();
  private minutes = new Map<number, Period>();
  /**
   * What the running flush took (`take`): out of the maps above, so spans added meanwhile — late
   * ones for the same periods included — land in fresh accumulators that the flush never drops.
   * Still buffered for readers until `committed()`; merged back by `restore()` if the flush fails.
   */
  private inFlight: { seconds: Map<number, Period>; minutes: Map<number, Period> } | undefined;

  /**
   * Id of the last committed flush. Persisted rollup rows carry the id of the flush that wrote
   * them, and the buffer (with what a running flush took) holds exactly the spans of no
   * committed flush: persisted rows with `flush_id <= flushId` plus `buffered()`, both read at the
   * same `flushId`, count every span once, whenever the flush's COMMIT lands in between.
   */
  flushId = 0;
  /** Changes when retention drops buffered periods (a read spanning it retries). */
  epoch = 0;

  /**
   * Adds the entry spans of a batch. `levels` limits which resolutions receive each span
   * (recovery replays only what the persisted watermarks do not cover). Returns the batch's own
   * per-second aggregation (of the spans the second level received), e.g. for deltasOf().
   */
  add(b: SpanBatch, levels?: { second: (i: number) => boolean; minute: (i: number) => boolean }): BatchRollup {
    const perSecond = aggregateBatch(b, levels?.second);
    if (!levels) {
      for (const [second, period] of perSecond) mergeFour(periodOf(this.seconds, second), periodOf(this.minutes, Math.floor(second / 60)), period);
      return perSecond;
    }
    const perMinute = aggregateBatch(b, levels.minute);
    for (const [second, period] of perSecond) {
      for (const acc of period.values()) {
        mergePeriod(this.seconds, second, acc.key, acc, false);
        mergePeriod(this.seconds, second, acc.allKey, acc, true);
      }
    }
    for (const [second, period] of perMinute) {
      const minute = Math.floor(second / 60);
      for (const acc of period.values()) {
        mergePeriod(this.minutes, minute, acc.key, acc, false);
        mergePeriod(this.minutes, minute, acc.allKey, acc, true);
      }
    }
    return perSecond;
  }

  /**
   * Takes every second < `secondBelow` and minute < `minuteBelow` out of the buffer for a flush
   * and returns their rows. One flush at a time: the caller then calls `committed()` after its
   * COMMIT, or `restore()` if it failed.
   */
  take(secondBelow: number, minuteBelow: number): { seconds: RollupRow[]; minutes: RollupRow[] } {
    if (this.inFlight) throw new Error('a rollup flush is already running');
    const detach = (m: Map<number, Period>, below: number): Map<number, Period> => {
      const out = new Map<number, Period>();
      for (const [p, period] of m) if (p < below) out.set(p, period);
      for (const p of out.keys()) m.delete(p);
      return out;
    };
    this.inFlight = { seconds: detach(this.seconds, secondBelow), minutes: detach(this.minutes, minuteBelow) };
    return { seconds: rowsOf(this.inFlight.seconds, US_PER_S), minutes: rowsOf(this.inFlight.minutes, 60 * US_PER_S) };
  }

  /** The running flush committed: what it took is persisted (with flush id `flushId + 1`). */
  committed(): void {
    this.inFlight = undefined;
    this.flushId++;
  }

  /** The running flush failed: what it took goes back into the buffer. */
  restore(): void {
    const f = this.inFlight;
    if (!f) return;
    this.inFlight = undefined;
    for (const [target, src] of [[this.seconds, f.seconds], [this.minutes, f.minutes]] as const) {
      for (const [p, period] of src) for (const [key, acc] of period) mergePeriod(target, p, key, acc, acc.allOperations);
    }
  }

  /**
   * Buffered rows of one resolution whose period starts in [fromUs, toUs), what a running flush
   * took included. They hold exactly what persisted rows with `flush_id <= flushId` lack.
   */
  buffered(level: 'second' | 'minute', fromUs: number, toUs: number): RollupRow[] {
    const unit = level === 'second' ? US_PER_S : 60 * US_PER_S;
    const rows: RollupRow[] = [];
    for (const m of [level === 'second' ? this.seconds : this.minutes, level === 'second' ? this.inFlight?.seconds : this.inFlight?.minutes]) {
      if (!m) continue;
      for (const [p, period] of m) {
        const t = p * unit;
        if (t >= fromUs && t < toUs) for (const acc of period.values()) rows.push(toRow(t, acc));
      }
    }
    return rows;
  }

  /** Drops buffered periods before `us` (their spans were deleted by retention). */
  forgetBefore(us: number): void {
    this.epoch++;
    const forget = (m: Map<number, Period> | undefined, unit: number): void => {
      if (m) for (const p of [...m.keys()]) if (p * unit < us) m.delete(p);
    };
    forget(this.seconds, US_PER_S);
    forget(this.minutes, 60 * US_PER_S);
    forget(this.inFlight?.seconds, US_PER_S);
    forget(this.inFlight?.minutes, 60 * US_PER_S);
  }
}

function rowsOf(m: Map<number, Period>, unitUs: number): RollupRow[] {
  const rows: RollupRow[] = [];
  for (const [p, period] of m) for (const acc of period.values()) rows.push(toRow(p * unitUs, acc));
  return rows.sort((a, b) => a.periodUs - b.periodUs);
}
