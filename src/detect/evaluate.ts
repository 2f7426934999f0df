/**
 * Rule conditions over a SeriesWindow, and the per-alert lifecycle step. A condition is
 * 'breach', 'ok' or 'nodata': missing data neither fires nor resolves (a restart or a quiet
 * minute must not resolve an alert; absence rules exist for silence).
 */
import { evaluateBurnWindows } from './burn-rate.js';
import type { MetricWindow } from './metric-window.js';
import { sloWindows, type ErrorRule, type LogRule, type MetricRule, type RuleSpec, type SloRule, type ThresholdRule } from './rules.js';
import type { SeriesWindow } from './window.js';

export type Condition = 'breach' | 'ok' | 'nodata';

export interface Evaluation {
  condition: Condition;
  /** The figure the rule compares (latest window), null without data. */
  value: number | null;
  /** Extra figures for notifications (burn rates per window, ...). */
  values?: Record<string, number>;
}

const QUANTILE: Record<string, number> = { p50_ms: 0.5, p95_ms: 0.95, p99_ms: 0.99 };

function compare(op: ThresholdRule['op'], v: number, t: number): boolean {
  switch (op) {
    case '>': return v > t;
    case '>=': return v >= t;
    case '<': return v < t;
    case '<=': return v <= t;
  }
}

/** The signal over seconds [from, to); null when the window holds fewer than min_count requests. */
function signalValue(r: ThresholdRule, w: SeriesWindow, from: number, to: number): number | null {
  const t = w.totals(from, to);
  if (r.signal === 'rate') return t.count / (to - from);
  if (t.count < Math.max(1, r.min_count)) return null;
  if (r.signal === 'error_rate') return t.errors / t.count;
  return w.quantileMs(from, to, QUANTILE[r.signal]);
}

/**
 * Threshold: the window ending with the current (partial) second — evaluating as spans commit is
 * what makes detection sub-second. With n_of_m, the last m back-to-back windows are judged and
 * at least n must breach (a single noisy window neither fires nor resolves).
 */
export function evaluateThreshold(r: ThresholdRule, w: SeriesWindow, nowMs: number): Evaluation {
  return judge(r, nowMs, (from, to) => signalValue(r, w, from, to));
}

type Judged = Pick<ThresholdRule, 'op' | 'threshold' | 'window' | 'n_of_m'>;

/** The n-of-m threshold judgement over back-to-back windows ending now; `valueOf` reads seconds [from, to). */
function judge(r: Judged, nowMs: number, valueOf: (from: number, to: number) => number | null): Evaluation {
  const end = Math.floor(nowMs / 1000) + 1;
  const len = Math.max(1, Math.round(r.window / 1000));
  const m = r.n_of_m?.m ?? 1;
  const n = r.n_of_m?.n ?? 1;
  let breaches = 0, withData = 0;
  let latest: number | null = null;
  for (let i = 0; i < m; i++) {
    const v = valueOf(end - (i + 1) * len, end - i * len);
    if (i === 0) latest = v;
    if (v === null) continue;
    withData++;
    if (compare(r.op, v, r.threshold)) breaches++;
  }
  if (withData === 0) return { condition: 'nodata', value: null };
  return { condition: breaches >= n ? 'breach' : 'ok', value: latest };
}

export function evaluateSlo(r: SloRule, w: SeriesWindow, nowMs: number): Evaluation {
  const endMin = Math.floor(nowMs / 60_000) + 1;
  const endSec = Math.floor(nowMs / 1000) + 1;
  // Windows up to the seconds ring use seconds (exact); longer ones use minute buckets.
  const totals = (ms: number): { count: number; errors: number } => {
    const s = Math.round(ms / 1000);
    return s <= w.seconds ? w.totals(endSec - s, endSec) : w.minuteTotals(endMin - Math.round(ms / 60_000), endMin);
  };
  const windows = sloWindows(r);
  const rows = evaluateBurnWindows(windows, totals, r.objective, r.min_events);
  const values: Record<string, number> = {};
  for (const row of rows) {
    values[`burn_${row.severity}_${row.factor}_long`] = row.longBurn;
    values[`burn_${row.severity}_${row.factor}_short`] = row.shortBurn;
  }
  const hit = rows.find((x) => x.breached);
  const anyData = totals(Math.max(...windows.map((x) => x.long))).count > 0;
  if (!anyData) return { condition: 'nodata', value: null, values };
  return { condition: hit ? 'breach' : 'ok', value: hit ? hit.shortBurn : rows[0].longBurn, values };
}

/** A metric aggregate over the window (see MetricWindow.aggregate). */
export function evaluateMetric(r: MetricRule, w: MetricWindow, nowMs: number): Evaluation {
  return judge(r, nowMs, (from, to) => w.aggregate(r.agg, from, to));
}

/** Matching log records per window (count) or per second (rate); no record is 0, not "no data". */
export function evaluateLog(r: LogRule, w: SeriesWindow, nowMs: number): Evaluation {
  return judge(r, nowMs, (from, to) => {
    const c = w.totals(from, to).count;
    return r.signal === 'rate' ? c / (to - from) : c;
  });
}

/**
 * Error rules between events. new_group / regressed breach only when their event arrives (the
 * feed says so); afterwards they are 'ok' and resolve after `resolve_after` (their
 * keep_firing_for). spike: events in the window against the group's own rate over the baseline
 * before it, counted over the time the rule has actually watched (after a restart or for a new
 * rule the baseline is the watched time, and nothing is judged before two windows were seen);
 * an empty baseline counts as one event, so a handful of first errors is not a spike.
 */
