/**
 * RuleSet: the rules in force and, per rule, its series (windows). Rules are routed by what
 * feeds them: RED rules on the plain labels read committed rollup deltas, indexed by the service
 * they select (the cost per delta row is the number of rules for its service, not the number of
 * rules); RED rules that select or fan out by attributes read committed spans; metric rules
 * (indexed by metric name) read committed metric points; log rules read committed log records;
 * error rules read the errors pillar's events. See feeds.ts for the non-rollup feeds.
 */
import type { RollupSecond } from '../telemetry/index.js';
import { windowNeeds } from './evaluate.js';
import { MetricWindow } from './metric-window.js';
import { ATTR_PREFIX, SERIES_LABELS, type Rule, type SeriesLabel } from './rules.js';
import { SeriesWindow, type Bins } from './window.js';

export interface SeriesEntry {
  key: string;
  labels: Record<string, string>;
  window: SeriesWindow;
  /** Metric rules: the points of the window. */
  metric?: MetricWindow;
  /** Fingerprint of rule + series, computed once. */
  alertId?: string;
  /** When a delta last triggered an evaluation (ms); the tick skips series evaluated since its last run. */
  evaluatedAt?: number;
}

/** Where a rule's data comes from. */
export type RuleFeed = 'rollup' | 'span' | 'metric' | 'log' | 'error';

/** An attribute of the current record (record attributes first, then the resource's). */
export type AttrLookup = (key: string) => string | undefined;

export function feedOf(rule: Rule): RuleFeed {
  const spec = rule.spec;
  if (spec.type === 'metric' || spec.type === 'log' || spec.type === 'error') return spec.type;
  const attrs = spec.select.attributes !== undefined || spec.by.some((l) => l.startsWith(ATTR_PREFIX));
  return attrs ? 'span' : 'rollup';
}

export class RuleRuntime {
  readonly series = new Map<string, SeriesEntry>();
  readonly needs: { seconds: number; minutes: number; bins: boolean };
  readonly feed: RuleFeed;
  /** When the rule started watching (ms): spike baselines only count time it has seen. */
  readonly since: number;
  private readonly selectPairs: Array<[string, string]>;
  private readonly attrPairs: Array<[string, string]>;
  /** Series label names, in key order; `attrKeys[i]` is the attribute behind label i, if any. */
  private readonly by: string[];
  private readonly attrKeys: Array<string | undefined>;
  private readonly hasAttrBy: boolean;

  constructor(readonly rule: Rule, nowMs = Date.now()) {
    this.needs = windowNeeds(rule.spec);
    this.feed = feedOf(rule);
    this.since = nowMs;
    const sel = rule.spec.select as Partial<Record<SeriesLabel, string>> & { attributes?: Record<string, string> };
    this.selectPairs = SERIES_LABELS.flatMap((l): Array<[string, string]> => (sel[l] === undefined ? [] : [[l, sel[l]]]));
    this.attrPairs = Object.entries(sel.attributes ?? {});
    // Plain labels first in their canonical order, then attribute labels as written.
    const by = rule.spec.by as string[];
    const plain = [...SERIES_LABELS, 'group', 'title'].filter((l) => by.includes(l));
    const attrs = by.filter((l) => l.startsWith(ATTR_PREFIX)).map((l) => l.slice(ATTR_PREFIX.length));
    this.by = [...plain, ...attrs];
    this.attrKeys = [...plain.map(() => undefined), ...attrs];
    this.hasAttrBy = attrs.length > 0;
  }

  /** True when the rule reads per-operation series. */
  get perOperation(): boolean {
    return this.by.includes('operation') || this.selectPairs.some(([l]) => l === 'operation');
  }

  /** Attribute selectors, if any (feeds skip the attribute lookup without them). */
  get needsAttrs(): boolean {
    return this.attrPairs.length > 0 || this.hasAttrBy;
  }

  selects(labels: Record<string, string>): boolean {
    for (const [l, v] of this.selectPairs) if (labels[l] !== v) return false;
    return true;
  }

  selectsAttrs(attr: AttrLookup): boolean {
    for (const [k, v] of this.attrPairs) if (attr(k) !== v) return false;
    return true;
  }

  /** The series a record belongs to (created on first sight). */
  entryFor(labels: Record<string, string>, attr?: AttrLookup): SeriesEntry {
    let key = '';
    if (!this.hasAttrBy) {
      for (const l of this.by) key += `${labels[l]}\u0001`;
    } else {
      for (let i = 0; i < this.by.length; i++) {
        const k = this.attrKeys[i];
        key += `${k === undefined ? labels[this.by[i]] : attr?.(k) ?? ''}\u0001`;
      }
    }
    let e = this.series.get(key);
    if (!e) {
      const picked: Record<string, string> = {};
      for (let i = 0; i < this.by.length; i++) {
        const k = this.attrKeys[i];
        picked[this.by[i]] = k === undefined ? labels[this.by[i]] ?? '' : attr?.(k) ?? '';
      }
      e = this.newEntry(key, picked);
    }
    return e;
  }

