import { PostgresDialect } from 'kysely';

export interface PostgresDialectOptions {
  connectionString: string;
  /** Upper bound of pooled connections (default 10). */
  maxConnections?: number;
  /** Errors of idle pooled connections (e.g. the server restarted). Default: ignored. */
  onBackgroundError?: (err: Error) => void;
  /** How long to wait for a new connection before failing (default 10 s). */
  connectTimeoutMs?: number;
}

/**
 * Builds a Kysely PostgreSQL dialect over a `pg` pool. `pg` is imported lazily so an install
 * that only ever uses SQLite (the default) never loads the PostgreSQL client.
 */
export async function createPostgresDialect(opts: PostgresDialectOptions): Promise<PostgresDialect> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.maxConnections ?? 10,
    // pg waits forever for a connection by default: a host that drops packets would hang every
    // request (and the start) instead of failing with a clear error.
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
  });
  // Without a listener, an idle client's error is an unhandled 'error' event and kills the
  // process. The next query on a fresh connection surfaces any lasting problem to its caller.
  const onError = opts.onBackgroundError ?? (() => undefined);
  pool.on('error', (err) => onError(err));
  return new PostgresDialect({ pool });
}
