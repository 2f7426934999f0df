/**
 * Feeds for rules that rollups cannot serve, all fed from what was just committed (no database
 * reads): RED rules selecting or fanning out by attributes (committed spans), metric rules
 * (committed metric points; cumulative streams turned into increases here), log rules
 * (committed log records) and error rules (the errors pillar's per-commit counts). Each feed
 * adds a batch's records to the matching series, then calls `touched` once per (rule, series).
 * Attributes are parsed from their JSON text only for rules that ask for them, once per record.
 */
import type { GroupEventCount } from '../errors/index.js';
import { isEntryRow, sketchKey, type LogBatch, type MetricBatch, type SpanBatch } from '../telemetry/index.js';
import { summaryQuantile } from '../telemetry/metric-distributions.js';
import { SUMMARY_TARGETS, type PointDelta } from './metric-window.js';
import type { AttrLookup, RuleRuntime, SeriesEntry } from './rule-set.js';
import { SEVERITIES } from './rules.js';
import { compilePattern, type CompiledPattern } from '../core/pattern.js';
import { textOf } from '../core/text.js';

export type Touched = (rt: RuleRuntime, e: SeriesEntry) => void;

const EMPTY: Record<string, unknown> = {};

function parseObject(text: string): Record<string, unknown> {
  if (text === '' || text === '{}') return EMPTY;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : EMPTY;
  } catch { // stored text that is not JSON reads as no fields
    return EMPTY;
  }
}

function attrText(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : textOf(v);
}

/** Attribute lookup over one batch: the record's attributes, then its resource's (cached by text). */
export class AttrReader {
  private row = -1;
  private rec: Record<string, unknown> | undefined;
  private readonly resources = new Map<string, Record<string, unknown>>();

  /** Takes the batch, not its columns: a column kept as bytes (packed-text.ts) is decoded only when a rule reads it. */
  constructor(private readonly b: { readonly attrs: readonly string[]; readonly resourceAttrs: readonly string[] }) {}

  at(i: number): AttrLookup {
    if (i !== this.row) { this.row = i; this.rec = undefined; }
    return this.get;
  }

  private readonly get = (key: string): string | undefined => {
    this.rec ??= parseObject(this.b.attrs[this.row] ?? '');
    const own = this.rec[key];
    if (own !== undefined) return attrText(own);
    const text = this.b.resourceAttrs[this.row] ?? '';
    let res = this.resources.get(text);
    if (res === undefined) { res = parseObject(text); this.resources.set(text, res); }
    return attrText(res[key]);
  };
}

interface Acc { count: number; errors: number; bins?: Map<number, number> }

/** Per-batch accumulation per series and second, added to the windows in one go. */
class BatchAcc {
  private readonly bySeries = new Map<SeriesEntry, { rt: RuleRuntime; seconds: Map<number, Acc> }>();

  add(rt: RuleRuntime, e: SeriesEntry, second: number, errors: number, durationNs?: number): void {
    let s = this.bySeries.get(e);
    if (!s) { s = { rt, seconds: new Map() }; this.bySeries.set(e, s); }
    let a = s.seconds.get(second);
    if (!a) { a = { count: 0, errors: 0 }; s.seconds.set(second, a); }
    a.count++;
    a.errors += errors;
    if (durationNs !== undefined && rt.needs.bins) {
      const k = sketchKey(durationNs);
      a.bins ??= new Map();
      a.bins.set(k, (a.bins.get(k) ?? 0) + 1);
    }
  }

  flush(touched: Touched): void {
    for (const [e, { rt, seconds }] of this.bySeries) {
      for (const [second, a] of seconds) {
        let bins;
        if (a.bins) {
          const keys = [...a.bins.keys()].sort((x, y) => x - y);
          bins = { keys, counts: keys.map((k) => a.bins!.get(k) ?? 0) };
        }
        e.window.add(second, a.count, a.errors, bins);
      }
      touched(rt, e);
    }
  }
}

/** Entry spans of committed batches → RED series of rules that select or fan out by attributes. */
export function feedSpans(rts: readonly RuleRuntime[], b: SpanBatch, touched: Touched): void {
  const acc = new BatchAcc();
  const attrs = new AttrReader(b);
  for (let i = 0; i < b.length; i++) {
    if (!isEntryRow(b, i)) continue;
    const labels = { service: b.service[i], operation: b.name[i], version: b.version[i], environment: b.environment[i] };
    const second = Math.floor(b.startUs[i] / 1e6);
    for (const rt of rts) {
      if (!rt.selects(labels)) continue;
      const attr = attrs.at(i);
      if (!rt.selectsAttrs(attr)) continue;
      acc.add(rt, rt.entryFor(labels, attr), second, b.statusCode[i] === 2 ? 1 : 0, b.durationNs[i]);
    }
  }
  acc.flush(touched);
}

