import { PostgresDialect } from 'kysely';

export interface PostgresDialectOptions {
  connectionString: string;
  /** Upper bound of pooled connections (default 10). */
  maxConnections?: number;
  /** Errors of idle pooled connections (e.g. the server restarted). Default: ignored. */
  onBackgroundError?: (err: Error) => void;
  /** How long to wait for a new connection before failing (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Client-side bound on one query (default none): a statement on a connection whose peer
   * vanished without a reset (a partition) fails after this instead of waiting for TCP.
   */
  queryTimeoutMs?: number;
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
    ...(opts.queryTimeoutMs === undefined ? {} : { query_timeout: opts.queryTimeoutMs }),
  });
  // Without a listener, an idle client's error is an unhandled 'error' event and kills the
  // process. The next query on a fresh connection surfaces any lasting problem to its caller.
  const onError = opts.onBackgroundError ?? (() => undefined);
  pool.on('error', (err) => onError(err));
  // pg-pool listens for errors only on idle clients: a checked-out client whose socket fails
  // (PostgreSQL restarted, a reset between two statements of a transaction) emits 'error' with
  // no listener, which ends the process. Its queries fail with the error all the same.
  pool.on('connect', (client) => {
    client.on('error', (err) => onError(err));
    // A simple query of several statements resolves to an array of results, which Kysely reads
    // as no rows at all: it gets the last statement's result instead (gateway/audit-shared.ts
    // begins, locks and reads in one round trip that way).
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const r = query(...args);
      return r instanceof Promise ? r.then((x: unknown) => (Array.isArray(x) ? x[x.length - 1] as unknown : x)) : r;
    };
  });
  return new PostgresDialect({ pool });
}

/**
 * Whether `err` says the PostgreSQL server cannot be reached or went away (refused, reset,
 * timed out, shut down), as opposed to a statement it refused: the caller answers 503 and
 * retries later instead of reporting a bug.
 */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect now).
  if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection terminated unexpectedly)/.test(message);
}
