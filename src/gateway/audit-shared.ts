import { CompiledQuery } from 'kysely';
import type { AuditTable } from './schema.js';

/** What this needs of a transaction (a Kysely `Transaction` of any schema). */
interface Executor {
  executeQuery<R>(q: CompiledQuery<R>): Promise<{ rows: R[] }>;
}

/**
 * One chain, several writers: on PostgreSQL every node of a cluster appends to the same
 * `gateway_audit` table, so no process can keep the chain's head for itself. A node gives its
 * queued records their place only inside the transaction that commits them: it takes a
 * transaction-scoped advisory lock on the chain, reads the head (the stored record with the
 * highest sequence number), numbers and MACs its records after it, inserts them and commits,
 * which releases the lock. The next writer's head read starts after that commit (READ COMMITTED
 * takes a new snapshot per statement, and the lock is taken by an earlier statement than the
 * read), so it sees these records: no two writers give out the same number or link to the same
 * predecessor. Group commit is kept: a node's batch, however many records, is one transaction
 * and one fsync, and the lock is held only for that transaction.
 *
 * Without the lock two writers would read the same head; the sequence primary key then refuses
 * the second batch (the chain never forks, but that writer's waiters fail closed), which is what
 * the lock avoids. Every writer must take it: the SQLite path (one process per file) does not.
 */

/** The advisory lock key of the chain (`hashtext` of a fixed name, computed by PostgreSQL). */
const LOCK = "select set_config('synchronous_commit', 'on', true), pg_advisory_xact_lock(hashtext('tightloop gateway_audit'))";
const HEAD = 'select seq, hash from gateway_audit order by seq desc limit 1';

export interface SharedAppend {
  /** The rows to number, link and MAC, in append order (their seq, id, prev_hash and hash are set here). */
  rows: AuditTable[];
  /** The id of a record given its sequence number. */
  idOf(seq: number): string;
  /** The record's hash (HMAC under the audit key), given every other field. */
  hashOf(row: Omit<AuditTable, 'hash'>): string;
  /** One multi-row insert of up to 500 rows. */
  insert(rows: readonly AuditTable[]): CompiledQuery;
}

/**
 * Numbers, links and writes `rows` at the head of the shared chain in one transaction (whose
 * commit is the durability point: `synchronous_commit = on` for it whatever the server default).
 * Returns the new head. On failure nothing is written, and the rows are renumbered on retry.
 */
export async function appendShared(trx: Executor, a: SharedAppend): Promise<{ seq: number; hash: string }> {
  await trx.executeQuery(CompiledQuery.raw(LOCK, []));
  const head = (await trx.executeQuery<{ seq: string | number; hash: string }>(CompiledQuery.raw(HEAD, []))).rows[0];
  let seq = head === undefined ? 0 : Number(head.seq);
  let prev = head === undefined ? '0'.repeat(64) : head.hash;
  for (const r of a.rows) {
    seq++;
    r.seq = seq;
    r.id = a.idOf(seq);
    r.prev_hash = prev;
    r.hash = a.hashOf(r);
    prev = r.hash;
  }
  for (let i = 0; i < a.rows.length; i += 500) await trx.executeQuery(a.insert(a.rows.slice(i, i + 500)));
  return { seq, hash: prev };
}
