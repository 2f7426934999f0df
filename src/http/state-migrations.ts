import { actionsMigrations } from '../deploys/actions/index.js';
import { deploysMigrations } from '../deploys/index.js';
import { rolloutMigrations } from '../deploys/rollout/index.js';
import { detectMigrations } from '../detect/index.js';
import { ERRORS_MIGRATIONS } from '../errors/index.js';
import { gatewayMigrations } from '../gateway/index.js';
import { incidentsMigrations } from '../incidents/index.js';
import type { ModuleMigrations } from '../state/index.js';
import { eventsMigrations } from '../state/bus.js';
import { clusterMigrations } from '../state/cluster.js';

/** Every pillar's state migrations: what `tightloop up` applies (with the core ones) on start. */
export const SERVER_STATE_MIGRATIONS: ModuleMigrations = {
  ...ERRORS_MIGRATIONS, ...detectMigrations, ...gatewayMigrations, ...incidentsMigrations, ...deploysMigrations, ...actionsMigrations, ...rolloutMigrations, ...clusterMigrations, ...eventsMigrations,
};