interface LogMatcher { pattern?: string; regex?: CompiledPattern; minSeverity: number }
const logMatchers = new WeakMap<RuleRuntime, LogMatcher>();

function logMatcher(rt: RuleRuntime): LogMatcher {
  let m = logMatchers.get(rt);
  if (m === undefined) {
    const spec = rt.rule.spec;
    const match = spec.type === 'log' ? spec.match : {};
    m = {
      pattern: match.pattern?.toLowerCase(),
      regex: match.regex === undefined ? undefined : compilePattern(match.regex),
      minSeverity: match.min_severity === undefined ? 0 : SEVERITIES[match.min_severity],
    };
    logMatchers.set(rt, m);
  }
  return m;
}

/** A record's severity number; from its text (`ERROR`, `warning`, ...) when the number is unset. */
function severityOf(n: number, text: string): number {
  if (n > 0) return n;
  const t = text.toUpperCase();
  for (const [name, v] of Object.entries(SEVERITIES)) if (t.startsWith(name)) return v;
  return t.startsWith('CRIT') || t.startsWith('EMERG') || t.startsWith('ALERT') ? SEVERITIES.FATAL : 0;
}

/** Committed log records → per-second counts of records matching each log rule. */
export function feedLogs(rts: readonly RuleRuntime[], b: LogBatch, touched: Touched): void {
  const acc = new BatchAcc();
  const attrs = new AttrReader(b);
  for (let i = 0; i < b.length; i++) {
    const labels = { service: b.service[i], version: b.version[i], environment: b.environment[i] };
    let lower: string | undefined;
    let severity = -1;
    for (const rt of rts) {
      if (!rt.selects(labels)) continue;
      const m = logMatcher(rt);
      if (m.minSeverity > 0) {
        if (severity < 0) severity = severityOf(b.severityNumber[i], b.severityText[i]);
        if (severity < m.minSeverity) continue;
      }
      if (m.pattern !== undefined && !(lower ??= b.body[i].toLowerCase()).includes(m.pattern)) continue;
      if (m.regex !== undefined && !m.regex.test(b.body[i])) continue;
      const attr = attrs.at(i);
      if (!rt.selectsAttrs(attr)) continue;
      acc.add(rt, rt.entryFor(labels, attr), Math.floor(b.timeUs[i] / 1e6), 0);
    }
  }
  acc.flush(touched);
}

interface StreamState { startUs: number; value: number; count: number; sum: number; buckets?: Map<number, number>; seenUs: number }

interface Histogram { bounds: number[]; counts: number[] }

/** Explicit and exponential histogram detail → upper bounds ascending and counts. */
function histogramOf(type: string, detail: string): Histogram | undefined {
  const d = parseObject(detail);
  if (type === 'histogram') {
    const bounds = Array.isArray(d.bounds) ? (d.bounds as number[]) : [];
    const counts = Array.isArray(d.counts) ? (d.counts as number[]).map(Number) : [];
    return { bounds: [...bounds.map(Number), Infinity].slice(0, counts.length), counts };
  }
  if (type !== 'exp_histogram') return undefined;
  const scale = Number(d.scale ?? 0);
  const base = 2 ** (2 ** -scale);
  const out: Histogram = { bounds: [], counts: [] };
  const side = (s: unknown): { offset: number; counts: number[] } => {
    const o = (s ?? {}) as { offset?: number; counts?: number[] };
    return { offset: Number(o.offset ?? 0), counts: (o.counts ?? []).map(Number) };
  };
  const neg = side(d.negative), pos = side(d.positive);
  // Negative buckets, most negative first: index j covers [-base^(j+1), -base^j).
  for (let k = neg.counts.length - 1; k >= 0; k--) { out.bounds.push(-(base ** (neg.offset + k))); out.counts.push(neg.counts[k]); }
  out.bounds.push(0);
  out.counts.push(Number(d.zeroCount ?? 0));
  for (let k = 0; k < pos.counts.length; k++) { out.bounds.push(base ** (pos.offset + k + 1)); out.counts.push(pos.counts[k]); }
  return out;
}

/**
 * Metric points → series of metric rules. Cumulative streams (one per metric × resource ×
 * point attributes) become increases by difference with the stream's previous point; a drop or
 * a new start time is a reset (the new value is the increase). A stream's first point counts in
 * full only when the stream started after this feed did (otherwise its history is unknown).
 */
export class MetricFeed {
  private readonly streams = new Map<string, StreamState>();
  private lastSweepUs = 0;

  constructor(private readonly startUs: number) {}

