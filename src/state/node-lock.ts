import { AppError } from '../core/app-error.js';

/**
 * One tightloop node per PostgreSQL state database, until leases exist (issue 19, part 2).
 *
 * Several nodes on one database would each evaluate the rules, notify, verify, drive rollouts
 * and append to the audit chain: duplicate notifications and rollbacks, and a forked chain.
 * So a node holds a session-level advisory lock on a connection of its own for as long as it
 * runs, and a second node is refused at start with a clear error rather than running beside it.
 *
 * If that connection drops (PostgreSQL restarted), the lock is gone with it; the node takes it
 * again, and if another node got it in between, `onLost` says so (the server logs it as an
 * error: this node must be stopped).
 */

/** An arbitrary constant: the advisory lock key tightloop uses for "a node runs here". */
export const NODE_LOCK_KEY = '7428193650172046101';

export interface NodeLock {
  release(): Promise<void>;
}

type PgClient = import('pg').Client;

export async function acquireNodeLock(connectionString: string, opts: { onLost?: (err: Error) => void; retryMs?: number } = {}): Promise<NodeLock> {
  const { default: pg } = await import('pg');
  let released = false;
  let client: PgClient | undefined;
  let retry: NodeJS.Timeout | undefined;

  const take = async (): Promise<void> => {
    const c = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
    c.on('error', () => undefined); // surfaces as 'end' below
    await c.connect();
    try {
      const r = await c.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [NODE_LOCK_KEY]);
      if (r.rows[0]?.ok !== true) {
        throw new AppError('state_in_use', 409, 'another tightloop node is running on this PostgreSQL state database; several nodes on one database are not supported yet (they need leases)');
      }
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    client = c;
    c.once('end', () => {
      client = undefined;
      if (!released) schedule();
    });
  };

  const schedule = (): void => {
    retry = setTimeout(() => {
      retry = undefined;
      if (released) return;
      take().catch((err: unknown) => {
        const e = err as Error;
        if (e instanceof AppError && e.code === 'state_in_use') opts.onLost?.(e);
        if (!released) schedule();
      });
    }, opts.retryMs ?? 1_000);
    retry.unref();
  };

  await take();
  return {
    async release() {
      released = true;
      if (retry !== undefined) clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
