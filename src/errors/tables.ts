/**
 * The errors module's tables in the state database and their migrations (named
 * `errors_NNNN_what`, passed to openStateStore so state/ never imports this module).
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Database, Timestamp } from '../state/index.js';

export interface ErrorsProjectsTable {
  id: number;
  name: string;
  public_key: string;
  /** Grouping algorithm version the project was created with; kept so groups never split. */
  grouping_version: number;
  created_at: Timestamp;
}

export interface ErrorsGroupsTable {
  id: string;
  project_id: number;
  service: string;
  title: string;
  culprit: string;
  level: string;
  grouping_version: number;
  /** JSON array: the hashed grouping components. */
  components: string;
  first_seen: Timestamp;
  last_seen: Timestamp;
  count: number;
  first_release: string;
  last_release: string;
  status: string;
  /** For resolved-in-next-release: the release that was current when it was resolved. */
  resolved_in_release: string | null;
  status_changed_at: Timestamp | null;
  latest_event_id: string;
  latest_trace_id: string;
}

/** Counts per group × release × environment: the release histogram and the env/release filters. */
export interface ErrorsGroupCountsTable {
  group_id: string;
  release: string;
  environment: string;
  count: number;
  first_seen: Timestamp;
  last_seen: Timestamp;
}

/**
 * Counts per group × service: a group raised by several services (a shared library, a bug in a
 * call chain) is found under each of them. `errors_groups.service` is the first one.
 */
export interface ErrorsGroupServicesTable {
  group_id: string;
  service: string;
  count: number;
}

/** Error events; the payload is the compressed event as received (see README.md). */
export interface ErrorsEventsTable {
  event_id: string;
  project_id: number;
  group_id: string;
  /** Event time, µs since the epoch. */
  time_us: number;
  received_us: number;
  service: string;
  release: string;
  environment: string;
  level: string;
  trace_id: string;
  span_id: string;
  title: string;
  user_json: string;
  tags_json: string;
  request_json: string;
  source: string;
  payload_encoding: string;
  payload: Buffer;
}

/** Release health: sessions per project × release × environment. */
export interface ErrorsReleaseHealthTable {
  project_id: number;
  release: string;
  environment: string;
  started: number;
  crashed: number;
  errored: number;
  abnormal: number;
}

/**
 * Small durable facts of the module. `otel_span_seq`: OTel span exceptions become error events
 * after the OTLP request is acknowledged; every span append with an ingest time up to this value
 * has its error events committed (written in the same transaction as them). See otel-feed.ts.
 */
export interface ErrorsMetaTable {
  key: string;
  value: number;
}

// A type alias, not an interface: Kysely's withTables() wants an indexable record type.
export type ErrorsTables = {
  errors_meta: ErrorsMetaTable;
  errors_projects: ErrorsProjectsTable;
  errors_groups: ErrorsGroupsTable;
  errors_group_counts: ErrorsGroupCountsTable;
  errors_group_services: ErrorsGroupServicesTable;
  errors_release_health: ErrorsReleaseHealthTable;
  errors_events: ErrorsEventsTable;
};

export type ErrorsDb = Kysely<Database & ErrorsTables>;

export function errorsDb(db: Kysely<Database>): ErrorsDb {
  return db.withTables<ErrorsTables>();
}

export const ERRORS_MIGRATIONS: Record<string, Migration> = {
  errors_0001_projects_groups: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createTable('errors_projects')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('public_key', 'text', (c) => c.notNull().unique())
        .addColumn('grouping_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createTable('errors_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'integer', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('culprit', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('grouping_version', 'integer', (c) => c.notNull())
        .addColumn('components', 'text', (c) => c.notNull())
        .addColumn('first_seen', 'text', (c) => c.notNull())
        .addColumn('last_seen', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addColumn('first_release', 'text', (c) => c.notNull())
        .addColumn('last_release', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('resolved_in_release', 'text')
        .addColumn('status_changed_at', 'text')
        .addColumn('latest_event_id', 'text', (c) => c.notNull())
        .addColumn('latest_trace_id', 'text', (c) => c.notNull())
        .addCheckConstraint('errors_groups_status_check',
          sql`status in ('unresolved', 'resolved', 'resolved-in-next-release', 'ignored', 'regressed')`)
        .execute();
      // The list view: newest first within a project.
      await db.schema.createIndex('errors_groups_last_seen_idx').on('errors_groups').columns(['project_id', 'last_seen']).execute();
      await db.schema.createTable('errors_group_counts')
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('release', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addColumn('first_seen', 'text', (c) => c.notNull())
        .addColumn('last_seen', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('errors_group_counts_pk', ['group_id', 'release', 'environment'])
        .execute();
      await db.schema.createIndex('errors_group_counts_release_idx').on('errors_group_counts').columns(['release', 'environment']).execute();
      await db.schema.createTable('errors_release_health')
        .addColumn('project_id', 'integer', (c) => c.notNull())
        .addColumn('release', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('started', 'bigint', (c) => c.notNull())
        .addColumn('crashed', 'bigint', (c) => c.notNull())
        .addColumn('errored', 'bigint', (c) => c.notNull())
        .addColumn('abnormal', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('errors_release_health_pk', ['project_id', 'release', 'environment'])
        .execute();
      await db.schema.createTable('errors_events')
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'integer', (c) => c.notNull())
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('time_us', 'bigint', (c) => c.notNull())
        .addColumn('received_us', 'bigint', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('release', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('trace_id', 'text', (c) => c.notNull())
        .addColumn('span_id', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('user_json', 'text', (c) => c.notNull())
        .addColumn('tags_json', 'text', (c) => c.notNull())
        .addColumn('request_json', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('payload_encoding', 'text', (c) => c.notNull())
        // bytea: PostgreSQL's binary type; SQLite stores blob values unchanged under any declared type.
        .addColumn('payload', 'bytea', (c) => c.notNull())
        .execute();
      // A group's events newest first; the errors of one trace; retention by time.
      await db.schema.createIndex('errors_events_group_idx').on('errors_events').columns(['group_id', 'time_us']).execute();
      await db.schema.createIndex('errors_events_trace_idx').on('errors_events').column('trace_id').execute();
      await db.schema.createIndex('errors_events_received_idx').on('errors_events').column('received_us').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['errors_events', 'errors_release_health', 'errors_group_counts', 'errors_groups', 'errors_projects']) {
        await db.schema.dropTable(t).execute();
      }
    },
  },
  errors_0002_meta: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createTable('errors_meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('errors_meta').execute();
    },
  },
  errors_0003_group_services: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createTable('errors_group_services')
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('errors_group_services_pk', ['group_id', 'service'])
        .execute();
      await db.schema.createIndex('errors_group_services_service_idx').on('errors_group_services').columns(['service', 'group_id']).execute();
      // Existing groups: their services from the stored events; a group without events keeps its own.
      await sql`INSERT INTO errors_group_services (group_id, service, count)
        SELECT group_id, service, count(*) FROM errors_events GROUP BY group_id, service`.execute(db);
      await sql`INSERT INTO errors_group_services (group_id, service, count)
        SELECT g.id, g.service, g.count FROM errors_groups g
        WHERE NOT EXISTS (SELECT 1 FROM errors_group_services s WHERE s.group_id = g.id)`.execute(db);
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('errors_group_services').execute();
    },
  },
};
