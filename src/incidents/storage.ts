/**
 * The incidents pillar's tables (migrations `incidents_NNNN_*`, passed to openStateStore):
 * incidents, the alerts each one holds, and the facts recorded while it was open (alert edges,
 * notifications, acknowledgements, verdicts, error groups). Everything else in the story is
 * read from its owner (telemetry, deploys, the audit chain) when the story is told.
 */
import type { Kysely, Migration } from 'kysely';
import type { Database, ModuleMigrations } from '../state/index.js';

export interface IncidentsTable {
  id: string;
  title: string;
  service: string;
  environment: string;
  status: string;
  /** The signal the change point follows (error_rate, p95_ms, ...). */
  signal: string;
  opened_at: string;
  detected_at: string;
  first_bad_at: string | null;
  /** 'signal' (a change point in the rollups) or 'alert' (no clear change; the alert's start). */
  first_bad_source: string | null;
  baseline_level: number | null;
  bad_level: number | null;
  recovered_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  assignee: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
  resolution: string | null;
  suspect_deploy_id: string | null;
  /**
   * 'unverified': the alerts resolved but the latest fix deploy's verification was inconclusive —
   * recovered, not shown healthy; the incident stays open (migration 0002; null otherwise).
   */
  recovery_state: string | null;
  updated_at: string;
}

export interface IncidentAlertsTable {
  incident_id: string;
  alert_id: string;
  rule_name: string;
  state: string;
  fired_at: string;
  resolved_at: string | null;
}

export interface IncidentEventsTable {
  id: string;
  incident_id: string;
  at: string;
  kind: string;
  actor: string | null;
  ref: string | null;
  data: string;
}

export interface IncidentsDatabase {
  incidents: IncidentsTable;
  incident_alerts: IncidentAlertsTable;
  incident_events: IncidentEventsTable;
}

const m0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    let t = db.schema.createTable('incidents').addColumn('id', 'text', (c) => c.primaryKey());
    for (const col of ['title', 'service', 'environment', 'status', 'signal', 'opened_at', 'detected_at', 'updated_at']) {
      t = t.addColumn(col, 'text', (c) => c.notNull());
    }
    for (const col of ['first_bad_at', 'first_bad_source', 'recovered_at', 'acknowledged_at', 'acknowledged_by', 'assignee',
      'resolved_at', 'resolved_by', 'resolution', 'suspect_deploy_id']) {
      t = t.addColumn(col, 'text');
    }
    await t.addColumn('baseline_level', 'double precision').addColumn('bad_level', 'double precision').execute();
    await db.schema.createIndex('incidents_service_idx').on('incidents').columns(['service', 'environment', 'status']).execute();
    await db.schema.createIndex('incidents_detected_idx').on('incidents').column('detected_at').execute();
    await db.schema.createTable('incident_alerts')
      .addColumn('incident_id', 'text', (c) => c.notNull())
      .addColumn('alert_id', 'text', (c) => c.notNull())
      .addColumn('rule_name', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('fired_at', 'text', (c) => c.notNull())
      .addColumn('resolved_at', 'text')
      .addPrimaryKeyConstraint('incident_alerts_pk', ['incident_id', 'alert_id'])
      .execute();
    await db.schema.createIndex('incident_alerts_alert_idx').on('incident_alerts').column('alert_id').execute();
    await db.schema.createTable('incident_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('incident_id', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('actor', 'text')
      .addColumn('ref', 'text')
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('incident_events_incident_idx').on('incident_events').column('incident_id').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['incident_events', 'incident_alerts', 'incidents']) await db.schema.dropTable(t).execute();
  },
};

const m0002: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('incidents').addColumn('recovery_state', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('incidents').dropColumn('recovery_state').execute();
  },
};

export const incidentsMigrations: ModuleMigrations = {
  incidents_0001_incidents_alerts_events: m0001,
  incidents_0002_recovery_state: m0002,
};

/** Narrows a state database handle to the incidents tables (state never learns of pillars). */
export function incidentsDb(db: Kysely<Database>): Kysely<IncidentsDatabase> {
  return db as unknown as Kysely<IncidentsDatabase>;
}
