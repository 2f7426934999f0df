import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider, MigrationResult } from 'kysely';
import { apiError } from '../core/app-error.js';
import type { Database } from './schema.js';

/**
 * Schema migrations, compiled into the program: a packaged binary must not depend on migration
 * files next to it, and an in-code list cannot drift from the code that uses the tables.
 *
 * Rules for adding one: append (never edit a shipped migration), name it `NNNN_what`, and use
 * only the portable schema builder so the same migration runs on SQLite and PostgreSQL.
 * Migrations take `Kysely<unknown>` on purpose: they describe the schema as it was at that point,
 * not as `Database` says it is today.
 */
const migrations: Record<string, Migration> = {
  '0001_users_tokens_meta': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addCheckConstraint('users_role_check', sql`role in ('admin', 'member', 'viewer')`)
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) =>
          c.notNull().references('users.id').onDelete('cascade'),
        )
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      // Listing a user's tokens and cascading deletes both go through user_id.
      await db.schema
        .createIndex('api_tokens_user_id_idx')
        .on('api_tokens')
        .column('user_id')
        .execute();

      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('meta').execute();
      await db.schema.dropTable('api_tokens').execute();
      await db.schema.dropTable('users').execute();
    },
  },
};

/**
 * Pillar modules (gateway, errors, detect, ...) own their tables and pass their migrations in,
 * named `<module>_NNNN_what`, so state never imports a pillar. Core names start with digits and
 * sort first; unordered runs are allowed because modules land at different times.
 */
export type ModuleMigrations = Record<string, Migration>;

function providerFor(extra: ModuleMigrations): MigrationProvider {
  for (const name of Object.keys(extra)) {
    if (name in migrations) throw new Error(`migration name ${name} is taken by the core`);
  }
  return { getMigrations: () => Promise.resolve({ ...migrations, ...extra }) };
}

/** Names of all migrations this build knows, oldest first. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations).sort();

function migratorFor(db: Kysely<Database>, extra: ModuleMigrations): Migrator {
  return new Migrator({
    db,
    provider: providerFor(extra),
    allowUnorderedMigrations: true,
    migrationTableName: 'tightloop_migration',
    migrationLockTableName: 'tightloop_migration_lock',
  });
}

/**
 * Brings the schema to the latest version. Safe to call on every start and from several
 * processes at once: Kysely's Migrator serialises runs through its lock table, and a database
 * that is already current is a no-op. Returns the names of the migrations it applied.
 */
export async function migrateToLatest(db: Kysely<Database>, extra: ModuleMigrations = {}): Promise<string[]> {
  const { error, results = [] } = await migratorFor(db, extra).migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r: MigrationResult) => r.status === 'Error');
    throw apiError('state_migration_failed', 'state database migration failed', {
      cause: error,
      context: { migration: failed?.migrationName },
    });
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
