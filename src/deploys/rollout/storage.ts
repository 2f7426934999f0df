/**
 * Rollouts in the state store (migrations `rollout_NNNN_*`): a row per rollout, rewritten at each
 * step, verdict and outcome, so an accepted rollout and its history survive a restart (one that a
 * restart interrupted is resumed from them at the next start: RolloutManager.resumeRollouts).
 */
import type { Kysely, Migration } from 'kysely';
import type { Database, ModuleMigrations } from '../../state/index.js';

export interface RolloutsTable {
  id: string;
  deploy_id: string;
  service: string;
  version: string;
  status: string;
  started_at: string;
  updated_at: string;
  /** The whole Rollout as JSON (steps and verdicts included). */
  data: string;
}

export interface RolloutDatabase {
  rollout_rollouts: RolloutsTable;
}

const m0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('rollout_rollouts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('deploy_id', 'text', (c) => c.notNull())
      .addColumn('service', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('rollout_rollouts_deploy_idx').on('rollout_rollouts').column('deploy_id').execute();
    await db.schema.createIndex('rollout_rollouts_started_idx').on('rollout_rollouts').column('started_at').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('rollout_rollouts').execute();
  },
};

export const rolloutMigrations: ModuleMigrations = { rollout_0001_rollouts: m0001 };

export function rolloutDb(db: Kysely<Database>): Kysely<RolloutDatabase> {
  return db as unknown as Kysely<RolloutDatabase>;
}
