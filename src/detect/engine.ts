/**
 * DetectEngine: streaming evaluation. Committed rollup deltas go into per-rule series windows
 * and the touched series are evaluated at once (sub-second detection); a 1 s tick evaluates
 * every series for what only time changes (`for`, keep_firing_for, absence, repeats). Alerts
 * move pending → firing → resolved, are written through to the state store and hand their edges
 * to the dispatcher. No database polling: the only reads are at start (rules, alerts, silences,
 * the notification log and a warm-up of the windows from persisted rollups).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../state/index.js';
import type { ErrorEventMap } from '../errors/index.js';
import type { CommittedBatches, RollupSecond, ServiceSummary } from '../telemetry/index.js';
import { alertId, alertLabels, loadOpenAlerts, saveAlert, type Alert } from './alert.js';
import { Dispatcher } from './dispatcher.js';
import { evaluateError, evaluateMetric, evaluateRule, stepLifecycle, type Evaluation } from './evaluate.js';
import { feedErrors, feedLogs, feedSpans, MetricFeed, type ErrorFlags } from './feeds.js';
import { DetectEvents } from './events.js';
import type { NotifiedAlert, SendOptions } from './notifier.js';
import { RuleBook } from './rule-book.js';
import type { RuleRuntime, SeriesEntry } from './rule-set.js';
import type { InhibitRule, Receiver, Rule } from './rules.js';
import { SilenceBook } from './silences.js';
import { metrics } from '../core/metrics.js';
import { detectDb, type DetectDatabase } from './storage.js';

/** What the engine needs from telemetry (DuckDbTelemetryStore provides it). */
export interface DetectSource {
  onCommittedRollups(listener: (rows: RollupSecond[]) => void): () => void;
  services(fromUs: number, toUs: number): Promise<ServiceSummary[]>;
  /** Committed spans, logs and metric points (metric, log and attribute-selected rules). */
  onCommittedBatches?(listener: (c: CommittedBatches) => void): () => void;
  /** Per-operation rollups of a time range, newest first (windows refill after a restart). */
  operationRollups?(level: 'second' | 'minute', fromUs: number, toUs: number, limit: number): Promise<RollupSecond[]>;
}

/** The errors pillar's events (ErrorEvents provides it). */
export interface DetectErrorSource {
  on<K extends keyof ErrorEventMap>(name: K, listener: (payload: ErrorEventMap[K]) => void): () => void;
}

export interface DetectLogger {
  warn(obj: object, msg: string): void;
}

export interface DetectEngineOptions {
  /** The state database (detect migrations applied). */
  db: Kysely<Database>;
  source: DetectSource;
  /** Error group events (error rules); absent = error rules never fire. */
  errors?: DetectErrorSource;
  /** `<data-dir>/rules.yaml`; absent file = no file rules. */
  rulesFile?: string;
  /** Base URL for links in notifications. */
  publicUrl?: () => string;
  nowMs?: () => number;
  /** 0 disables the timer (tests call tick()). Default 1000. */
  tickMs?: number;
  send?: SendOptions;
  logger?: DetectLogger;
  /** How long an expired silence is kept before it is deleted (default SILENCE_RETENTION_MS, 120 h). */
  silenceRetentionMs?: number;
  /** Fencing of the notification log's claims (a cluster; see Dispatcher). */
  fence?: (tx: Kysely<DetectDatabase>) => Promise<void>;
}

/** Expired silences are garbage-collected at most this often (from tick()). */
const SILENCE_GC_EVERY_MS = 60_000;

/** Warm-up reads at most this many rollup rows per resolution (the newest). */
const MAX_WARM_ROWS = 500_000;

