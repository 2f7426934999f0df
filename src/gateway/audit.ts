import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CompiledQuery, sql } from 'kysely';
import type { Logger } from 'pino';
import { apiError } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import type { AuditAnchor } from './audit-anchor.js';
import { appendShared } from './audit-shared.js';
import { sqliteFile, startSqliteAuditWriter, type AuditBatchWriter } from './audit-writer.js';
import type { AuditTable, GatewayDb } from './schema.js';

/**
 * The audit chain: every connection, statement, request, approval, denial, expiry and
 * revocation, as chained records. Each record's hash is an HMAC-SHA256, under a key kept outside
 * the database (audit-anchor.ts), of a canonical encoding of its own fields and its
 * predecessor's hash, so editing, deleting, reordering or forging any record breaks the chain at
 * that point, and `verify` names the first record where it breaks; the head is witnessed after
 * every commit in an anchor file, which catches records cut off the end. (Records written before
 * the key existed keep plain SHA-256 hashes, covered by the first anchor.)
 *
 * Appending is synchronous (the wire hot path never awaits the database): the record is queued
 * in append order, and a background flush writes queued records in one transaction every 100 ms.
 * On SQLite (one process per file) the record gets its sequence number and hash at once; on
 * PostgreSQL, where every node of a cluster appends to the same chain, it gets them in the
 * transaction that commits it, under a lock on the chain (audit-shared.ts). A record that must
 * exist before something happens (a statement that may write, before it goes upstream) is
 * awaited with `durable(ticket)`: that
 * asks for a flush at once, and every record appended meanwhile — by every session — shares the
 * same commit (group commit: one fsync, SQLite `synchronous = FULL` or PostgreSQL
 * `synchronous_commit = on`). So a crash can lose only records nothing waited for (reads'
 * outcome records of the last 100 ms), never break the chain.
 */

export const GENESIS_HASH = '0'.repeat(64);

/**
 * Record ids: a random prefix per process start plus the sequence number. Unique across restarts
 * and cheap (a ULID costs 5-100 µs, most of a statement's audit budget).
 */
const ID_PREFIX = randomBytes(6).toString('hex');
const idOf = (seq: number): string => `${ID_PREFIX}-${seq.toString(36)}`;

export interface AuditEvent {
  kind: string;
  actor?: string | null;
  resource?: string | null;
  session?: string | null;
  data?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: number;
  id: string;
  at: string;
  kind: string;
  actor: string | null;
  resource: string | null;
  session: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export type AuditVerifyResult =
  | { ok: true; records: number; head: { seq: number; hash: string }; anchor?: { seq: number; at: string } }
  | { ok: false; records: number; firstBad: { seq: number; id: string; reason: string } };

/**
 * The canonical encoding: every field as `<length>:<value>` (null as `-`), in fixed order, then
 * the predecessor's hash. Length prefixes make it unambiguous without escaping anything.
 */
export function recordHash(r: Omit<AuditTable, 'hash'>, key?: Buffer): string {
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  for (const v of [String(Number(r.seq)), r.id, r.at, r.kind, r.actor, r.resource, r.session_id, r.data, r.prev_hash]) {
    h.update(v === null ? '-;' : `${Buffer.byteLength(v, 'utf8')}:`, 'utf8');
    if (v !== null) h.update(v, 'utf8');
  }
  return h.digest('hex');
}

export interface AuditQuery {
  kind?: string;
  actor?: string;
  resource?: string;
  session?: string;
  from?: string;
  to?: string;
  afterSeq?: number;
  limit: number;
}

/** A queued record's place in this process's append order; `durable(ticket)` waits for its commit. */
export interface AuditTicket {
  ticket: number;
}

interface Waiter {
  ticket: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class AuditChain {
  private head = { seq: 0, hash: GENESIS_HASH };
  private queue: AuditTable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  /**
   * Tickets: every append takes the next one; batches commit in append order, so the committed
   * tickets are always a prefix. On SQLite a ticket is the record's sequence number.
   */
  private appended = 0;
  /** Highest ticket known to be committed. */
  private committed = 0;
  /** PostgreSQL: records are numbered and linked at commit, under the chain's lock. */
  private shared = false;
  /** Callers of `durable`, in ticket order. */
  private waiters: Waiter[] = [];
  private soon = false;
  /** Commits and records written (tests and the benchmark: how well commits are shared). */
  readonly stats = { commits: 0, records: 0, durableWaits: 0, commitMs: 0 };

  constructor(
    private readonly db: GatewayDb,
    private readonly log: Logger,
    private readonly flushIntervalMs = 100,
    /** The head witnessed outside the database (audit-anchor.ts); every gateway has one. */
    private readonly anchor?: AuditAnchor,
    /**
     * `thread`: on a SQLite file, commits run on a writer thread (audit-writer.ts) instead of
     * holding the event loop for their fsync; `inline`: on the main thread, as before.
     */
    private readonly writerMode: 'thread' | 'inline' = 'inline',
  ) {}

  private writer: AuditBatchWriter | undefined;

  private placeholder: ((i: number) => string) | undefined;

  /**
   * One multi-row INSERT per batch, compiled by hand: at thousands of statements per second the
   * query builder's per-row work was most of the audit's cost. The placeholder style (`?` or
   * `$n`) is learned from the dialect once.
   */
  private insertBatch(rows: readonly AuditTable[]): CompiledQuery {
    this.placeholder ??= sql`select ${1}`.compile(this.db).sql.includes('$1') ? (i) => `$${i}` : () => '?';
    const ph = this.placeholder;
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const r of rows) {
      const at = params.length;
      params.push(r.seq, r.id, r.at, r.kind, r.actor, r.resource, r.session_id, r.data, r.prev_hash, r.hash);
      tuples.push(`(${Array.from({ length: 10 }, (_, k) => ph(at + k + 1)).join(',')})`);
    }
    return CompiledQuery.raw(
      `insert into gateway_audit (seq, id, at, kind, actor, resource, session_id, data, prev_hash, hash) values ${tuples.join(',')}`,
      params,
    );
  }