export function evaluateError(r: ErrorRule, w: SeriesWindow, nowMs: number, sinceMs: number): Evaluation {
  if (r.event !== 'spike') return { condition: 'ok', value: w.totals(Math.floor(nowMs / 1000) - 60, Math.floor(nowMs / 1000) + 1).count };
  const winS = Math.max(1, Math.round(r.window / 1000));
  const endS = Math.floor(nowMs / 1000) + 1;
  const current = w.totals(endS - winS, endS).count;
  const watchedS = Math.floor((nowMs - sinceMs) / 1000);
  if (watchedS < 2 * winS) return { condition: 'nodata', value: null };
  const wantS = Math.max(1, Math.round(r.baseline / 1000));
  let baseCount: number, baseS: number;
  if (w.seconds > winS + wantS) {
    // Short baselines are kept per second: exact.
    baseS = Math.min(wantS, watchedS - winS);
    baseCount = w.totals(endS - winS - baseS, endS - winS).count;
  } else {
    // Long ones per minute: the whole minutes before the window's first minute.
    const startMin = Math.floor((endS - winS) / 60);
    const baseMin = Math.max(1, Math.min(Math.round(wantS / 60), Math.floor((watchedS - winS) / 60)));
    baseS = baseMin * 60;
    baseCount = w.minuteTotals(startMin - baseMin, startMin).count;
  }
  const baseRate = Math.max(baseCount, 1) / baseS;
  const ratio = current / winS / baseRate;
  const values = { count: current, baseline_per_min: baseCount / baseS * 60, ratio };
  return { condition: current >= r.min_count && ratio > r.factor ? 'breach' : 'ok', value: ratio, values };
}

export function evaluateRule(spec: RuleSpec, w: SeriesWindow, nowMs: number): Evaluation {
  if (spec.type === 'threshold') return evaluateThreshold(spec, w, nowMs);
  if (spec.type === 'slo') return evaluateSlo(spec, w, nowMs);
  if (spec.type === 'log') return evaluateLog(spec, w, nowMs);
  if (spec.type === 'metric' || spec.type === 'error') throw new Error(`${spec.type} rules are evaluated with evaluateMetric / evaluateError`);
  const silentS = nowMs / 1000 - (w.lastSeen + 1);
  return { condition: silentS * 1000 >= spec.for ? 'breach' : 'ok', value: Math.max(0, Math.round(silentS)) };
}

/** How much history a rule needs, in seconds and minutes, and whether it reads percentiles. */
export function windowNeeds(spec: RuleSpec): { seconds: number; minutes: number; bins: boolean } {
  if (spec.type === 'threshold') {
    return { seconds: Math.round(spec.window / 1000) * (spec.n_of_m?.m ?? 1) + 1, minutes: 0, bins: spec.signal.endsWith('_ms') };
  }
  if (spec.type === 'slo') {
    const ws = sloWindows(spec);
    const shortest = Math.min(...ws.map((x) => x.short));
    return { seconds: Math.min(3600, Math.round(shortest / 1000)) + 1, minutes: Math.round(Math.max(...ws.map((x) => x.long)) / 60_000) + 1, bins: false };
  }
  if (spec.type === 'metric' || spec.type === 'log') {
    return { seconds: Math.round(spec.window / 1000) * (spec.n_of_m?.m ?? 1) + 1, minutes: 0, bins: false };
  }
  if (spec.type === 'error') {
    if (spec.event !== 'spike') return { seconds: 61, minutes: 0, bins: false };
    // Baselines up to 10 minutes per second (exact), longer ones per minute.
    const span = Math.round((spec.baseline + spec.window) / 1000);
    if (span <= 600) return { seconds: span + 2, minutes: 0, bins: false };
    return { seconds: Math.round(spec.window / 1000) + 1, minutes: Math.ceil((spec.baseline + spec.window) / 60_000) + 2, bins: false };
  }
  return { seconds: 0, minutes: 0, bins: false };
}

export type AlertState = 'pending' | 'firing' | 'resolved';

/** The part of an alert the lifecycle moves. */
export interface LifecycleState {
  state: AlertState;
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
  lastBreachAt: number;
}

/**
 * One lifecycle step: pending after the first breach, firing once it has lasted `for`, resolved
 * once healthy for `keep_firing_for` (hysteresis). Returns the new state, or null when an
 * inactive (pending, not yet fired) alert is dropped.
 */
export function stepLifecycle(
  s: LifecycleState, condition: Condition, nowMs: number, forMs: number, keepFiringMs: number,
): LifecycleState | null {
  if (condition === 'nodata') return s;
  if (condition === 'breach') {
    const next = { ...s, lastBreachAt: nowMs };
    if (s.state === 'resolved') return { state: forMs === 0 ? 'firing' : 'pending', activeAt: nowMs, firedAt: forMs === 0 ? nowMs : null, resolvedAt: null, lastBreachAt: nowMs };
    if (s.state === 'pending' && nowMs - s.activeAt >= forMs) return { ...next, state: 'firing', firedAt: nowMs };
    return next;
  }
  if (s.state === 'pending') return null;
  if (s.state === 'firing' && nowMs - s.lastBreachAt >= keepFiringMs) return { ...s, state: 'resolved', resolvedAt: nowMs };
  return s;
}
