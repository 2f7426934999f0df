import { CompiledQuery } from 'kysely';
import type { AuditTable } from './schema.js';

/** What this needs of a connection (a Kysely instance of any schema). */
interface Executor {
  executeQuery<R>(q: CompiledQuery<R>): Promise<{ rows: R[] }>;
}

/** A pool: one connection for the batch's transaction, any connection for the checks after a failure. */
export interface SharedPool extends Executor {
  connection(): { execute<T>(f: (conn: Executor) => Promise<T>): Promise<T> };
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
 * predecessor. Group commit is kept: a node's batch, however many records, is one transaction.
 *
 * The lock is the chain's bottleneck (every writer waits for it), so it is held for as little
 * as possible (`npm run bench -- state` measured where the time went: the commit's WAL flush
 * and each round trip made while holding it):
 * - one round trip under the lock, not three: the transaction begins, takes the lock and reads
 *   the head in one, and sends the rows, the commit and a flush barrier in a second, whose
 *   commit releases the lock;
 * - the batch commits with `synchronous_commit = off`, so the lock is released without waiting
 *   for the disk, and its durability comes from the barrier: a transaction with a transaction id
 *   that commits with `synchronous_commit = on` right after it on the same connection. Its
 *   commit record comes after the batch's in the WAL, so when it returns the WAL is flushed (and
 *   sent to synchronous standbys) past the batch's commit: the batch is durable, and only then
 *   does this return, so an acknowledged record is a durable one. A crash before the flush loses
 *   a suffix of the WAL: the batch and any batch that another writer chained after it (theirs
 *   come later in the WAL), never a record in the middle; nothing lost was acknowledged.
 *
 * The rows travel as one hex-encoded JSON literal (the second round trip holds several
 * statements, which the extended protocol's parameters cannot): nothing but hex digits from the
 * records reaches the SQL text, and PostgreSQL decodes the strings to exactly the text that was
 * hashed.
 *
 * Without the lock two writers would read the same head; the sequence primary key then refuses
 * the second batch (the chain never forks, but that writer's waiters fail closed), which is what
 * the lock avoids. Every writer must take it: the SQLite path (one process per file) does not.
 */

/**
 * Begin, lock, read the head: one round trip (a simple query of three statements; the state
 * store's connections give its last result, state/postgres.ts). The read is its own statement,
 * after the lock's, so its snapshot is taken once the lock is held. Always one row (null on an
 * empty chain), so a missing result is told apart from an empty chain.
 */
const BEGIN_HEAD = "start transaction isolation level read committed; select set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(hashtext('tightloop gateway_audit')); "
  + 'select h.seq, h.hash from (select 1) as one left join lateral (select seq, hash from gateway_audit order by seq desc limit 1) as h on true';
/** Commits with `synchronous_commit = on` after the batch's commit: returns once the WAL is flushed past the batch. */
const FLUSH = 'start transaction; set local synchronous_commit = on; select txid_current(); commit';
const COLUMNS = 'seq, id, at, kind, actor, resource, session_id, data, prev_hash, hash';
const TYPES = 'seq bigint, id text, at text, kind text, actor text, resource text, session_id text, data text, prev_hash text, hash text';
/** Rows per INSERT statement (a batch after an outage may hold thousands). */
const CHUNK = 500;

export interface SharedAppend {
  /** The rows to number, link and MAC, in append order (their seq, id, prev_hash and hash are set here). */
  rows: AuditTable[];
  /** The id of a record given its sequence number. */
  idOf(seq: number): string;
  /** The record's hash (HMAC under the audit key), given every other field. */
  hashOf(row: Omit<AuditTable, 'hash'>): string;
}

/**
 * Strings as UTF-8 stores them: a lone surrogate becomes U+FFFD, as the hash's UTF-8 encoding
 * and a bound parameter would make it (JSON would carry it as an escape PostgreSQL refuses).
 */
function wellFormed(s: string): string {
  const w = s as unknown as { isWellFormed(): boolean; toWellFormed(): string };
  return w.isWellFormed() ? s : w.toWellFormed();
}

function insertSql(rows: readonly AuditTable[]): string {
  const json = JSON.stringify(rows.map((r) => ({
    seq: r.seq, id: r.id, at: r.at, kind: r.kind, actor: r.actor, resource: r.resource, session_id: r.session_id, data: r.data, prev_hash: r.prev_hash, hash: r.hash,
  })));
  const hex = Buffer.from(json, 'utf8').toString('hex');
  return `insert into gateway_audit (${COLUMNS}) select ${COLUMNS} from json_to_recordset(convert_from(decode('${hex}', 'hex'), 'UTF8')::json) as x(${TYPES})`;
}

/**
 * Numbers, links and writes `rows` at the head of the shared chain in one transaction, and
 * returns once that commit is durable (see above). Returns the new head. On failure nothing is
 * written (or, when the outcome of the commit is unknown, the caller's retry may store the
 * records a second time under new numbers: the chain stays whole), and the rows are renumbered
 * on retry.
 */
export async function appendShared(db: SharedPool, a: SharedAppend): Promise<{ seq: number; hash: string }> {
  const { rows } = a;
  for (const r of rows) {
    r.kind = wellFormed(r.kind);
    r.data = wellFormed(r.data);
    r.at = wellFormed(r.at);
    if (r.actor !== null) r.actor = wellFormed(r.actor);
    if (r.resource !== null) r.resource = wellFormed(r.resource);
    if (r.session_id !== null) r.session_id = wellFormed(r.session_id);
  }
  let last: { seq: number; hash: string } | undefined;
  try {
    return await db.connection().execute(async (conn) => {
      try {
        const found = (await conn.executeQuery<{ seq: string | number | null; hash: string | null }>(CompiledQuery.raw(BEGIN_HEAD, []))).rows;
        if (found.length !== 1) throw new Error('audit chain: the head read returned no result (a connection that is not the state store\'s?)');
        const head = found[0];
        let seq = head.seq === null ? 0 : Number(head.seq);
        let prev = head.hash ?? '0'.repeat(64);
        for (const r of rows) {
          seq++;
          r.seq = seq;
          r.id = a.idOf(seq);
          r.prev_hash = prev;
          r.hash = a.hashOf(r);
          prev = r.hash;
        }
        const chunks: string[] = [];
        for (let i = 0; i < rows.length; i += CHUNK) chunks.push(insertSql(rows.slice(i, i + CHUNK)));
        for (const c of chunks.slice(0, -1)) await conn.executeQuery(CompiledQuery.raw(c, []));
        last = { seq, hash: prev };
        await conn.executeQuery(CompiledQuery.raw(`${chunks[chunks.length - 1]}; commit; ${FLUSH}`, []));
        return last;
      } catch (err) {
        // The statement that failed may have left a transaction open (the batch's, or the barrier's).
        await conn.executeQuery(CompiledQuery.raw('rollback', [])).catch(() => undefined); // a broken connection: err below is the cause
        throw err;
      }
    });
  } catch (err) {
    if (last === undefined) throw err;
    // The last round trip failed: the batch may have committed before its barrier failed. If it
    // is stored, a barrier on any connection makes it durable; if not, the caller retries it.
    // Unreadable now counts as not stored: the caller gets err and retries the batch.
    const stored = await db.executeQuery<{ hash: string }>(CompiledQuery.raw('select hash from gateway_audit where seq = $1', [last.seq])).catch(() => undefined);
    if (stored?.rows[0]?.hash !== last.hash) throw err;
    await db.connection().execute(async (conn) => { await conn.executeQuery(CompiledQuery.raw(FLUSH, [])); });
    return last;
  }
}