  /** The entry of an alert's series (restoring open alerts after a restart). */
  entryForSeries(series: Record<string, string>): SeriesEntry {
    let key = '';
    for (const l of this.by) key += `${series[l] ?? ''}\u0001`;
    return this.series.get(key) ?? this.newEntry(key, { ...series });
  }

  private newEntry(key: string, labels: Record<string, string>): SeriesEntry {
    const e: SeriesEntry = { key, labels, window: new SeriesWindow(this.needs.seconds, this.needs.minutes, this.needs.bins) };
    if (this.rule.spec.type === 'metric') e.metric = new MetricWindow(this.needs.seconds);
    this.series.set(key, e);
    return e;
  }
}

export class RuleSet {
  private readonly byId = new Map<string, RuleRuntime>();
  private readonly byService = new Map<string, RuleRuntime[]>();
  private anyService: RuleRuntime[] = [];
  /** Non-rollup feeds. */
  spanRules: RuleRuntime[] = [];
  logRules: RuleRuntime[] = [];
  errorRules: RuleRuntime[] = [];
  readonly metricRules = new Map<string, RuleRuntime[]>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  get size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<RuleRuntime> {
    return this.byId.values();
  }

  get(id: string): RuleRuntime | undefined {
    return this.byId.get(id);
  }

  /** Adds or replaces a rule (a replaced rule starts with empty windows). */
  put(rule: Rule): RuleRuntime {
    this.remove(rule.id);
    const rt = new RuleRuntime(rule, this.nowMs());
    this.byId.set(rule.id, rt);
    const spec = rule.spec;
    switch (rt.feed) {
      case 'rollup': {
        const svc = spec.select.service;
        if (svc === undefined) this.anyService.push(rt);
        else this.byService.set(svc, [...(this.byService.get(svc) ?? []), rt]);
        break;
      }
      case 'span': this.spanRules = [...this.spanRules, rt]; break;
      case 'log': this.logRules = [...this.logRules, rt]; break;
      case 'error': this.errorRules = [...this.errorRules, rt]; break;
      case 'metric': {
        const name = spec.type === 'metric' ? spec.metric : '';
        this.metricRules.set(name, [...(this.metricRules.get(name) ?? []), rt]);
        break;
      }
    }
    return rt;
  }

  remove(id: string): void {
    const rt = this.byId.get(id);
    if (!rt) return;
    this.byId.delete(id);
    const without = (list: RuleRuntime[]): RuleRuntime[] => list.filter((r) => r !== rt);
    this.anyService = without(this.anyService);
    this.spanRules = without(this.spanRules);
    this.logRules = without(this.logRules);
    this.errorRules = without(this.errorRules);
    const spec = rt.rule.spec;
    const svc = spec.select.service;
    if (rt.feed === 'rollup' && svc !== undefined) {
      const left = without(this.byService.get(svc) ?? []);
      if (left.length === 0) this.byService.delete(svc);
      else this.byService.set(svc, left);
    }
    if (spec.type === 'metric') {
      const left = without(this.metricRules.get(spec.metric) ?? []);
      if (left.length === 0) this.metricRules.delete(spec.metric);
      else this.metricRules.set(spec.metric, left);
    }
  }

  /** True when some rule reads rollups (warm-up can skip the read otherwise). */
  get hasRollupRules(): boolean {
    return this.anyService.length > 0 || this.byService.size > 0;
  }

  /**
   * Adds committed deltas to every matching series; calls `touched` once per (rule, series).
   * `level: 'minute'` adds whole minutes to the minute rings only and `'second'` seconds to the
   * second rings only (warm-up reads both resolutions); the default feeds both.
   */
  ingest(rows: readonly RollupSecond[], touched: (rt: RuleRuntime, e: SeriesEntry) => void, level?: 'second' | 'minute'): void {
    // Judged once the whole batch is in: a series that sums several rows (an SLO per service
    // over its operations) must not be evaluated on the first of them alone.
    const seen = new Map<SeriesEntry, RuleRuntime>();
    for (const row of rows) {
      const labels = { service: row.service, operation: row.operation, version: row.version, environment: row.environment };
      const candidates = this.byService.get(row.service);
      if (candidates) this.feed(candidates, labels, row, seen, level);
      if (this.anyService.length > 0) this.feed(this.anyService, labels, row, seen, level);
    }
    for (const [e, rt] of seen) touched(rt, e);
  }

  private feed(
    rts: readonly RuleRuntime[], labels: Record<SeriesLabel, string>, row: RollupSecond,
    seen: Map<SeriesEntry, RuleRuntime>, level: 'second' | 'minute' | undefined,
  ): void {
    let bins: Bins | undefined;
    const second = Math.floor(row.second / 1_000_000);
    for (const rt of rts) {
      if (!rt.selects(labels)) continue;
      const e = rt.entryFor(labels);
      if (level === 'minute') {
        e.window.addMinute(Math.floor(second / 60), row.count, row.errors);
        e.window.lastSeen = Math.max(e.window.lastSeen, second);
      } else {
        if (rt.needs.bins && bins === undefined) bins = row.sketch.toBins();
        e.window.add(second, row.count, row.errors, rt.needs.bins ? bins : undefined, level === undefined);
      }
      if (!seen.has(e)) seen.set(e, rt);
    }
  }
}