export class DetectEngine {
  readonly events = new DetectEvents();
  readonly silences: SilenceBook;
  readonly rules: RuleBook;
  readonly dispatcher: Dispatcher;
  readonly db: Kysely<DetectDatabase>;
  /** Pending and firing alerts by id. */
  private readonly open = new Map<string, Alert>();
  private writes: Promise<void> = Promise.resolve();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly metricFeed: MetricFeed;
  private readonly errorFlags: ErrorFlags = { newGroups: new Set(), regressed: new Set() };
  private timer: NodeJS.Timeout | undefined;
  private readonly nowMs: () => number;
  private lastTick = -Infinity;
  private lastSilenceGc: number;

  constructor(private readonly opts: DetectEngineOptions) {
    this.db = detectDb(opts.db);
    this.nowMs = opts.nowMs ?? Date.now;
    this.metricFeed = new MetricFeed(this.nowMs() * 1000);
    this.silences = new SilenceBook(this.db, this.nowMs, opts.silenceRetentionMs);
    this.lastSilenceGc = this.nowMs();
    this.rules = new RuleBook(this.db, this.nowMs, {
      onRemoved: (id) => this.dropRule(id),
      onSkipped: (id, name, why) => this.opts.logger?.warn({ rule: id, name, why }, 'detect: stored rule no longer valid; not evaluated (fix or delete it through the API)'),
    });
    this.dispatcher = new Dispatcher({
      db: this.db,
      silences: this.silences,
      receivers: () => this.receivers,
      inhibitRules: () => this.inhibitRules,
      firing: () => this.open.values(),
      describe: (a, rule) => this.describe(a, rule),
      nowMs: this.nowMs,
      send: opts.send,
      onError: (err, what) => this.opts.logger?.warn({ err }, `detect: ${what} failed`),
      onDelivered: (e) => this.events.emit('alert.notified', e),
      fence: opts.fence,
    });
  }

  private get receivers(): Receiver[] { return this.rules.file.receivers; }
  /** The receivers of rules.yaml as loaded now (notices from other pillars go to them). */
  get receiverList(): readonly Receiver[] { return this.rules.file.receivers; }
  private get inhibitRules(): InhibitRule[] { return this.rules.file.inhibit_rules; }

  /** Loads rules (a bad rules file throws, naming the line), state and windows; starts listening. */
  async start(): Promise<void> {
    await this.rules.load(this.opts.rulesFile);
    await this.silences.load();
    await this.dispatcher.load();
    for (const a of await loadOpenAlerts(this.db)) {
      const rt = this.rules.set.get(a.ruleId);
      if (!rt) continue;
      this.open.set(a.id, a);
      // Its series exists from the start, so time alone (keep_firing_for, resolve_after) can end it.
      rt.entryForSeries(a.series).alertId = a.id;
      if (a.state === 'firing') this.dispatcher.track(a, rt.rule);
    }
    await this.warm();
    const src = this.opts.source;
    this.unsubscribe.push(src.onCommittedRollups((rows) => this.onDeltas(rows)));
    if (src.onCommittedBatches) this.unsubscribe.push(src.onCommittedBatches((c) => this.onBatches(c)));
    const errors = this.opts.errors;
    if (errors) {
      this.unsubscribe.push(
        errors.on('error.new_group', ({ group }) => { this.errorFlags.newGroups.add(group.id); }),
        errors.on('error.regressed', ({ group }) => { this.errorFlags.regressed.add(group.id); }),
        errors.on('error.events', ({ counts }) => this.onErrorCounts(counts)),
      );
    }
    const tickMs = this.opts.tickMs ?? 1000;
    if (tickMs > 0) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    clearInterval(this.timer);
    await this.writes;
    await this.dispatcher.drain();
  }

  /** Committed deltas: update windows, evaluate exactly the touched series. */
  onDeltas(rows: readonly RollupSecond[]): void {
    const now = this.nowMs();
    this.rules.set.ingest(rows, (rt, e) => {
      e.evaluatedAt = now;
      this.evaluate(rt, e, now);
    });
  }

