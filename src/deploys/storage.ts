/**
 * The deploys pillar's tables in the state store (migrations `deploys_NNNN_*`, passed to
 * openStateStore) and the row ⇄ contract mapping. Other pillars never read these tables: they
 * use `DeployApi` (contract.ts).
 */
import type { Kysely, Migration } from 'kysely';
import type { Database, ModuleMigrations } from '../state/index.js';
import type { Deploy, DeploySource, DeployStatus, SignalEvidence, Verification, VerdictOutcome } from './contract.js';

export interface DeploysTable {
  id: string; service: string; version: string; environment: string; previous_version: string | null;
  status: string; source: string; commit_sha: string | null; commit_time: string | null; url: string | null;
  actor: string | null; rollback_of: string | null; started_at: string; finished_at: string | null;
  decided_at: string | null; verification_id: string | null; updated_at: string;
}
export interface DeployVerificationsTable {
  id: string; deploy_id: string; baseline_kind: string; baseline_version: string | null; started_at: string;
  decided_at: string | null; outcome: string | null; reason: string | null; evidence: string; updated_at: string;
}

export interface DeploysDatabase {
  deploys: DeploysTable;
  deploy_verifications: DeployVerificationsTable;
}

const m0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('deploys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('service', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('environment', 'text', (c) => c.notNull())
      .addColumn('previous_version', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('commit_sha', 'text')
      .addColumn('commit_time', 'text')
      .addColumn('url', 'text')
      .addColumn('actor', 'text')
      .addColumn('rollback_of', 'text')
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addColumn('decided_at', 'text')
      .addColumn('verification_id', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('deploys_service_env_started_idx').on('deploys').columns(['service', 'environment', 'started_at']).execute();
    await db.schema.createIndex('deploys_started_idx').on('deploys').column('started_at').execute();
    await db.schema.createIndex('deploys_status_idx').on('deploys').column('status').execute();
    await db.schema.createTable('deploy_verifications')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('deploy_id', 'text', (c) => c.notNull())
      .addColumn('baseline_kind', 'text', (c) => c.notNull())
      .addColumn('baseline_version', 'text')
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .addColumn('outcome', 'text')
      .addColumn('reason', 'text')
      .addColumn('evidence', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('deploy_verifications_deploy_idx').on('deploy_verifications').column('deploy_id').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('deploy_verifications').execute();
    await db.schema.dropTable('deploys').execute();
  },
};

export const deploysMigrations: ModuleMigrations = { deploys_0001_deploys_verifications: m0001 };

/** Narrows a state database handle to the deploy tables (state never learns of pillars). */
export function deploysDb(db: Kysely<Database>): Kysely<DeploysDatabase> {
  return db as unknown as Kysely<DeploysDatabase>;
}

export function toDeploy(r: DeploysTable): Deploy {
  return {
    id: r.id, service: r.service, version: r.version, environment: r.environment, previousVersion: r.previous_version,
    status: r.status as DeployStatus, source: r.source as DeploySource, commit: r.commit_sha, commitTime: r.commit_time,
    url: r.url, actor: r.actor, rollbackOf: r.rollback_of, startedAt: r.started_at, finishedAt: r.finished_at,
    decidedAt: r.decided_at, verificationId: r.verification_id,
  };
}

export function toVerification(r: DeployVerificationsTable): Verification {
  return {
    id: r.id, deployId: r.deploy_id, baselineKind: r.baseline_kind as Verification['baselineKind'],
    baselineVersion: r.baseline_version, startedAt: r.started_at, decidedAt: r.decided_at,
    outcome: r.outcome as VerdictOutcome | null, reason: r.reason, evidence: JSON.parse(r.evidence) as SignalEvidence[],
  };
}
