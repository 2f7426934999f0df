/**
 * IncidentService: the incident lifecycle. Firing alerts and failed verdicts open an incident or
 * join the open one of the same service and environment (within `windowMs` of its last
 * activity); people acknowledge, assign and resolve; an incident resolves by itself once its
 * alerts have resolved and the latest fix deploy of each affected service passed verification.
 *
 * Inputs are events (detect, deploys, errors), never other pillars' tables. Handlers run one at a
 * time on a queue, so two alerts arriving together cannot open two incidents, and a failing
 * handler is logged, never thrown into the emitter. The seams: what people send is parsed in
 * inputs.ts, how it is stored in store.ts, where the story starts in first-bad.ts; this file holds
 * the lifecycle's rules.
 */
import type { Kysely, Transaction } from 'kysely';
import { apiError } from '../core/app-error.js';
import type { Deploy, DeployApi, DeployEventMap } from '../deploys/contract.js';
import type { AlertEvent, DetectEvents, NotifiedEvent } from '../detect/index.js';
import type { ErrorEvents, ErrorGroup } from '../errors/index.js';
import type { Database } from '../state/index.js';
import { envOf, FirstBadLocator, type IncidentTelemetry } from './first-bad.js';
import { parseAssignee, parseNote, parseResolveNote, parseStatusFilter } from './inputs.js';
import type { Incident } from './model.js';
import { signalOf, type SignalName } from './signal.js';
import { incidentsDb, type IncidentsDatabase, type IncidentsTable } from './storage.js';
import { iso, IncidentStore, type IncidentEventRecord } from './store.js';

export { envOf, stepFor, type IncidentTelemetry } from './first-bad.js';

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
  /** A cluster: every incident transaction checks the lease first (lease_lost: nothing written; docs/cluster.md). */
  fence?: (tx: Kysely<IncidentsDatabase>) => Promise<void>;
}

/** Delays after which a failed deploy's first bad request is read again while its spans have not arrived. */
const RELOCATE_AFTER_MS = [1_000, 2_000, 5_000, 10_000] as const;