  /** Committed spans / logs / metric points: feed the rules that read them, evaluate touched series. */
  onBatches(c: CommittedBatches): void {
    const set = this.rules.set;
    if (set.spanRules.length + set.logRules.length + set.metricRules.size === 0) return;
    const now = this.nowMs();
    const touched = (rt: RuleRuntime, e: SeriesEntry): void => { e.evaluatedAt = now; this.evaluate(rt, e, now); };
    if (set.spanRules.length > 0) for (const b of c.spans) feedSpans(set.spanRules, b, touched);
    if (set.logRules.length > 0) for (const b of c.logs) feedLogs(set.logRules, b, touched);
    if (set.metricRules.size > 0) for (const b of c.metrics) this.metricFeed.feed(set.metricRules, b, touched);
  }

  /** One error commit's counts (new / regressed flags were set by the events just before). */
  onErrorCounts(counts: Parameters<typeof feedErrors>[1]): void {
    const now = this.nowMs();
    try {
      const set = this.rules.set;
      if (set.errorRules.length === 0) return;
      feedErrors(set.errorRules, counts, this.errorFlags, now,
        (rt, e) => { e.evaluatedAt = now; this.evaluate(rt, e, now); },
        (rt, e) => { e.evaluatedAt = now; this.evaluate(rt, e, now, { condition: 'breach', value: e.window.totals(Math.floor(now / 1000) - 60, Math.floor(now / 1000) + 1).count }); });
    } finally {
      this.errorFlags.newGroups.clear();
      this.errorFlags.regressed.clear();
    }
  }

  /** Evaluates every series (time-driven transitions), forgets idle series, flushes groups. */
  tick(): void {
    const now = this.nowMs();
    const nowS = Math.floor(now / 1000);
    for (const rt of this.rules.set.all()) {
      const idleAfter = rt.rule.spec.type === 'absence' ? 86_400 : Math.max(rt.needs.seconds, rt.needs.minutes * 60) + 60;
      const absence = rt.rule.spec.type === 'absence';
      for (const [key, e] of rt.series) {
        // Series a delta evaluated since the last tick are current, unless an alert's timers run.
        const fresh = !absence && (e.evaluatedAt ?? -Infinity) > this.lastTick && !this.open.has(e.alertId ?? '');
        if (!fresh) this.evaluate(rt, e, now);
        if (nowS - e.window.lastSeen > idleAfter && !this.open.has(e.alertId ?? '')) rt.series.delete(key);
      }
    }
    this.lastTick = now;
    this.metricFeed.sweep(now * 1000);
    this.dispatcher.tick();
    if (now - this.lastSilenceGc >= SILENCE_GC_EVERY_MS) {
      this.lastSilenceGc = now;
      // On the write chain: stop() waits for it before the state store closes.
      this.writes = this.writes.then(() => this.silences.gc()).then(() => undefined, (err: unknown) => {
        metrics.inc('tightloop_silence_gc_failures_total', 'Deletions of expired silences (state database) that failed.');
        this.opts.logger?.warn({ err }, 'detect: deleting expired silences failed');
      });
    }
  }

