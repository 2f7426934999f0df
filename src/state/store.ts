import { Kysely, sql } from 'kysely';
import { apiError } from '../core/app-error.js';
import type { Dialect } from 'kysely';
import { migrateToLatest, type ModuleMigrations } from './migrations.js';
import { createPostgresDialect } from './postgres.js';
import type { Database } from './schema.js';
import { createSqliteDialect } from './sqlite.js';

interface CommonOptions {
  /** Bring the schema to the latest migration before returning (default true). */
  migrate?: boolean;
  /** Migrations of pillar modules, applied with the core ones (see migrations.ts). */
  migrations?: ModuleMigrations;
}

export type StateStoreOptions =
  | (CommonOptions & { dialect: 'sqlite'; path: string })
  | (CommonOptions & {
      dialect: 'postgres';
      connectionString: string;
      maxConnections?: number;
      onBackgroundError?: (err: Error) => void;
      connectTimeoutMs?: number;
      queryTimeoutMs?: number;
    });

export type StateDialectName = StateStoreOptions['dialect'];

/** The state database: users, tokens, rules, alerts, deploys, incidents, grants, audit. */
export interface StateStore {
  readonly db: Kysely<Database>;
  readonly dialect: StateDialectName;
  /** Closes the connection(s). Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the state database for the chosen dialect and, unless `migrate: false`, migrates it.
 * Callers write dialect-neutral Kysely; only this function knows which database is underneath.
 */
export async function openStateStore(opts: StateStoreOptions): Promise<StateStore> {
  const dialect: Dialect =
    opts.dialect === 'sqlite'
      ? await createSqliteDialect(opts.path)
      : await createPostgresDialect({
          connectionString: opts.connectionString,
          maxConnections: opts.maxConnections,
          onBackgroundError: opts.onBackgroundError,
          connectTimeoutMs: opts.connectTimeoutMs,
          queryTimeoutMs: opts.queryTimeoutMs,
        });
  const db = new Kysely<Database>({ dialect });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= db.destroy());

  if (opts.dialect === 'postgres') {
    try {
      await sql`select 1`.execute(db);
    } catch (cause) {
      await close();
      throw apiError('state_unavailable', `cannot reach the PostgreSQL state database: ${(cause as Error).message}`, { cause, retryAfterS: 5 });
    }
  }
  if (opts.migrate ?? true) {
    try {
      await migrateToLatest(db, opts.migrations);
    } catch (err) {
      await close();
      throw err;
    }
  }
  return { db, dialect: opts.dialect, close };
}