  /** Continues the chain from the last stored record. */
  async open(): Promise<void> {
    const last = await this.db.selectFrom('gateway_audit').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (last !== undefined) this.head = { seq: Number(last.seq), hash: last.hash };
    this.appended = this.committed = this.head.seq;
    this.shared = this.isPostgres();
    if (this.shared && last !== undefined) await this.checkKey(this.head.seq);
    if (this.writerMode === 'thread') {
      const file = await sqliteFile(this.db as never);
      if (file !== undefined) {
        try {
          this.writer = await startSqliteAuditWriter(file);
        } catch (err) {
          this.log.warn({ err }, 'audit writer thread unavailable: committing on the main thread');
        }
      }
    }
    if (this.anchor === undefined) return;
    const problems = await this.anchor.open(async (seq) => {
      const row = await this.db.selectFrom('gateway_audit').select('hash').where('seq', '=', seq).executeTakeFirst();
      return row?.hash;
    }, this.head);
    // Also in the trail itself (the anchor file keeps the proof; this is the pointer to it).
    for (const p of problems) this.append({ kind: 'audit.anchor_mismatch', data: { anchorSeq: p.seq, reason: p.reason } });
  }

  /**
   * Several nodes write one chain on PostgreSQL, each with its own copy of the key: a node with
   * another key (or none, while the chain is keyed) would seal records the others cannot verify.
   * So a node refuses to start on a chain whose head does not verify under its key (fail closed).
   */
  private async checkKey(seq: number): Promise<void> {
    const a = this.anchor;
    if (a === undefined) return;
    const row = await this.db.selectFrom('gateway_audit').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
    const r = { ...row, seq: Number(row.seq) };
    if (!a.hasKey) {
      if (recordHash(r) === r.hash) return; // a chain from before keys: this node's new key starts after it
      throw apiError('audit_key_mismatch', `the audit chain in the state database is sealed with a key, and this node has none at ${a.keyPath}: copy gateway-audit.key and gateway-audit.anchor from a node of this cluster`);
    }
    if (r.seq < a.keyedFrom || recordHash(r, a.secret) === r.hash) return;
    throw apiError('audit_key_mismatch', `audit record ${r.seq} (the chain's head) does not verify under the key at ${a.keyPath}: every node of a cluster needs the same gateway-audit.key (if the keys are the same, the record was edited: see \`tightloop audit verify\`)`);
  }

