/**
 * The detect pillar's tables in the state store (migrations `detect_NNNN_*`, passed to
 * openStateStore) and their queries: API rules, alerts with their history, silences and the
 * notification log. The engine keeps everything hot in memory and writes through here, so a
 * restart reloads what fired and what was sent.
 */
import type { Kysely, Migration } from 'kysely';
import type { Database, ModuleMigrations } from '../state/index.js';

export interface DetectRulesTable { id: string; name: string; spec: string; created_at: string; updated_at: string }
export interface DetectAlertsTable {
  id: string; rule_id: string; rule_name: string; labels: string; state: string; value: number | null;
  values_json: string; active_at: string; fired_at: string | null; resolved_at: string | null;
  last_breach_at: string; updated_at: string;
}
export interface DetectAlertHistoryTable { id: string; alert_id: string; state: string; value: number | null; at: string }
export interface DetectSilencesTable { id: string; matchers: string; starts_at: string; ends_at: string; comment: string; created_by: string; created_at: string }
export interface DetectNotificationsTable { key: string; receiver: string; alert_id: string; status: string; attempts: number; updated_at: string }

export interface DetectDatabase {
  detect_rules: DetectRulesTable;
  detect_alerts: DetectAlertsTable;
  detect_alert_history: DetectAlertHistoryTable;
  detect_silences: DetectSilencesTable;
  detect_notifications: DetectNotificationsTable;
}

const m0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('detect_rules')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createTable('detect_alerts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('rule_id', 'text', (c) => c.notNull())
      .addColumn('rule_name', 'text', (c) => c.notNull())
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('value', 'double precision')
      .addColumn('values_json', 'text', (c) => c.notNull())
      .addColumn('active_at', 'text', (c) => c.notNull())
      .addColumn('fired_at', 'text')
      .addColumn('resolved_at', 'text')
      .addColumn('last_breach_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('detect_alerts_state_idx').on('detect_alerts').column('state').execute();
    await db.schema.createTable('detect_alert_history')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('alert_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('value', 'double precision')
      .addColumn('at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('detect_alert_history_alert_idx').on('detect_alert_history').column('alert_id').execute();
    await db.schema.createTable('detect_silences')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('matchers', 'text', (c) => c.notNull())
      .addColumn('starts_at', 'text', (c) => c.notNull())
      .addColumn('ends_at', 'text', (c) => c.notNull())
      .addColumn('comment', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    // One row per (receiver, alert edge): the key makes a second send of the same edge impossible.
    await db.schema.createTable('detect_notifications')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('receiver', 'text', (c) => c.notNull())
      .addColumn('alert_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['detect_notifications', 'detect_silences', 'detect_alert_history', 'detect_alerts', 'detect_rules']) {
      await db.schema.dropTable(t).execute();
    }
  },
};

export const detectMigrations: ModuleMigrations = { detect_0001_rules_alerts_silences_notifications: m0001 };

/** Narrows a state database handle to the detect tables (state never learns of pillars). */
export function detectDb(db: Kysely<Database>): Kysely<DetectDatabase> {
  return db as unknown as Kysely<DetectDatabase>;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
export const ms = (t: string | null): number | null => (t === null ? null : Date.parse(t));
