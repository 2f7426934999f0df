/**
 * RuleSet: the rules in force and, per rule, its series (windows) — fed by rollup deltas.
 * Rules are indexed by the service they select, so a delta only visits rules that can match it:
 * the cost per delta row is the number of rules for its service, not the number of rules.
 */
import type { RollupSecond } from '../telemetry/index.js';
import { windowNeeds } from './evaluate.js';
import { SERIES_LABELS, type Rule, type SeriesLabel } from './rules.js';
import { SeriesWindow, type Bins } from './window.js';

export interface SeriesEntry {
  key: string;
  labels: Record<string, string>;
  window: SeriesWindow;
  /** Fingerprint of rule + series, computed once. */
  alertId?: string;
  /** When a delta last triggered an evaluation (ms); the tick skips series evaluated since its last run. */
  evaluatedAt?: number;
}

export class RuleRuntime {
  readonly series = new Map<string, SeriesEntry>();
  readonly needs: { seconds: number; minutes: number; bins: boolean };
  private readonly selectPairs: Array<[SeriesLabel, string]>;
  private readonly by: readonly SeriesLabel[];

  constructor(readonly rule: Rule) {
    this.needs = windowNeeds(rule.spec);
    const sel = rule.spec.select;
    this.selectPairs = SERIES_LABELS.flatMap((l): Array<[SeriesLabel, string]> => (sel[l] === undefined ? [] : [[l, sel[l]]]));
    this.by = SERIES_LABELS.filter((l) => rule.spec.by.includes(l));
  }

  /** True when the rule reads per-operation series (warm-up from service-level rollups cannot serve it). */
  get perOperation(): boolean {
    return this.by.includes('operation') || this.rule.spec.select.operation !== undefined;
  }

  selects(labels: Record<SeriesLabel, string>): boolean {
    for (const [l, v] of this.selectPairs) if (labels[l] !== v) return false;
    return true;
  }

  /** The series a row belongs to (created on first sight). */
  entryFor(labels: Record<SeriesLabel, string>): SeriesEntry {
    let key = '';
    for (const l of this.by) key += `${labels[l]}\u0001`;
    let e = this.series.get(key);
    if (!e) {
      const picked: Record<string, string> = {};
      for (const l of this.by) picked[l] = labels[l];
      e = { key, labels: picked, window: new SeriesWindow(this.needs.seconds, this.needs.minutes, this.needs.bins) };
      this.series.set(key, e);
    }
    return e;
  }
}

export class RuleSet {
  private readonly byId = new Map<string, RuleRuntime>();
  private readonly byService = new Map<string, RuleRuntime[]>();
  private anyService: RuleRuntime[] = [];

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
    const rt = new RuleRuntime(rule);
    this.byId.set(rule.id, rt);
    const svc = rule.spec.select.service;
    if (svc === undefined) this.anyService.push(rt);
    else this.byService.set(svc, [...(this.byService.get(svc) ?? []), rt]);
    return rt;
  }

  remove(id: string): void {
    const rt = this.byId.get(id);
    if (!rt) return;
    this.byId.delete(id);
    this.anyService = this.anyService.filter((r) => r !== rt);
    const svc = rt.rule.spec.select.service;
    if (svc !== undefined) {
      const left = (this.byService.get(svc) ?? []).filter((r) => r !== rt);
      if (left.length === 0) this.byService.delete(svc);
      else this.byService.set(svc, left);
    }
  }

  /** Adds committed deltas to every matching series; calls `touched` once per (rule, series). */
  ingest(rows: readonly RollupSecond[], touched: (rt: RuleRuntime, e: SeriesEntry) => void): void {
    const seen = new Set<SeriesEntry>();
    for (const row of rows) {
      const labels = { service: row.service, operation: row.operation, version: row.version, environment: row.environment };
      const second = Math.floor(row.second / 1_000_000);
      const candidates = this.byService.get(row.service);
      if (candidates) this.feed(candidates, labels, second, row, seen, touched);
      if (this.anyService.length > 0) this.feed(this.anyService, labels, second, row, seen, touched);
    }
  }

  private feed(
    rts: readonly RuleRuntime[], labels: Record<SeriesLabel, string>, second: number, row: RollupSecond,
    seen: Set<SeriesEntry>, touched: (rt: RuleRuntime, e: SeriesEntry) => void,
  ): void {
    let bins: Bins | undefined;
    for (const rt of rts) {
      if (!rt.selects(labels)) continue;
      const e = rt.entryFor(labels);
      if (rt.needs.bins && bins === undefined) bins = row.sketch.toBins();
      e.window.add(second, row.count, row.errors, rt.needs.bins ? bins : undefined);
      if (!seen.has(e)) { seen.add(e); touched(rt, e); }
    }
  }
}