  /**
   * Resolves once the record of `ticket` is committed (rejects if the commit fails: the caller
   * must then not do what the record announces). Asks for a flush on the next turn of the event
   * loop, so every session that appended in this turn shares it.
   */
  durable(ticket: number): Promise<void> {
    if (ticket <= this.committed) return Promise.resolve();
    this.stats.durableWaits++;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ ticket, resolve, reject });
      this.flushSoon();
    });
  }

  private flushSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.flush().catch((err: unknown) => this.log.error({ err }, 'audit flush failed'));
    });
  }

  /** Settles the waiters up to `ticket` (resolved when committed, rejected when the commit failed). */
  private settle(ticket: number, err?: Error): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n].ticket <= ticket) n++;
    if (n === 0) return;
    const done = this.waiters.slice(0, n);
    this.waiters = this.waiters.slice(n);
    for (const w of done) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  /** HMAC under the anchor's key (plain SHA-256 before the key existed, or without an anchor). */
  private hashOf(row: Omit<AuditTable, 'hash'>): string {
    const a = this.anchor;
    return recordHash(row, a !== undefined && Number(row.seq) >= a.keyedFrom ? a.secret : undefined);
  }

  /**
   * Appends a record; returns its ticket for `durable`. On PostgreSQL its sequence number and
   * hash are given when it is committed (they depend on what the other nodes committed first).
   */
  append(event: AuditEvent): AuditTicket {
    const ticket = ++this.appended;
    const seq = this.shared ? 0 : this.head.seq + 1;
    const row: AuditTable = {
      seq,
      id: this.shared ? '' : idOf(seq),
      at: toTimestamp(Date.now()),
      kind: event.kind,
      actor: event.actor ?? null,
      resource: event.resource ?? null,
      session_id: event.session ?? null,
      data: JSON.stringify(event.data ?? {}),
      prev_hash: this.shared ? '' : this.head.hash,
      hash: '',
    };
    if (!this.shared) {
      row.hash = this.hashOf(row);
      this.head = { seq: row.seq, hash: row.hash };
    }
    this.queue.push(row);
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch((err: unknown) => this.log.error({ err }, 'audit flush failed'));
      }, this.flushIntervalMs);
    }
    return { ticket };
  }

  /** Writes everything appended so far. Rejects if the database refuses; records stay queued. */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    // Batches commit in ticket order and a failed one goes back in front: this is its last ticket.
    const last = this.committed + batch.length;
    this.flushing = (async () => {
      try {
        const t0 = performance.now();
        await this.writeBatch(batch);
        this.stats.commitMs += performance.now() - t0;
        this.committed = last;
        this.stats.commits++;
        this.stats.records += batch.length;
        this.settle(last);
        // After the commit, never before: a crash leaves the anchor behind the chain, not ahead.
        const top = batch[batch.length - 1];
        if (this.shared) this.head = { seq: top.seq, hash: top.hash };
        void this.anchor?.witness({ seq: top.seq, hash: top.hash });
      } catch (err) {
        this.queue = batch.concat(this.queue);
        // Fail closed: whoever waits for these records must not go ahead without them.
        this.settle(last, new Error(`audit records could not be stored: ${(err as Error).message}`, { cause: err }));
        throw err;
      } finally {
        this.flushing = undefined;
        // Records appended while this commit ran, and waited for, go in the next one at once.
        if (this.waiters.length > 0) this.flushSoon();
      }
    })();
    await this.flushing;
  }

  /** One transaction per batch; its commit is the durability point. */
  private async writeBatch(batch: readonly AuditTable[]): Promise<void> {
    const writer = this.writer;
    if (writer !== undefined) {
      try {
        return await writer.write(batch);
      } catch (err) {
        // This batch fails (its waiters fail closed, the records stay queued); a dead thread is
        // replaced by the main thread for the retry and everything after it.
        if (writer.broken && this.writer === writer) {
          this.writer = undefined;
          this.log.error({ err }, 'audit writer thread failed: committing on the main thread');
        }
        throw err;
      }
    }
    if (this.shared) {
      // Its own transaction (READ COMMITTED, the lock, a durable commit): audit-shared.ts.
      await appendShared(this.db, { rows: batch as AuditTable[], idOf, hashOf: (r) => this.hashOf(r) });
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      // SQLite caps bound parameters per statement; 10 columns × 500 rows stays well under it.
      for (let i = 0; i < batch.length; i += 500) {
        await trx.executeQuery(this.insertBatch(batch.slice(i, i + 500)));
      }
    });
  }

  private isPostgres(): boolean {
    this.placeholder ??= sql`select ${1}`.compile(this.db).sql.includes('$1') ? (i) => `$${i}` : () => '?';
    return this.placeholder(1) === '$1';
  }

  get pending(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    await this.writer?.close();
    this.writer = undefined;
    await this.anchor?.close();
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    let sel = this.db.selectFrom('gateway_audit').selectAll();
    if (q.kind !== undefined) sel = q.kind.endsWith('.') ? sel.where('kind', 'like', `${q.kind}%`) : sel.where('kind', '=', q.kind);
    if (q.actor !== undefined) sel = sel.where('actor', '=', q.actor);
    if (q.resource !== undefined) sel = sel.where('resource', '=', q.resource);
    if (q.session !== undefined) sel = sel.where('session_id', '=', q.session);
    if (q.from !== undefined) sel = sel.where('at', '>=', q.from);
    if (q.to !== undefined) sel = sel.where('at', '<', q.to);
    if (q.afterSeq !== undefined) sel = sel.where('seq', '>', q.afterSeq);
    const rows = await sel.orderBy('seq', 'asc').limit(q.limit).execute();
    return rows.map(toRecord);
  }

  /**
   * Walks the whole chain in order. Deleting a record shows as a sequence gap, reordering as a
   * broken link, editing as a hash mismatch; every anchored head (audit-anchor.ts) must be in the
   * chain with its anchored hash, which catches records cut off the end, a deleted chain, and
   * edits with every later hash recomputed. `expectedHead` (a head noted elsewhere) is checked
   * the same way.
   */
  async verify(expectedHead?: { seq: number; hash: string }): Promise<AuditVerifyResult> {
    await this.flush();
    await this.anchor?.settled();
    const expected = this.anchor?.expectations() ?? { anchors: [], problems: [] };
    const fail = (records: number, seq: number, id: string, reason: string): AuditVerifyResult => ({ ok: false, records, firstBad: { seq, id, reason } });
    if (expected.problems.length > 0) {
      const p = expected.problems[0];
      return fail(0, p.seq, '', p.reason);
    }
    // Every head the chain must contain: anchored ones (a tampered one, kept, can share its
    // sequence number with a later good one), the expected head, the one this process wrote.
    const must = new Map<number, { hash: string; what: string }[]>();
    const expect = (seq: number, hash: string, what: string): void => {
      if (seq > 0) must.set(seq, [...(must.get(seq) ?? []), { hash, what }]);
    };
    for (const a of expected.anchors) expect(a.seq, a.hash, `the anchor of ${a.at}`);
    if (expectedHead !== undefined) expect(expectedHead.seq, expectedHead.hash, 'the expected head');
    else expect(this.head.seq, this.head.hash, 'the head this process wrote');
    let prev = GENESIS_HASH;
    let expectSeq = 1;
    let count = 0;
    let last = { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      const rows = await this.db
        .selectFrom('gateway_audit')
        .selectAll()
        .where('seq', '>=', expectSeq)
        .orderBy('seq', 'asc')
        .limit(5_000)
        .execute();
      if (rows.length === 0) break;
      for (const raw of rows) {
        const row = { ...raw, seq: Number(raw.seq) };
        const bad = (reason: string): AuditVerifyResult => fail(count, row.seq, row.id, reason);
        if (row.seq !== expectSeq) return bad(`sequence gap: record ${expectSeq} is missing (deleted)`);
        if (row.prev_hash !== prev) return bad('broken link: previous hash does not match (records deleted or reordered)');
        if (this.hashOf(row) !== row.hash) return bad(row.seq >= (this.anchor?.keyedFrom ?? Infinity) ? 'MAC mismatch: record was edited or forged' : 'hash mismatch: record was edited');
        const m = must.get(row.seq)?.find((x) => x.hash !== row.hash);
        if (m !== undefined) return bad(`differs from ${m.what}: this record or one before it was rewritten`);
        prev = row.hash;
        expectSeq++;
        count++;
        last = { seq: row.seq, hash: row.hash };
      }
    }
    for (const [seq, m] of must) {
      if (seq > last.seq) return fail(count, last.seq + 1, '', `chain ends at ${last.seq}, but ${m[0].what} is at ${seq} (records removed from the end)`);
    }
    const anchored = this.anchor?.last;
    return { ok: true, records: count, head: last, ...(anchored === undefined ? {} : { anchor: { seq: anchored.seq, at: anchored.at } }) };
  }
}

function toRecord(r: AuditTable): AuditRecord {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(r.data) as Record<string, unknown>;
  } catch { // kept whole as text: audit verify still checks the record's hash over it
    data = { unparseable: r.data };
  }
  return {
    seq: Number(r.seq),
    id: r.id,
    at: r.at,
    kind: r.kind,
    actor: r.actor,
    resource: r.resource,
    session: r.session_id,
    data,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
