/**
 * IncidentStore: every read and write of the incidents tables (storage.ts holds their schema).
 * The lifecycle (service.ts) and the first-bad-signal search (first-bad.ts) say what changes;
 * this file says how it is stored. Writes that belong together take the transaction they run in
 * (`Writer`), so a caller can commit several of them at once with `transaction()`.
 */
import type { Kysely, Transaction } from 'kysely';
import { ulid } from 'ulid';
import { notFound } from '../core/app-error.js';
import type { Incident, IncidentStatus } from './model.js';
import type { SignalName } from './signal.js';
import type { IncidentAlertsTable, IncidentsDatabase, IncidentsTable } from './storage.js';

/** The database handle a write runs on: the store's own, or a transaction's. */
export type Writer = Kysely<IncidentsDatabase>;

export interface IncidentEventRecord {
  at: string;
  kind: string;
  actor: string | null;
  ref: string | null;
  data: Record<string, unknown>;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

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

export class IncidentStore {
  /** `fence` (a cluster): runs first in every transaction, throws `lease_lost` when this node lost the lease. */
  constructor(readonly db: Kysely<IncidentsDatabase>, private readonly fence?: (tx: Kysely<IncidentsDatabase>) => Promise<void>) {}

  /** Runs `fn` in one transaction: all of its writes commit, or none (none on a node that lost the lease). */
  transaction<T>(fn: (tx: Transaction<IncidentsDatabase>) => Promise<T>): Promise<T> {
    const fence = this.fence;
    return this.db.transaction().execute(fence === undefined ? fn : async (tx) => {
      await fence(tx);
      return await fn(tx);
    });
  }

  // ---- reading ----

  async list(f: { status?: IncidentStatus; service?: string; limit?: number }): Promise<Incident[]> {
    let q = this.db.selectFrom('incidents').selectAll().orderBy('detected_at', 'desc').limit(f.limit ?? 100);
    if (f.status !== undefined) q = q.where('status', '=', f.status);
    if (f.service !== undefined) q = q.where('service', '=', f.service);
    return this.views(await q.execute());
  }

  /** Views of many rows with one query for their alerts. */
  async views(rows: IncidentsTable[]): Promise<Incident[]> {
    if (rows.length === 0) return [];
    const alerts = await this.db.selectFrom('incident_alerts').selectAll().where('incident_id', 'in', rows.map((r) => r.id)).orderBy('fired_at').execute();
    return rows.map((r) => toView(r, alerts.filter((a) => a.incident_id === r.id)));
  }

  async row(id: string): Promise<IncidentsTable> {
    const r = await this.db.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined) throw notFound(`incident ${id} not found`);
    return r;
  }

  async events(id: string): Promise<IncidentEventRecord[]> {
    const rows = await this.db.selectFrom('incident_events').selectAll().where('incident_id', '=', id).orderBy('id').execute();
    return rows.map((r) => ({ at: r.at, kind: r.kind, actor: r.actor, ref: r.ref, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  /**
   * The open incident of a service/environment active since `sinceMs`, if any. An alert without
   * an environment label (a rule not fanned out by environment) joins the service's latest open
   * incident in any environment.
   */
  async openFor(db: Writer, service: string, environment: string, sinceMs: number): Promise<IncidentsTable | undefined> {
    let q = db.selectFrom('incidents').selectAll()
      .where('service', '=', service).where('status', '!=', 'resolved')
      .where('updated_at', '>=', iso(sinceMs));
    if (environment !== '') q = q.where('environment', '=', environment);
    return q.orderBy('detected_at', 'desc').limit(1).executeTakeFirst();
  }

  /** Not-yet-resolved incidents holding an alert. */
  async openWithAlert(alertId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('incident_alerts').innerJoin('incidents', 'incidents.id', 'incident_alerts.incident_id')
      .select('incidents.id').where('incident_alerts.alert_id', '=', alertId).where('incidents.status', '!=', 'resolved').execute();
    return rows.map((r) => r.id);
  }

  /** The latest incident holding an alert, resolved or not. */
  async latestWithAlert(alertId: string): Promise<string | undefined> {
    const rows = await this.db.selectFrom('incident_alerts').select('incident_id').where('alert_id', '=', alertId).execute();
    return rows.map((r) => r.incident_id).sort().at(-1);
  }

  /** Not-yet-resolved incidents of a service: in one environment and those spanning every one (''), or in any. */
  async openOf(service: string, environment?: string): Promise<IncidentsTable[]> {
    let q = this.db.selectFrom('incidents').selectAll().where('service', '=', service).where('status', '!=', 'resolved');
    if (environment !== undefined) q = q.where('environment', 'in', [environment, '']);
    return q.execute();
  }

  async alertStates(id: string): Promise<string[]> {
    return (await this.db.selectFrom('incident_alerts').select('state').where('incident_id', '=', id).execute()).map((a) => a.state);
  }

  // ---- writing ----

  async insert(db: Writer, f: { title: string; service: string; environment: string; signal: SignalName; atMs: number }): Promise<IncidentsTable> {
    const at = iso(f.atMs);
    const row: IncidentsTable = {
      id: ulid(f.atMs), title: f.title, service: f.service, environment: f.environment, status: 'open', signal: f.signal, opened_at: at, detected_at: at,
      first_bad_at: null, first_bad_source: null, baseline_level: null, bad_level: null, recovered_at: null,
      acknowledged_at: null, acknowledged_by: null, assignee: null, resolved_at: null, resolved_by: null, resolution: null,
      suspect_deploy_id: null, recovery_state: null, updated_at: at,
    };
    await db.insertInto('incidents').values(row).execute();
    return row;
  }

  async update(db: Writer, id: string, set: Partial<Omit<IncidentsTable, 'id'>>): Promise<void> {
    await db.updateTable('incidents').set(set).where('id', '=', id).execute();
  }

  /** The alert fires (again) in the incident. */
  async alertFiring(db: Writer, incidentId: string, a: { id: string; rule: string; at: string }): Promise<void> {
    await db.insertInto('incident_alerts')
      .values({ incident_id: incidentId, alert_id: a.id, rule_name: a.rule, state: 'firing', fired_at: a.at, resolved_at: null })
      .onConflict((oc) => oc.columns(['incident_id', 'alert_id']).doUpdateSet({ state: 'firing', resolved_at: null }))
      .execute();
  }

  async alertResolved(db: Writer, incidentId: string, alertId: string, at: string): Promise<void> {
    await db.updateTable('incident_alerts').set({ state: 'resolved', resolved_at: at })
      .where('incident_id', '=', incidentId).where('alert_id', '=', alertId).execute();
  }

  /** Appends a fact to the incident's timeline. */
  async event(db: Writer, incidentId: string, at: string, kind: string, actor: string | null, ref: string | null, data: Record<string, unknown>): Promise<void> {
    await db.insertInto('incident_events').values({ id: ulid(), incident_id: incidentId, at, kind, actor, ref, data: JSON.stringify(data) }).execute();
  }
}
