/**
 * The actions module's table in the state store (migrations `actions_NNNN_*`): one row per run,
 * written when the run is requested and again when it starts and finishes, so a run that was
 * acknowledged survives a restart (a run caught mid-way by a restart is marked failed).
 */
import type { Kysely, Migration } from 'kysely';
import type { Database, ModuleMigrations } from '../../state/index.js';

export interface ActionRunsTable {
  id: string;
  action: string;
  kind: string;
  params: string;
  actor: string | null;
  actor_id: string | null;
  status: string;
  exit_code: number | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  deploy_id: string | null;
  output: string;
  output_truncated: number;
  error: string | null;
  decided_by: string | null;
  note: string | null;
}

export interface ActionsDatabase {
  actions_runs: ActionRunsTable;
}

const m0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable('actions_runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('actor', 'text')
      .addColumn('actor_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('exit_code', 'integer')
      .addColumn('requested_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('duration_ms', 'integer')
      .addColumn('deploy_id', 'text')
      .addColumn('output', 'text', (c) => c.notNull())
      .addColumn('output_truncated', 'integer', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('decided_by', 'text')
      .addColumn('note', 'text')
      .execute();
    await db.schema.createIndex('actions_runs_action_idx').on('actions_runs').columns(['action', 'requested_at']).execute();
    await db.schema.createIndex('actions_runs_deploy_idx').on('actions_runs').column('deploy_id').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('actions_runs').execute();
  },
};

export const actionsMigrations: ModuleMigrations = { actions_0001_runs: m0001 };

export function actionsDb(db: Kysely<Database>): Kysely<ActionsDatabase> {
  return db as unknown as Kysely<ActionsDatabase>;
}