  private evaluate(rt: RuleRuntime, e: SeriesEntry, now: number, forced?: Evaluation): void {
    const spec = rt.rule.spec;
    const ev = forced ?? (spec.type === 'metric' ? (e.metric ? evaluateMetric(spec, e.metric, now) : { condition: 'nodata' as const, value: null })
      : spec.type === 'error' ? evaluateError(spec, e.window, now, rt.since) : evaluateRule(spec, e.window, now));
    const id = (e.alertId ??= alertId(rt.rule.id, e.labels));
    const cur = this.open.get(id);
    if (cur === undefined && ev.condition !== 'breach') return;
    const base: Alert = cur ?? {
      id, ruleId: rt.rule.id, ruleName: spec.name, series: e.labels, labels: alertLabels(spec.name, spec.labels, e.labels),
      value: null, values: {}, state: 'resolved', activeAt: now, firedAt: null, resolvedAt: null, lastBreachAt: now,
    };
    const forMs = spec.type === 'threshold' || spec.type === 'metric' || spec.type === 'log' ? spec.for : 0;
    const keepMs = spec.type === 'error' && spec.event !== 'spike' ? spec.resolve_after
      : spec.type === 'slo' || spec.type === 'absence' ? 0 : spec.keep_firing_for;
    const next = stepLifecycle(base, ev.condition, now, forMs, keepMs);
    if (next === null) {
      // Pending that did not last `for`: never fired, so nobody hears of it.
      this.open.delete(id);
      this.persist({ ...base, state: 'resolved', resolvedAt: now }, true, now);
      return;
    }
    const a: Alert = { ...base, ...next, value: ev.value ?? base.value, values: ev.values ?? base.values };
    const changed = cur === undefined || cur.state !== a.state;
    if (a.state === 'resolved') this.open.delete(id);
    else this.open.set(id, a);
    if (!changed) {
      // Values refresh in memory; the row is written on edges only (a write per span batch would
      // cost more than the evaluation).
      return;
    }
    this.persist(a, true, now);
    if (a.state === 'firing') {
      this.events.emit('alert.fired', { alert: this.describe(a, rt.rule), at: new Date(now).toISOString() });
      this.dispatcher.onEdge(a, rt.rule);
    } else if (a.state === 'resolved' && a.firedAt !== null) {
      this.events.emit('alert.resolved', { alert: this.describe(a, rt.rule), at: new Date(now).toISOString() });
      this.dispatcher.onEdge(a, rt.rule);
    }
  }

  /** Serialised write-behind: evaluation never waits for the database. */
  private persist(a: Alert, stateChanged: boolean, now: number): void {
    // Fenced (a cluster): a node that lost the lease writes no alert state (lease_lost, logged).
    this.writes = this.writes.then(() => saveAlert(this.db, a, stateChanged, now, this.opts.fence)).catch((err: unknown) => {
      this.opts.logger?.warn({ err }, 'detect: saving alert failed');
    });
  }

  /** Waits until alert writes issued so far are stored (API reads, tests). */
  flushWrites(): Promise<void> {
    return this.writes;
  }

  private dropRule(id: string): void {
    const now = this.nowMs();
    for (const a of [...this.open.values()]) {
      if (a.ruleId !== id) continue;
      this.open.delete(a.id);
      this.persist({ ...a, state: 'resolved', resolvedAt: now }, true, now);
    }
    this.dispatcher.forget(id);
  }

  describe(a: Alert, rule: Rule): Omit<NotifiedAlert, 'repeat'> {
    const spec = rule.spec;
    const base = this.opts.publicUrl?.() ?? '';
    const threshold = describeThreshold(spec);
    const from = (a.firedAt ?? a.activeAt) - 5 * 60_000;
    const traceQuery = new URLSearchParams({ ...(a.series.service ? { service: a.series.service } : {}),
      ...(a.series.operation ? { operation: a.series.operation } : {}), status: 'error', from: String(from) });
    const links: NotifiedAlert['links'] = { console: `${base}/#/alerts/${a.id}`, traces: `${base}/api/traces?${traceQuery.toString()}` };
    if (a.series.group) links.errors = `${base}/api/errors/${encodeURIComponent(a.series.group)}`;
    else if (spec.type === 'error') links.errors = `${base}/api/errors?${new URLSearchParams(a.series.service ? { service: a.series.service } : {}).toString()}`;
    if (spec.type === 'log') {
      links.logs = `${base}/api/logs?${new URLSearchParams({ ...(a.series.service ? { service: a.series.service } : {}), ...(spec.match.pattern ? { q: spec.match.pattern } : {}), from: String(from) }).toString()}`;
    }
    return {
      id: a.id, status: a.state === 'resolved' ? 'resolved' : 'firing', rule: { id: rule.id, name: spec.name, type: spec.type },
      series: a.series, labels: a.labels, value: a.value, values: a.values, threshold,
      startsAt: new Date(a.firedAt ?? a.activeAt).toISOString(), endsAt: a.resolvedAt === null ? null : new Date(a.resolvedAt).toISOString(),
      links,
    };
  }

