/**
 * Traffic as verification sees it: chunks of one arm (requests, errors, a coarse latency
 * histogram) and a per-second ring of each service × environment × version's recent traffic
 * (the pre-deploy baseline). Built from committed rollup deltas; latency bins are the telemetry
 * sketch's keys (1 % wide) coarsened 4:1 (≈ 8 % wide), which keeps a 10-minute ring small and
 * makes ties explicit for the rank test.
 */
import { sketchValue, type RollupSecond } from '../telemetry/index.js';

export interface ArmChunk {
  count: number;
  errors: number;
  /** Coarse latency key → requests. */
  bins: Map<number, number>;
}

export const COARSE_SHIFT = 2;

export function emptyChunk(): ArmChunk {
  return { count: 0, errors: 0, bins: new Map() };
}

export function addToChunk(into: ArmChunk, from: ArmChunk): void {
  into.count += from.count;
  into.errors += from.errors;
  for (const [k, c] of from.bins) into.bins.set(k, (into.bins.get(k) ?? 0) + c);
}

/** One rollup delta (one operation of one second) as a chunk with coarse latency bins. */
export function chunkOfDelta(d: RollupSecond): ArmChunk {
  const c: ArmChunk = { count: d.count, errors: d.errors, bins: new Map() };
  const { keys, counts } = d.sketch.toBins();
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] >> COARSE_SHIFT;
    c.bins.set(k, (c.bins.get(k) ?? 0) + counts[i]);
  }
  return c;
}

/** The coarse key holding a latency in milliseconds (the benchmark simulates with it). */
export function coarseKeyOfMs(ms: number): number {
  const ns = ms * 1e6;
  return (ns > 1 ? Math.ceil(Math.log(ns) / Math.log(1.01 / 0.99)) : 0) >> COARSE_SHIFT;
}

/** Representative latency (ms) of a coarse key: the middle of its fine keys. */
export function coarseValueMs(key: number): number {
  return sketchValue((key << COARSE_SHIFT) + (1 << COARSE_SHIFT) / 2) / 1e6;
}

/** The coarse key at quantile q of a histogram (the rank rule of the sketch). */
export function thresholdKey(bins: ReadonlyMap<number, number>, q: number): number {
  const keys = [...bins.keys()].sort((a, b) => a - b);
  let total = 0;
  for (const k of keys) total += bins.get(k) ?? 0;
  const rank = q * (total - 1);
  let cum = 0;
  for (const k of keys) {
    cum += bins.get(k) ?? 0;
    if (cum > rank) return k;
  }
  return keys[keys.length - 1];
}

/** Requests slower than the threshold key. */
export function slowCount(bins: ReadonlyMap<number, number>, key: number): number {
  let n = 0;
  for (const [k, c] of bins) if (k > key) n += c;
  return n;
}

export function binsQuantileMs(bins: ReadonlyMap<number, number>, q: number): number {
  if (bins.size === 0) return 0;
  return coarseValueMs(thresholdKey(bins, q));
}

/**
 * The last `windowS` seconds of one service × environment × version, by span start second.
 * Seconds are kept in a map (late spans land in their own second) and pruned on `prune`.
 */
export class SecondRing {
  readonly seconds = new Map<number, ArmChunk>();
  lastSecond = -Infinity;
  /** The earliest second ever added (kept when pruned): when the version began serving. */
  firstSecond = Infinity;

  add(second: number, c: ArmChunk): void {
    let chunk = this.seconds.get(second);
    if (!chunk) { chunk = emptyChunk(); this.seconds.set(second, chunk); }
    addToChunk(chunk, c);
    if (second > this.lastSecond) this.lastSecond = second;
    if (second < this.firstSecond) this.firstSecond = second;
  }

  prune(beforeSecond: number): void {
    for (const s of this.seconds.keys()) if (s < beforeSecond) this.seconds.delete(s);
  }
}

/**
 * The pre-deploy window as a baseline arm (a full rollout: nothing else serves). Its seconds are
 * replayed oldest first, whole seconds at a time, until they match the candidate's requests of
 * the tick, so each chunk pairs about equal exposure. Each second is used once: when the window
 * is used up, the analysis compares the candidate's growing totals against the whole window
 * (VerificationAnalysis.baselineFixed) rather than replaying it again, which would count the
 * window's own sampling noise as evidence over and over.
 */
export class PreDeployReplay {
  private idx = 0;
  /** Baseline requests handed out. */
  served = 0;
  readonly requests: number;

  constructor(private readonly seconds: readonly ArmChunk[]) {
    let n = 0;
    for (const c of seconds) n += c.count;
    this.requests = n;
  }

  get exhausted(): boolean { return this.served >= this.requests; }

  /** Requests in the next second to replay (0 once used up). */
  get nextCount(): number {
    while (this.idx < this.seconds.length && this.seconds[this.idx].count === 0) this.idx++;
    return this.idx < this.seconds.length ? this.seconds[this.idx].count : 0;
  }

  /** Adds whole seconds to `into` until it holds at least `count` requests or the window ends. */
  fill(into: ArmChunk, count: number): void {
    while (into.count < count && this.idx < this.seconds.length) {
      const c = this.seconds[this.idx++];
      addToChunk(into, c);
      this.served += c.count;
    }
  }
}
