/**
 * IncidentService: the incident lifecycle. Firing alerts and failed verdicts open an incident or
 * join the open one of the same service and environment (within `windowMs` of its last
 * activity); people acknowledge, assign and resolve; an incident resolves by itself once its
 * alerts have resolved and the latest fix deploy of each affected service passed verification.
 *
 * Inputs are events (detect, deploys, errors), never other pillars' tables. Handlers run one at a
 * time on a queue, so two alerts arriving together cannot open two incidents, and a failing
 * handler is logged, never thrown into the emitter.
 */
import type { Kysely, Transaction } from 'kysely';
import { ulid } from 'ulid';
import { AppError, notFound } from '../core/app-error.js';
import type { Deploy, DeployApi, DeployEventMap } from '../deploys/contract.js';
import type { AlertEvent, DetectEvents, NotifiedEvent } from '../detect/index.js';
import type { ErrorEvents, ErrorGroup } from '../errors/index.js';
import type { Database } from '../state/index.js';
import type { RedBucket, RedQuery, TraceQuery, TraceSummary } from '../telemetry/index.js';
import { parseAssignee, parseNote, parseResolveNote, parseStatusFilter } from './inputs.js';
import type { Incident, IncidentStatus } from './model.js';
import { backToBaseline, firstBadOfVersion, firstBadSignal, signalOf, type SignalName } from './signal.js';
import { incidentsDb, type IncidentAlertsTable, type IncidentsDatabase, type IncidentsTable } from './storage.js';

/** What incidents read from telemetry (DuckDbTelemetryStore provides it). */
export interface IncidentTelemetry {
  red(q: RedQuery): Promise<RedBucket[]>;
  searchTraces(q: TraceQuery): Promise<TraceSummary[]>;
}

export interface IncidentServiceOptions {
  db: Kysely<Database>;
  telemetry: IncidentTelemetry;
  detectEvents: DetectEvents;
  errorEvents?: ErrorEvents;
  /** Join an open incident of the same service/environment active within this long (default 30 min). */
  windowMs?: number;
  /** How far before an alert the first bad signal is looked for (default 15 min). */
  lookbackMs?: number;
  nowMs?: () => number;
  log?: { warn(obj: object, msg: string): void };
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** An incident without an environment (its alerts had none) spans them all. */
export const envOf = (e: string): string | undefined => (e === '' ? undefined : e);
const ms = (t: string | null): number | null => (t === null ? null : Date.parse(t));

/** Bucket width for a range: one-second rollups up to 3 h, coarser beyond (at most 10,800 buckets). */
export function stepFor(rangeMs: number): number {
  return Math.max(1, Math.ceil(rangeMs / 1000 / 10_800));
}

function toView(r: IncidentsTable, alerts: IncidentAlertsTable[]): Incident {
  return {
    id: r.id, title: r.title, service: r.service, environment: r.environment, status: r.status as IncidentStatus, signal: r.signal,
    openedAt: r.opened_at, detectedAt: r.detected_at, firstBadAt: r.first_bad_at, firstBadSource: r.first_bad_source as Incident['firstBadSource'],
    recoveredAt: r.recovered_at, acknowledgedAt: r.acknowledged_at, acknowledgedBy: r.acknowledged_by, assignee: r.assignee,
    resolvedAt: r.resolved_at, resolvedBy: r.resolved_by, resolution: r.resolution as Incident['resolution'], suspectDeployId: r.suspect_deploy_id,
    recoveredUnverified: r.status !== 'resolved' && r.recovery_state === 'unverified',
    alerts: alerts.map((a) => ({ id: a.alert_id, rule: a.rule_name, state: a.state as 'firing' | 'resolved', firedAt: a.fired_at, resolvedAt: a.resolved_at })),
  };
}

/** Delays after which a failed deploy's first bad request is read again while its spans have not arrived. */
const RELOCATE_AFTER_MS = [1_000, 2_000, 5_000, 10_000] as const;

export class IncidentService {
  readonly db: Kysely<IncidentsDatabase>;
  private deploys: DeployApi | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly offs: Array<() => void> = [];
  private readonly windowMs: number;
  readonly lookbackMs: number;
  private readonly now: () => number;
  /** Pending re-reads of a failed deploy's first bad request (telemetry still arriving). */
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: IncidentServiceOptions) {
    this.db = incidentsDb(opts.db);
    this.windowMs = opts.windowMs ?? 30 * 60_000;
    this.lookbackMs = opts.lookbackMs ?? 15 * 60_000;
    this.now = opts.nowMs ?? Date.now;
  }