export class IncidentService {
  readonly db: Kysely<IncidentsDatabase>;
  private readonly store: IncidentStore;
  private readonly firstBad: FirstBadLocator;
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
    this.store = new IncidentStore(this.db, opts.fence);
    this.windowMs = opts.windowMs ?? 30 * 60_000;
    this.lookbackMs = opts.lookbackMs ?? 15 * 60_000;
    this.now = opts.nowMs ?? Date.now;
    this.firstBad = new FirstBadLocator(this.store, opts.telemetry, () => this.deploys, this.lookbackMs);
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
    const status = parseStatusFilter(f.status);
    return this.store.list({ status: status === 'all' ? undefined : status, service: f.service, limit: f.limit });
  }

  /** Views of many rows with one query for their alerts. */
  views(rows: IncidentsTable[]): Promise<Incident[]> { return this.store.views(rows); }

  async get(id: string): Promise<Incident> { return this.view(await this.row(id)); }

  row(id: string): Promise<IncidentsTable> { return this.store.row(id); }

  async view(r: IncidentsTable): Promise<Incident> { return (await this.views([r]))[0]; }

  events(id: string): Promise<IncidentEventRecord[]> { return this.store.events(id); }

  // ---- people ----

  async acknowledge(id: string, actor: string): Promise<Incident> {
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw apiError('conflict', `incident ${id} is resolved`);
    if (r.acknowledged_at === null) {
      const at = iso(this.now());
      await this.store.transaction(async (tx) => {
        await this.store.update(tx, id, { status: 'acknowledged', acknowledged_at: at, acknowledged_by: actor, updated_at: at });
        await this.store.event(tx, id, at, 'acknowledged', actor, null, {});
      });
    }
    return this.get(id);
  }

  async assign(id: string, assigneeIn: string, actor: string): Promise<Incident> {
    const assignee = parseAssignee(assigneeIn);
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw apiError('conflict', `incident ${id} is resolved`);
    const at = iso(this.now());
    await this.store.transaction(async (tx) => {
      await this.store.update(tx, id, { assignee, updated_at: at });
      await this.store.event(tx, id, at, 'assigned', actor, null, { assignee });
    });
    return this.get(id);
  }

  async resolve(id: string, actor: string, noteIn?: string): Promise<Incident> {
    const note = parseResolveNote(noteIn);
    await this.idle();
    const r = await this.row(id);
    if (r.status === 'resolved') throw apiError('conflict', `incident ${id} is already resolved`);
    await this.close(r, 'manual', actor, note ?? '');
    return this.get(id);
  }

  /** A person's note on the timeline (open or resolved incidents: a post-mortem note is welcome). */
  async addNote(id: string, actor: string, noteIn: string): Promise<Incident> {
    const note = parseNote(noteIn);
    await this.idle();
    await this.row(id); // 404 for an unknown incident
    await this.store.transaction((tx) => this.store.event(tx, id, iso(this.now()), 'note', actor, null, { note }));
    return this.get(id);
  }

  // ---- events ----

  /** Joins the open incident of the service/environment active within the window, else opens one. */
  private async openOrJoin(tx: Transaction<IncidentsDatabase>, service: string, environment: string, title: string, signal: SignalName, atMs: number): Promise<{ row: IncidentsTable; created: boolean }> {
    const found = await this.store.openFor(tx, service, environment, atMs - this.windowMs);
    if (found !== undefined) {
      await this.store.update(tx, found.id, { updated_at: iso(atMs) });
      return { row: found, created: false };
    }
    return { row: await this.store.insert(tx, { title, service, environment, signal, atMs }), created: true };
  }

  private async onFired(e: AlertEvent): Promise<void> {
    const a = e.alert;
    const service = a.series.service ?? a.labels.service ?? '';
    const environment = a.series.environment ?? a.labels.environment ?? '';
    const atMs = Date.parse(e.at);
    const signal = signalOf(typeof a.threshold.signal === 'string' ? a.threshold.signal : undefined);
    // The incident, its alert and the timeline entry commit together: a failure leaves none of them.
    const row = await this.store.transaction(async (tx) => {
      const { row: r } = await this.openOrJoin(tx, service, environment, `${a.rule.name}: ${service}${environment === '' ? '' : ` (${environment})`}`, signal, atMs);
      await this.store.alertFiring(tx, r.id, { id: a.id, rule: a.rule.name, at: e.at });
      await this.store.event(tx, r.id, e.at, 'alert.fired', null, a.id, { rule: a.rule.name, value: a.value, series: a.series, threshold: a.threshold, links: a.links });
      return r;
    });
    await this.locateFirstBad(row.id, signal, Date.parse(a.startsAt));
  }

  private async onAlertResolved(e: AlertEvent): Promise<void> {
    for (const id of await this.store.openWithAlert(e.alert.id)) {
      await this.store.transaction(async (tx) => {
        await this.store.alertResolved(tx, id, e.alert.id, e.at);
        await this.store.event(tx, id, e.at, 'alert.resolved', null, e.alert.id, { rule: e.alert.rule.name, value: e.alert.value, links: e.alert.links });
        await this.store.update(tx, id, { updated_at: e.at });
      });
      await this.maybeAutoResolve(await this.row(id));
    }
  }

  private async onNotified(e: NotifiedEvent): Promise<void> {
    for (const alertId of e.alertIds) {
      // The latest incident holding the alert (a resolved notification may arrive after auto-resolve).
      const id = await this.store.latestWithAlert(alertId);
      if (id !== undefined) await this.store.transaction((tx) => this.store.event(tx, id, e.at, 'notified', null, alertId, { receiver: e.receiver, status: e.status, ok: e.ok }));
    }
  }

  private async onErrorGroup(g: ErrorGroup, kind: 'new' | 'regressed'): Promise<void> {
    const rows = await this.store.openOf(g.service);
    const at = iso(this.now());
    for (const r of rows) await this.store.transaction((tx) => this.store.event(tx, r.id, at, 'error_group', null, g.id, { kind, title: g.title, release: g.lastRelease }));
  }

  private async onVerdict(e: DeployEventMap['deploy.verdict'][0]): Promise<void> {
    const d = e.deploy;
    if (e.verification.outcome === 'fail') {
      const failing = e.verification.evidence.find((x) => x.outcome === 'fail')?.signal;
      const signal: SignalName = failing === 'latency' ? 'p95_ms' : 'error_rate';
      const atMs = Date.parse(e.at);
      const row = await this.store.transaction(async (tx) => {
        const { row: r, created } = await this.openOrJoin(tx, d.service, d.environment, `deploy ${d.service} ${d.version} failed verification`, signal, atMs);
        if (created || r.suspect_deploy_id === null) await this.store.update(tx, r.id, { suspect_deploy_id: d.id });
        await this.store.event(tx, r.id, e.at, 'deploy.failed', null, d.id, { version: d.version, reason: e.verification.reason });
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
    for (const r of await this.store.openOf(service, environment)) await this.maybeAutoResolve(r);
  }

  // ---- signals (first-bad.ts) ----

  /** The first bad signal before `alertMs`, and the suspect deploy (FirstBadLocator.locate). */
  locateFirstBad(id: string, signal: SignalName, alertMs: number, deploy?: Deploy): Promise<void> {
    return this.firstBad.locate(id, signal, alertMs, deploy);
  }

  /** Where the signal came back to its baseline, between the first bad signal and `untilMs`. */
  recovery(r: IncidentsTable, untilMs: number): Promise<number | null> {
    return this.firstBad.recovery(r, untilMs);
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
    const alerts = await this.store.alertStates(r.id);
    const fixes = alerts.some((state) => state !== 'resolved') ? null : await this.fixDeploys(r);
    const latest = fixes?.at(-1);
    // Only a fix that passed verification resolves by itself. One whose verification was
    // inconclusive leaves the incident open and marked recovered-but-unverified, visibly.
    const unverified = latest !== undefined && latest.status === 'inconclusive';
    if (unverified !== (r.recovery_state === 'unverified')) {
      const at = iso(this.now());
      // Read before the transaction: no other pillar's call while it holds the state database.
      const v = unverified ? await this.deploys?.verification(latest.id).catch((err: unknown) => {
        this.opts.log?.warn({ err, incident: r.id, deploy: latest.id }, 'incidents: cannot read the deploy\'s verification; the fix is recorded unverified without its reason');
        return null;
      }) : undefined;
      await this.store.transaction(async (tx) => {
        await this.store.update(tx, r.id, { recovery_state: unverified ? 'unverified' : null, updated_at: at });
        if (unverified) {
          await this.store.event(tx, r.id, at, 'fix.unverified', null, latest.id, { version: latest.version, rollback: latest.rollbackOf !== null, reason: v?.reason ?? null });
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
    const recovered = await this.recovery(r, nowMs).catch((err: unknown) => {
      this.opts.log?.warn({ err, incident: r.id }, 'incidents: cannot locate the recovery in telemetry; resolving without it');
      return null;
    });
    await this.store.transaction(async (tx) => {
      await this.store.update(tx, r.id, {
        status: 'resolved', resolved_at: at, resolved_by: actor, resolution, updated_at: at,
        recovered_at: recovered === null ? null : iso(recovered),
      });
      await this.store.event(tx, r.id, at, 'resolved', actor, null, { resolution, note });
    });
  }
}
