/**
 * state/ — the transactional state database (users, tokens, and later rules, alerts, deploys,
 * incidents, grants, audit) behind one Kysely interface. SQLite (WAL) is the embedded default;
 * PostgreSQL runs the same queries and migrations for scale-out. Other modules get a
 * `Kysely<Database>` from here and never learn which dialect is underneath.
 *
 * Test support (a loop over real dialects) lives in `./dialects.conformance.ts`: kept out of
 * this surface and out of the build, because it loads dev-only packages.
 */
export { openStateStore } from './store.js';
export { isConnectionError } from './postgres.js';
export type { StateStore, StateStoreOptions, StateDialectName } from './store.js';
export { migrateToLatest, MIGRATION_NAMES } from './migrations.js';
export { describeStateLocation, parseStateLocation } from './location.js';
export type { StateLocation } from './location.js';
export type { ModuleMigrations } from './migrations.js';
export { ROLES, toTimestamp } from './schema.js';
export type {
  Database,
  Role,
  Timestamp,
  UsersTable,
  ApiTokensTable,
  MetaTable,
  User,
  NewUser,
  UserUpdate,
  ApiToken,
  NewApiToken,
} from './schema.js';
