import { sql, type Kysely, type Migration } from 'kysely';
import type { Database } from '../state/index.js';

/**
 * The gateway's tables in the state database. Same conventions as the core schema: ULID text
 * ids, ISO-8601 text timestamps, booleans as 0/1 integers, JSON as text — so one migration and
 * one set of queries serve SQLite and PostgreSQL.
 */

export type AccessMode = 'read' | 'write' | 'admin';
export const ACCESS_MODES: readonly AccessMode[] = ['read', 'write', 'admin'];

export interface ResourcesTable {
  id: string;
  name: string;
  host: string;
  port: number;
  database: string;
  upstream_user: string;
  /** `env:NAME` or `file:/path`: where the upstream password is read at connect time. */
  credential_ref: string;
  tls_mode: string;
  tls_ca_file: string | null;
  tls_server_name: string | null;
  /** 1: the password may go out in cleartext or MD5 without TLS (added by gateway_0002). */
  allow_insecure_password: number;
  /** JSON ResourcePolicy (guardrails, masking, break-glass). */
  policy: string;
  created_at: string;
  updated_at: string;
}

export interface GrantsTable {
  id: string;
  /** 'user' (subject = user id) or 'role' (subject = tightloop role name). */
  subject_kind: string;
  subject: string;
  resource_id: string;
  mode: AccessMode;
  expires_at: string | null;
  request_id: string | null;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
  /** Set once the expiry has been noticed, so it is audited and acted on exactly once. */
  expired_at: string | null;
  /**
   * The admin grant this one was made through (a non-admin holder of an admin grant granted or
   * approved it); null when a tightloop admin made it. It never outlasts that grant, and ends with it.
   */
  parent_grant_id?: string | null;
}

export interface RequestsTable {
  id: string;
  /** 'access' (JIT grant) or 'statement' (a guardrail held one statement for review). */
  kind: string;
  user_id: string;
  resource_id: string;
  mode: AccessMode | null;
  duration_s: number | null;
  reason: string;
  sql_text: string | null;
  sql_hash: string | null;
  rule: string | null;
  /** pending | approved | denied | expired | used | revoked */
  status: string;
  break_glass: number;
  created_at: string;
  review_deadline: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_note: string | null;
  grant_id: string | null;
}

export interface ScramSaltsTable {
  user_id: string;
  salt: string;
  iterations: number;
}

export interface ScramVerifiersTable {
  id: string;
  user_id: string;
  token_hash: string;
  stored_key: string;
  server_key: string;
  /** The token, sealed under a key only a successful SCRAM proof reveals (see client-auth.ts). */
  sealed_token: string;
  created_at: string;
}

export interface AuditTable {
  seq: number;
  id: string;
  at: string;
  kind: string;
  actor: string | null;
  resource: string | null;
  session_id: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

// A type alias, not an interface: withTables<T> needs T to be indexable.
export type GatewayTables = {
  gateway_resources: ResourcesTable;
  gateway_grants: GrantsTable;
  gateway_requests: RequestsTable;
  gateway_scram_salts: ScramSaltsTable;
  gateway_scram_verifiers: ScramVerifiersTable;
  gateway_audit: AuditTable;
};

/** The state database as the gateway sees it: core tables plus its own. */
export type GatewayDb = Kysely<Database & GatewayTables>;

export function gatewayDb(db: Kysely<Database>): GatewayDb {
  return db.withTables<GatewayTables>();
}

/** Append-only, named `gateway_NNNN_what`, passed to openStateStore by the server. */
export const gatewayMigrations: Record<string, Migration> = {
  gateway_0001_resources_access_audit: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('gateway_resources')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('database', 'text', (c) => c.notNull())
        .addColumn('upstream_user', 'text', (c) => c.notNull())
        .addColumn('credential_ref', 'text', (c) => c.notNull())
        .addColumn('tls_mode', 'text', (c) => c.notNull())
        .addColumn('tls_ca_file', 'text')
        .addColumn('tls_server_name', 'text')
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('gateway_grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subject_kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull().references('gateway_resources.id').onDelete('cascade'))
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('request_id', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_by', 'text')
        .addColumn('expired_at', 'text')
        .addCheckConstraint('gateway_grants_mode_check', sql`mode in ('read', 'write', 'admin')`)
        .execute();
      // Login looks grants up by resource and subject.
      await db.schema.createIndex('gateway_grants_resource_idx').on('gateway_grants').columns(['resource_id', 'subject']).execute();

      await db.schema
        .createTable('gateway_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull().references('gateway_resources.id').onDelete('cascade'))
        .addColumn('mode', 'text')
        .addColumn('duration_s', 'integer')
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('sql_text', 'text')
        .addColumn('sql_hash', 'text')
        .addColumn('rule', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('break_glass', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('review_deadline', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('decision_note', 'text')
        .addColumn('grant_id', 'text')
        .execute();
      await db.schema.createIndex('gateway_requests_status_idx').on('gateway_requests').column('status').execute();

      await db.schema
        .createTable('gateway_scram_salts')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('salt', 'text', (c) => c.notNull())
        .addColumn('iterations', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('gateway_scram_verifiers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('stored_key', 'text', (c) => c.notNull())
        .addColumn('server_key', 'text', (c) => c.notNull())
        .addColumn('sealed_token', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('gateway_scram_verifiers_user_idx').on('gateway_scram_verifiers').column('user_id').execute();

      await db.schema
        .createTable('gateway_audit')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('resource', 'text')
        .addColumn('session_id', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('gateway_audit_at_idx').on('gateway_audit').column('at').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['gateway_audit', 'gateway_scram_verifiers', 'gateway_scram_salts', 'gateway_requests', 'gateway_grants', 'gateway_resources']) {
        await db.schema.dropTable(t).execute();
      }
    },
  },
  gateway_0002_grants_parent: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('gateway_grants').addColumn('parent_grant_id', 'text').execute();
      await db.schema.createIndex('gateway_grants_parent_idx').on('gateway_grants').column('parent_grant_id').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('gateway_grants_parent_idx').execute();
      await db.schema.alterTable('gateway_grants').dropColumn('parent_grant_id').execute();
    },
  },
  gateway_0003_resource_insecure_password: {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('gateway_resources').addColumn('allow_insecure_password', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('gateway_resources').dropColumn('allow_insecure_password').execute();
    },
  },
};