  get deployApi(): DeployApi | undefined { return this.deploys; }

  start(): void {
    const ev = this.opts.detectEvents;
    const fired = (e: AlertEvent): void => this.run('alert.fired', () => this.onFired(e));
    const resolved = (e: AlertEvent): void => this.run('alert.resolved', () => this.onAlertResolved(e));
    const notified = (e: NotifiedEvent): void => this.run('alert.notified', () => this.onNotified(e));
    ev.on('alert.fired', fired);
    ev.on('alert.resolved', resolved);
    ev.on('alert.notified', notified);
    this.offs.push(() => { ev.off('alert.fired', fired); ev.off('alert.resolved', resolved); ev.off('alert.notified', notified); });
    if (this.opts.errorEvents !== undefined) {
      const errs = this.opts.errorEvents;
      this.offs.push(errs.on('error.new_group', ({ group }) => this.run('error group', () => this.onErrorGroup(group, 'new'))));
      this.offs.push(errs.on('error.regressed', ({ group }) => this.run('error group', () => this.onErrorGroup(group, 'regressed'))));
    }
  }

  /** Subscribes to the deploys pillar (it may start after incidents). */
  attachDeploys(api: DeployApi): void {
    this.deploys = api;
    const verdict = (e: DeployEventMap['deploy.verdict'][0]): void => this.run('deploy.verdict', () => this.onVerdict(e));
    const status = (e: DeployEventMap['deploy.status'][0]): void => this.run('deploy.status', () => this.recheck(e.deploy.service, e.deploy.environment));
    api.events.on('deploy.verdict', verdict);
    api.events.on('deploy.status', status);
    this.offs.push(() => { api.events.off('deploy.verdict', verdict); api.events.off('deploy.status', status); });
  }

  async stop(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.queue;
  }

  /** Waits for event handling queued so far (API reads, tests). */
  idle(): Promise<void> { return this.queue; }

  private run(what: string, job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch((err: unknown) => this.opts.log?.warn({ err }, `incidents: ${what} failed`));
  }

  // ---- reading ----

  async list(f: { status?: string; service?: string; limit?: number } = {}): Promise<Incident[]> {
    let q = this.db.selectFrom('incidents').selectAll().orderBy('detected_at', 'desc').limit(f.limit ?? 100);
    const status = parseStatusFilter(f.status);
    if (status !== undefined && status !== 'all') q = q.where('status', '=', status);
    if (f.service !== undefined) q = q.where('service', '=', f.service);
    return this.views(await q.execute());
  }

  /** Views of many rows with one query for their alerts. */
  async views(rows: IncidentsTable[]): Promise<Incident[]> {
    if (rows.length === 0) return [];
    const alerts = await this.db.selectFrom('incident_alerts').selectAll().where('incident_id', 'in', rows.map((r) => r.id)).orderBy('fired_at').execute();
    return rows.map((r) => toView(r, alerts.filter((a) => a.incident_id === r.id)));
  }

  async get(id: string): Promise<Incident> {
    return this.view(await this.row(id));
  }

