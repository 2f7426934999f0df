import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CompiledQuery, sql } from 'kysely';
import type { Logger } from 'pino';
import { toTimestamp } from '../state/index.js';
import type { AuditAnchor } from './audit-anchor.js';
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
 * Appending is synchronous (the wire hot path never awaits the database): the record gets its
 * sequence number and hash at once, in append order, and a background flush writes queued
 * records in one transaction every 100 ms. A record that must exist before something happens
 * (a statement that may write, before it goes upstream) is awaited with `durable(seq)`: that
 * asks for a flush at once, and every record appended meanwhile — by every session — shares the
 * same commit (group commit: one fsync, SQLite `synchronous = FULL` or PostgreSQL
 * `synchronous_commit = on`). So a crash can lose only records nothing waited for (reads'
 * outcome records of the last 100 ms), never break the chain. One process writes a chain; a
 * second writer would collide on the sequence primary key rather than fork the chain silently.
 */

export const GENESIS_HASH = '0'.repeat(64);

/**
 * Record ids: a random prefix per process start plus the sequence number. Unique across restarts
 * and cheap (a ULID costs 5-100 µs, most of a statement's audit budget).
 */
const ID_PREFIX = randomBytes(6).toString('hex');

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

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class AuditChain {
  private head = { seq: 0, hash: GENESIS_HASH };
  private queue: AuditTable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Highest sequence number known to be committed. */
  private durableSeq = 0;
  /** Callers of `durable`, in sequence order (appends are monotonic). */
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
    this.durableSeq = this.head.seq;
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
   * Resolves once the record `seq` is committed (rejects if the commit fails: the caller must
   * then not do what the record announces). Asks for a flush on the next turn of the event
   * loop, so every session that appended in this turn shares it.
   */
  durable(seq: number): Promise<void> {
    if (seq <= this.durableSeq) return Promise.resolve();
    this.stats.durableWaits++;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
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

  /** Settles the waiters up to `seq` (resolved when committed, rejected when the commit failed). */
  private settle(seq: number, err?: Error): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n].seq <= seq) n++;
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

  /** Appends a record; returns its position in the chain. */
  append(event: AuditEvent): { seq: number; hash: string } {
    const row: Omit<AuditTable, 'hash'> = {
      seq: this.head.seq + 1,
      id: `${ID_PREFIX}-${(this.head.seq + 1).toString(36)}`,
      at: toTimestamp(Date.now()),
      kind: event.kind,
      actor: event.actor ?? null,
      resource: event.resource ?? null,
      session_id: event.session ?? null,
      data: JSON.stringify(event.data ?? {}),
      prev_hash: this.head.hash,
    };
    const hash = this.hashOf(row);
    this.head = { seq: row.seq, hash };
    (row as AuditTable).hash = hash;
    this.queue.push(row as AuditTable);
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch((err: unknown) => this.log.error({ err }, 'audit flush failed'));
      }, this.flushIntervalMs);
    }
    return this.head;
  }

  /** Writes everything appended so far. Rejects if the database refuses; records stay queued. */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const last = batch[batch.length - 1].seq;
    this.flushing = (async () => {
      try {
        const t0 = performance.now();
        await this.writeBatch(batch);
        this.stats.commitMs += performance.now() - t0;
        this.durableSeq = last;
        this.stats.commits++;
        this.stats.records += batch.length;
        this.settle(last);
        // After the commit, never before: a crash leaves the anchor behind the chain, not ahead.
        void this.anchor?.witness({ seq: last, hash: batch[batch.length - 1].hash });
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
    await this.db.transaction().execute(async (trx) => {
      // A server configured with synchronous_commit = off would acknowledge before the fsync.
      if (this.isPostgres()) await trx.executeQuery(CompiledQuery.raw('set local synchronous_commit = on'));
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
  } catch {
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