  feed(byName: ReadonlyMap<string, readonly RuleRuntime[]>, b: MetricBatch, touched: Touched): void {
    const seen = new Map<SeriesEntry, RuleRuntime>();
    const attrs = new AttrReader(b);
    for (let i = 0; i < b.length; i++) {
      const rts = byName.get(b.name[i]);
      if (rts === undefined) continue;
      const labels = { service: b.service[i], version: b.version[i], environment: b.environment[i] };
      let delta: PointDelta | undefined;
      const second = Math.floor(b.timeUs[i] / 1e6);
      for (const rt of rts) {
        if (!rt.selects(labels)) continue;
        const attr = attrs.at(i);
        if (!rt.selectsAttrs(attr)) continue;
        delta ??= this.delta(b, i);
        const e = rt.entryFor(labels, attr);
        e.metric?.add(second, b.timeUs[i], delta);
        if (second > e.window.lastSeen) e.window.lastSeen = second;
        seen.set(e, rt);
      }
    }
    for (const [e, rt] of seen) touched(rt, e);
  }

  /** Forgets streams idle for an hour (called from the engine's tick). */
  sweep(nowUs: number): void {
    if (nowUs - this.lastSweepUs < 60e6) return;
    this.lastSweepUs = nowUs;
    for (const [k, s] of this.streams) if (nowUs - s.seenUs > 3600e6) this.streams.delete(k);
  }

  /**
   * Point i of the batch as what it adds (values, increase, histogram deltas); updates its
   * cumulative stream's state, so call it once per point. (deploys/ metric checks use it too.)
   */
  delta(b: MetricBatch, i: number): PointDelta {
    const type = b.type[i];
    const cumulative = b.temporality[i] === 2;
    const isHist = type === 'histogram' || type === 'exp_histogram';
    const out: PointDelta = { value: isHist ? NaN : b.value[i], increase: NaN, obsCount: 0, obsSum: 0, obsMin: b.min[i], obsMax: b.max[i] };
    if (type === 'sum') out.counter = true;
    if (type === 'summary') {
      // Quantiles as the SDK computed them (summaries carry no buckets to merge).
      out.quantiles = SUMMARY_TARGETS.map((q) => summaryQuantile(b.detail[i], q) ?? NaN);
      out.quantileWeight = b.count[i];
      return out;
    }
    if (type === 'gauge') return out;
    const hist = isHist ? histogramOf(type, b.detail[i]) : undefined;
    if (!cumulative) {
      out.increase = isHist ? b.count[i] : b.value[i];
      if (isHist) { out.obsCount = b.count[i]; out.obsSum = b.sum[i]; out.bounds = hist?.bounds; out.counts = hist?.counts; }
      return out;
    }
    const key = `${b.name[i]}\u0001${b.resourceAttrs[i]}\u0001${b.attrs[i]}`;
    const prev = this.streams.get(key);
    const cur: StreamState = { startUs: b.startTimeUs[i], value: b.value[i], count: b.count[i], sum: b.sum[i], seenUs: b.timeUs[i] };
    if (hist) cur.buckets = new Map(hist.bounds.map((x, k) => [x, hist.counts[k]]));
    this.streams.set(key, cur);
    const reset = prev !== undefined && (cur.startUs !== prev.startUs || (isHist ? cur.count < prev.count : b.isMonotonic[i] && cur.value < prev.value));
    const full = prev === undefined ? cur.startUs >= this.startUs : reset;
    if (prev === undefined && !full) return out;
    if (!isHist) {
      out.increase = full ? cur.value : cur.value - prev!.value;
      return out;
    }
    out.increase = full ? cur.count : cur.count - prev!.count;
    out.obsCount = out.increase;
    out.obsSum = full ? cur.sum : cur.sum - prev!.sum;
    if (hist) {
      out.bounds = hist.bounds;
      out.counts = full ? hist.counts : hist.bounds.map((x, k) => Math.max(0, hist.counts[k] - (prev!.buckets?.get(x) ?? 0)));
    }
    return out;
  }
}

/** Group ids the current commit made new or regressed (their events follow in the same commit). */
export interface ErrorFlags { newGroups: Set<string>; regressed: Set<string> }

/**
 * One commit's error counts → error rules. new_group / regressed rules see only the groups
 * flagged in this commit (`breach` is called for them); spike rules count every event.
 */
export function feedErrors(
  rts: readonly RuleRuntime[], counts: readonly GroupEventCount[], flags: ErrorFlags, nowMs: number,
  touched: Touched, breach: Touched,
): void {
  // Counted when received: SDK clocks may be off, and a baseline is about arrival rates.
  const second = Math.floor(nowMs / 1000);
  for (const c of counts) {
    const labels = { service: c.service, version: c.release, environment: c.environment, group: c.groupId, title: c.title };
    for (const rt of rts) {
      const spec = rt.rule.spec;
      if (spec.type !== 'error' || !rt.selects(labels)) continue;
      if (spec.event === 'spike') {
        const e = rt.entryFor(labels);
        e.window.add(second, c.count, 0);
        touched(rt, e);
      } else if ((spec.event === 'new_group' ? flags.newGroups : flags.regressed).has(c.groupId)) {
        const e = rt.entryFor(labels);
        e.window.add(second, c.count, 0);
        breach(rt, e);
      }
    }
  }
}