  async row(id: string): Promise<IncidentsTable> {
    const r = await this.db.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined) throw notFound(`incident ${id} not found`);
    return r;
  }

  async view(r: IncidentsTable): Promise<Incident> {
    return (await this.views([r]))[0];
  }

  async events(id: string): Promise<Array<{ at: string; kind: string; actor: string | null; ref: string | null; data: Record<string, unknown> }>> {
    const rows = await this.db.selectFrom('incident_events').selectAll().where('incident_id', '=', id).orderBy('id').execute();
    return rows.map((r) => ({ at: r.at, kind: r.kind, actor: r.actor, ref: r.ref, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  // ---- people ----

  async acknowledge(id: string, actor: string): Promise<Incident> {
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw new AppError('conflict', 409, `incident ${id} is resolved`);
    if (r.acknowledged_at === null) {
      const at = iso(this.now());
      await this.db.transaction().execute(async (tx) => {
        await tx.updateTable('incidents').set({ status: 'acknowledged', acknowledged_at: at, acknowledged_by: actor, updated_at: at }).where('id', '=', id).execute();
        await this.event(tx, id, at, 'acknowledged', actor, null, {});
      });
    }
    return this.get(id);
  }

  async assign(id: string, assigneeIn: string, actor: string): Promise<Incident> {
    const assignee = parseAssignee(assigneeIn);
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw new AppError('conflict', 409, `incident ${id} is resolved`);
    const at = iso(this.now());
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('incidents').set({ assignee, updated_at: at }).where('id', '=', id).execute();
      await this.event(tx, id, at, 'assigned', actor, null, { assignee });
    });
    return this.get(id);
  }

  async resolve(id: string, actor: string, noteIn?: string): Promise<Incident> {
    const note = parseResolveNote(noteIn);
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw new AppError('conflict', 409, `incident ${id} is already resolved`);
    await this.close(r, 'manual', actor, note ?? '');
    return this.get(id);
  }

  /** A person's note on the timeline (open or resolved incidents: a post-mortem note is welcome). */
  async addNote(id: string, actor: string, noteIn: string): Promise<Incident> {
    const note = parseNote(noteIn);
    await this.idle();
    await this.row(id); // 404 for an unknown incident
    await this.event(this.db, id, iso(this.now()), 'note', actor, null, { note });
    return this.get(id);
  }

  // ---- events ----

  private async event(db: Kysely<IncidentsDatabase>, incidentId: string, at: string, kind: string, actor: string | null, ref: string | null, data: Record<string, unknown>): Promise<void> {
    await db.insertInto('incident_events').values({ id: ulid(), incident_id: incidentId, at, kind, actor, ref, data: JSON.stringify(data) }).execute();
  }

  /**
   * The open incident of a service/environment active within the window, if any. An alert
   * without an environment label (a rule not fanned out by environment) joins the service's
   * latest open incident in any environment.
   */
  private async openFor(db: Kysely<IncidentsDatabase>, service: string, environment: string, nowMs: number): Promise<IncidentsTable | undefined> {
    let q = db.selectFrom('incidents').selectAll()
      .where('service', '=', service).where('status', '!=', 'resolved')
      .where('updated_at', '>=', iso(nowMs - this.windowMs));
    if (environment !== '') q = q.where('environment', '=', environment);
    return q.orderBy('detected_at', 'desc').limit(1).executeTakeFirst();
  }

  private async openOrJoin(tx: Transaction<IncidentsDatabase>, service: string, environment: string, title: string, signal: SignalName, atMs: number): Promise<{ row: IncidentsTable; created: boolean }> {
    const found = await this.openFor(tx, service, environment, atMs);
    const at = iso(atMs);
    if (found !== undefined) {
      await tx.updateTable('incidents').set({ updated_at: at }).where('id', '=', found.id).execute();
      return { row: found, created: false };
    }
    const row: IncidentsTable = {
      id: ulid(atMs), title, service, environment, status: 'open', signal, opened_at: at, detected_at: at,
      first_bad_at: null, first_bad_source: null, baseline_level: null, bad_level: null, recovered_at: null,
      acknowledged_at: null, acknowledged_by: null, assignee: null, resolved_at: null, resolved_by: null, resolution: null,
      suspect_deploy_id: null, recovery_state: null, updated_at: at,
    };
    await tx.insertInto('incidents').values(row).execute();
    return { row, created: true };
  }

  private async onFired(e: AlertEvent): Promise<void> {
    const a = e.alert;
    const service = a.series.service ?? a.labels.service ?? '';
    const environment = a.series.environment ?? a.labels.environment ?? '';
    const atMs = Date.parse(e.at);
    const signal = signalOf(typeof a.threshold.signal === 'string' ? a.threshold.signal : undefined);
    // The incident, its alert and the timeline entry commit together: a failure leaves none of them.
    const row = await this.db.transaction().execute(async (tx) => {
      const { row: r } = await this.openOrJoin(tx, service, environment, `${a.rule.name}: ${service}${environment === '' ? '' : ` (${environment})`}`, signal, atMs);
      await tx.insertInto('incident_alerts')
        .values({ incident_id: r.id, alert_id: a.id, rule_name: a.rule.name, state: 'firing', fired_at: e.at, resolved_at: null })
        .onConflict((oc) => oc.columns(['incident_id', 'alert_id']).doUpdateSet({ state: 'firing', resolved_at: null }))
        .execute();
      await this.event(tx, r.id, e.at, 'alert.fired', null, a.id, { rule: a.rule.name, value: a.value, series: a.series, threshold: a.threshold, links: a.links });
      return r;
    });
    await this.locateFirstBad(row.id, signal, Date.parse(a.startsAt));
  }

  /** Alerts of not-yet-resolved incidents, by alert id. */
  private async incidentsOfAlert(alertId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('incident_alerts').innerJoin('incidents', 'incidents.id', 'incident_alerts.incident_id')
      .select('incidents.id').where('incident_alerts.alert_id', '=', alertId).where('incidents.status', '!=', 'resolved').execute();
    return rows.map((r) => r.id);
  }

  private async onAlertResolved(e: AlertEvent): Promise<void> {
    for (const id of await this.incidentsOfAlert(e.alert.id)) {
      await this.db.transaction().execute(async (tx) => {
        await tx.updateTable('incident_alerts').set({ state: 'resolved', resolved_at: e.at })
          .where('incident_id', '=', id).where('alert_id', '=', e.alert.id).execute();
        await this.event(tx, id, e.at, 'alert.resolved', null, e.alert.id, { rule: e.alert.rule.name, value: e.alert.value, links: e.alert.links });
        await tx.updateTable('incidents').set({ updated_at: e.at }).where('id', '=', id).execute();
      });
      await this.maybeAutoResolve(await this.row(id));
    }
  }

  private async onNotified(e: NotifiedEvent): Promise<void> {
    for (const alertId of e.alertIds) {
      const rows = await this.db.selectFrom('incident_alerts').select('incident_id').where('alert_id', '=', alertId).execute();
      // The latest incident holding the alert (a resolved notification may arrive after auto-resolve).
      const id = rows.map((r) => r.incident_id).sort().at(-1);
      if (id !== undefined) await this.event(this.db, id, e.at, 'notified', null, alertId, { receiver: e.receiver, status: e.status, ok: e.ok });
    }
  }

  private async onErrorGroup(g: ErrorGroup, kind: 'new' | 'regressed'): Promise<void> {
    const rows = await this.db.selectFrom('incidents').select('id').where('service', '=', g.service).where('status', '!=', 'resolved').execute();
    const at = iso(this.now());
    for (const r of rows) await this.event(this.db, r.id, at, 'error_group', null, g.id, { kind, title: g.title, release: g.lastRelease });
  }

  private async onVerdict(e: DeployEventMap['deploy.verdict'][0]): Promise<void> {
    const d = e.deploy;
    if (e.verification.outcome === 'fail') {
      const failing = e.verification.evidence.find((x) => x.outcome === 'fail')?.signal;
      const signal: SignalName = failing === 'latency' ? 'p95_ms' : 'error_rate';
      const atMs = Date.parse(e.at);
      const row = await this.db.transaction().execute(async (tx) => {
        const { row: r, created } = await this.openOrJoin(tx, d.service, d.environment, `deploy ${d.service} ${d.version} failed verification`, signal, atMs);
        if (created || r.suspect_deploy_id === null) {
          await tx.updateTable('incidents').set({ suspect_deploy_id: d.id }).where('id', '=', r.id).execute();
        }
        await this.event(tx, r.id, e.at, 'deploy.failed', null, d.id, { version: d.version, reason: e.verification.reason });
        return r;
      });
      // The failed deploy's own first bad request, even when an alert placed the first bad signal
      // already (also from this deploy: the alert may have read it before the version's earliest
      // failed request was in; the earliest of equal evidence wins).
      await this.locateFirstBad(row.id, signal, atMs, d);
      // A verdict can come seconds after the version's first requests, before their spans
      // (batched by the service's exporter; a slow first request is exported after quicker later
      // ones) are in the rollups: read again as they arrive.
      this.relocateLater(row.id, signal, atMs, d, [...RELOCATE_AFTER_MS]);
      return;
    }
    await this.recheck(d.service, d.environment);
  }

  /** Re-reads the failed deploy's first bad request after each delay (an earlier one may arrive after a later one). */
  private relocateLater(id: string, signal: SignalName, atMs: number, d: Deploy, delays: number[]): void {
    const wait = delays.shift();
    if (wait === undefined) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.run('first bad request', async () => {
        const r = await this.row(id);
        if (r.status === 'resolved') return;
        await this.locateFirstBad(id, signal, atMs, d);
        this.relocateLater(id, signal, atMs, d, delays);
      });
    }, wait);
    t.unref();
    this.timers.add(t);
  }

  private async recheck(service: string, environment: string): Promise<void> {
    const rows = await this.db.selectFrom('incidents').selectAll()
      .where('service', '=', service).where('environment', 'in', [environment, '']).where('status', '!=', 'resolved').execute();
    for (const r of rows) await this.maybeAutoResolve(r);
  }

  // ---- signals ----

  /**
   * The first bad signal before `alertMs` (detection), keeping the earliest over the incident's
   * alerts. For a deploy — the one whose verdict failed (`deploy`), else a deploy of the service
   * started within the lookback — the earliest bad evidence of its version: the first second of
   * its own traffic holding a failed (or, for latency, a slow) request. Otherwise the change
   * point over the service's one-second rollups; without one, the alert's start.
   */
  async locateFirstBad(id: string, signal: SignalName, alertMs: number, deploy?: Deploy): Promise<void> {
    const r = await this.row(id);
    const fromMs = alertMs - this.lookbackMs;
    const env = envOf(r.environment);
    let found: { atUs: number; baseline: number; bad: number } | null = null;
    let source: 'deploy' | 'signal' | 'alert' = 'alert';
    let suspect: Deploy | undefined;
    for (const d of deploy !== undefined ? [deploy] : await this.recentDeploys(r, fromMs, alertMs)) {
      const startMs = Date.parse(d.startedAt);
      // A version may serve a little before CI records it: look from a minute earlier.
      const from = Math.max(fromMs, startMs - 60_000);
      const [mine, before] = await Promise.all([
        this.opts.telemetry.red({ service: r.service, version: d.version, environment: env, fromUs: from * 1000, toUs: (alertMs + 1000) * 1000, stepS: 1 }),
        this.opts.telemetry.red({ service: r.service, environment: env, fromUs: fromMs * 1000, toUs: Math.max(fromMs + 1000, startMs) * 1000, stepS: 1 }),
      ]);
      const f = firstBadOfVersion(mine, before.filter((b) => b.timeUs < from * 1000), signal);
      if (f !== null && f.atUs / 1000 <= alertMs) { found = f; source = 'deploy'; suspect = d; break; }
    }
    if (found === null) {
      const buckets = await this.opts.telemetry.red({
        service: r.service, environment: env, fromUs: fromMs * 1000, toUs: (alertMs + 1000) * 1000, stepS: stepFor(this.lookbackMs),
      });
      found = firstBadSignal(buckets, signal);
      if (found !== null) source = 'signal';
    }
    const atMs = found === null ? alertMs : found.atUs / 1000;
    const known = ms(r.first_bad_at);
    if (known !== null) {
      // Better evidence wins (a deploy's own first bad request, then a change point, then the
      // alert's start); between equals, the earliest.
      const rank = (x: string | null): number => (x === 'deploy' ? 2 : x === 'signal' ? 1 : 0);
      if (rank(r.first_bad_source) > rank(source) || (rank(r.first_bad_source) === rank(source) && known <= atMs)) return;
    }
    await this.db.updateTable('incidents').set({
      first_bad_at: iso(atMs), first_bad_source: source, signal,
      baseline_level: found?.baseline ?? null, bad_level: found?.bad ?? null,
      ...(suspect === undefined ? {} : { suspect_deploy_id: suspect.id }),
    }).where('id', '=', id).execute();
    if (suspect === undefined) await this.findSuspect(id);
  }

  /** Deploys of the incident's service (not rollbacks) started in [fromMs, toMs], latest first. */
  private async recentDeploys(r: IncidentsTable, fromMs: number, toMs: number): Promise<Deploy[]> {
    if (this.deploys === undefined) return [];
    const list = await this.deploys.list({ service: r.service, environment: envOf(r.environment), from: iso(fromMs), to: iso(toMs), limit: 20 });
    return list.filter((d) => d.rollbackOf === null && d.source !== 'rollback').slice(0, 3);
  }

  /** The most recent deploy of the service before the first bad signal (within its bucket). */
  private async findSuspect(id: string): Promise<void> {
    const r = await this.row(id);
    const fb = ms(r.first_bad_at);
    if (this.deploys === undefined || fb === null) return;
    const list = await this.deploys.list({ service: r.service, environment: envOf(r.environment), from: iso(fb - 30 * 86_400_000), to: iso(fb + 999), limit: 50 });
    const before = list.filter((d) => Date.parse(d.startedAt) < fb + 1000).sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
    if (before.length > 0 && before[0].id !== r.suspect_deploy_id) {
      await this.db.updateTable('incidents').set({ suspect_deploy_id: before[0].id }).where('id', '=', id).execute();
    }
  }

  /** Where the signal came back to its baseline, between the first bad signal and `untilMs`. */
  async recovery(r: IncidentsTable, untilMs: number): Promise<number | null> {
    const fb = ms(r.first_bad_at);
    if (fb === null || r.baseline_level === null || r.bad_level === null || untilMs <= fb) return null;
    const buckets = await this.opts.telemetry.red({
      service: r.service, environment: envOf(r.environment),
      fromUs: fb * 1000, toUs: untilMs * 1000, stepS: stepFor(untilMs - fb),
    });
    const at = backToBaseline(buckets, signalOf(r.signal), r.baseline_level, r.bad_level);
    return at === null ? null : at / 1000;
  }

  // ---- resolution ----

  /** Deploys of the incident's service started after it was detected (rollbacks and forward fixes). */
  async fixDeploys(r: IncidentsTable): Promise<Awaited<ReturnType<DeployApi['list']>>> {
    if (this.deploys === undefined) return [];
    const list = await this.deploys.list({ service: r.service, environment: envOf(r.environment), from: r.detected_at, limit: 1000 });
    return list.filter((d) => d.startedAt >= r.detected_at).sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  }

  private async maybeAutoResolve(r: IncidentsTable): Promise<void> {
    if (r.status === 'resolved') return;
    const alerts = await this.db.selectFrom('incident_alerts').select('state').where('incident_id', '=', r.id).execute();
    const fixes = alerts.some((a) => a.state !== 'resolved') ? null : await this.fixDeploys(r);
    const latest = fixes?.at(-1);
    // Only a fix that passed verification resolves by itself. One whose verification was
    // inconclusive leaves the incident open and marked recovered-but-unverified, visibly.
    const unverified = latest !== undefined && latest.status === 'inconclusive';
    if (unverified !== (r.recovery_state === 'unverified')) {
      const at = iso(this.now());
      // Read before the transaction: no other pillar's call while it holds the state database.
      const v = unverified ? await this.deploys?.verification(latest.id).catch(() => null) : undefined;
      await this.db.transaction().execute(async (tx) => {
        await tx.updateTable('incidents').set({ recovery_state: unverified ? 'unverified' : null, updated_at: at }).where('id', '=', r.id).execute();
        if (unverified) {
          await this.event(tx, r.id, at, 'fix.unverified', null, latest.id, { version: latest.version, rollback: latest.rollbackOf !== null, reason: v?.reason ?? null });
        }
      });
    }
    // Alerts still firing; or opened by a failed verdict and nothing shipped since (the bad version is still live).
    if (fixes === null || (alerts.length === 0 && fixes.length === 0)) return;
    if (latest !== undefined && latest.status !== 'passed') return;
    // Say what happened: an incident opened by a failed verdict may never have had an alert.
    const alerted = alerts.length === 0 ? 'no alert fired' : 'alerts resolved';
    await this.close(r, 'auto', null, latest === undefined ? alerted : `${alerted}; ${latest.service} ${latest.version} passed verification`);
  }

  private async close(r: IncidentsTable, resolution: 'auto' | 'manual', actor: string | null, note: string): Promise<void> {
    const nowMs = this.now();
    const at = iso(nowMs);
    const recovered = await this.recovery(r, nowMs).catch(() => null);
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('incidents').set({
        status: 'resolved', resolved_at: at, resolved_by: actor, resolution, updated_at: at,
        recovered_at: recovered === null ? null : iso(recovered),
      }).where('id', '=', r.id).execute();
      await this.event(tx, r.id, at, 'resolved', actor, null, { resolution, note });
    });
  }
}