  /** Pending and firing alerts in memory (the API reads the store for history). */
  openAlerts(): Alert[] {
    return [...this.open.values()];
  }

  /**
   * Refills the windows of rollup-fed rules from the per-operation rollups persisted (and still
   * buffered) over the span the rules look back, through the same path as live deltas: rules
   * per operation and per service alike evaluate correctly right after a restart. Seconds fill
   * the second rings, minutes the minute rings (SLO windows of hours or days).
   */
  private async warm(): Promise<void> {
    await this.warmAbsence();
    const src = this.opts.source;
    const targets = [...this.rules.set.all()].filter((rt) => rt.feed === 'rollup' && rt.rule.spec.type !== 'absence');
    if (targets.length === 0 || !src.operationRollups) return;
    const nowUs = this.nowMs() * 1000;
    const secS = Math.max(0, ...targets.map((rt) => rt.needs.seconds));
    const mins = Math.max(0, ...targets.map((rt) => rt.needs.minutes));
    const none = (): void => undefined;
    if (secS > 0) this.rules.set.ingest(await src.operationRollups('second', nowUs - secS * 1e6, nowUs + 1e6, MAX_WARM_ROWS), none, 'second');
    if (mins > 0) {
      const fromUs = (Math.floor(nowUs / 60e6) - mins) * 60e6;
      this.rules.set.ingest(await src.operationRollups('minute', fromUs, nowUs + 60e6, MAX_WARM_ROWS), none, 'minute');
    }
  }

  /**
   * Absence rules fanning out per service only learn which services exist from the last day of
   * rollups (finer fan-outs would invent series from the version × environment cross product).
   */
  private async warmAbsence(): Promise<void> {
    const rts = [...this.rules.set.all()].filter((rt) => rt.rule.spec.type === 'absence' && rt.rule.spec.by.every((l) => l === 'service'));
    if (rts.length === 0) return;
    const nowUs = this.nowMs() * 1000;
    for (const svc of await this.opts.source.services(nowUs - 86_400e6, nowUs)) {
      const labels = { service: svc.service, operation: '', version: '', environment: '' };
      for (const rt of rts) {
        if (!rt.selects({ ...labels, version: rt.rule.spec.select.version ?? '', environment: rt.rule.spec.select.environment ?? '', operation: rt.rule.spec.select.operation ?? '' })) continue;
        const e = rt.entryFor(labels);
        e.window.lastSeen = Math.max(e.window.lastSeen, Math.floor(svc.lastSeenUs / 1e6));
      }
    }
  }
}

/** What a notification says about the rule's condition. */
function describeThreshold(spec: Rule['spec']): Record<string, unknown> {
  switch (spec.type) {
    case 'threshold':
      return { signal: spec.signal, op: spec.op, threshold: spec.threshold, windowMs: spec.window, forMs: spec.for, nOfM: spec.n_of_m ?? null, keepFiringForMs: spec.keep_firing_for };
    case 'metric':
      return { metric: spec.metric, agg: spec.agg, op: spec.op, threshold: spec.threshold, windowMs: spec.window, forMs: spec.for, nOfM: spec.n_of_m ?? null, keepFiringForMs: spec.keep_firing_for };
    case 'log':
      return { match: spec.match, signal: spec.signal, op: spec.op, threshold: spec.threshold, windowMs: spec.window, forMs: spec.for, nOfM: spec.n_of_m ?? null, keepFiringForMs: spec.keep_firing_for };
    case 'error':
      return spec.event === 'spike'
        ? { event: spec.event, factor: spec.factor, windowMs: spec.window, baselineMs: spec.baseline, minCount: spec.min_count, keepFiringForMs: spec.keep_firing_for }
        : { event: spec.event, resolveAfterMs: spec.resolve_after };
    case 'slo':
      return { objective: spec.objective, periodMs: spec.period, minEvents: spec.min_events };
    case 'absence':
      return { absentForMs: spec.for };
  }
}
