import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { toTimestamp } from '../state/index.js';
import type { AccessRequest } from './access.js';
import { boundedText } from './audit-text.js';
import { serverText } from './server-text.js';
import type { AuditChain } from './audit.js';
import type { Finding } from './guardrails/index.js';
import type { GatewayDb } from './schema.js';
import type { WebhookNotifier } from './webhook.js';

/**
 * Statements a guardrail held for review. The wire hot path must not wait on the database, so
 * the book of pending and approved statements lives in memory (loaded at start, kept current
 * by the access service) and the database is written behind it.
 *
 * An approval is for one user, one resource and the exact statement text (by SHA-256), and is
 * consumed by the first run: on whichever node, since consuming it is a claim in the state
 * store (`consume`), the one wait on the database in the statement path.
 */

export function statementHash(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

const key = (userId: string, resourceId: string, hash: string): string => `${userId}\0${resourceId}\0${hash}`;

export class StatementApprovals {
  private readonly approved = new Map<string, string[]>();
  private readonly pending = new Map<string, string>();
  /** Approvals this process used up (their `used` mark may still be in flight when a reload reads). */
  private readonly used = new Set<string>();

  constructor(
    private readonly db: GatewayDb,
    private readonly audit: AuditChain,
    private readonly webhook: WebhookNotifier,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    const rows = await this.db
      .selectFrom('gateway_requests')
      .select(['id', 'user_id', 'resource_id', 'sql_hash', 'status', 'review_deadline'])
      .where('kind', '=', 'statement')
      .where('status', 'in', ['pending', 'approved'])
      .execute();
    const now = toTimestamp(Date.now());
    for (const r of rows) {
      if (r.sql_hash === null) continue;
      const k = key(r.user_id, r.resource_id, r.sql_hash);
      if (r.status === 'approved') this.approved.set(k, [...(this.approved.get(k) ?? []), r.id]);
      else if (r.review_deadline > now) this.pending.set(k, r.id);
    }
  }

  /**
   * Re-reads the book from the state database: decisions made through another node (a cluster,
   * docs/cluster.md). Keeps what this process knows better: approvals it used up, and requests
   * it held whose row is not stored yet.
   */
  async reload(): Promise<void> {
    const local = [...this.pending.values()];
    const rows = await this.db
      .selectFrom('gateway_requests')
      .select(['id', 'user_id', 'resource_id', 'sql_hash', 'status', 'review_deadline'])
      .where('kind', '=', 'statement')
      .where((eb) => (local.length === 0 ? eb('status', 'in', ['pending', 'approved']) : eb.or([eb('status', 'in', ['pending', 'approved']), eb('id', 'in', local)])))
      .execute();
    const now = toTimestamp(Date.now());
    const approved = new Map<string, string[]>();
    const pending = new Map<string, string>();
    const stored = new Set(rows.map((r) => r.id));
    for (const r of rows) {
      if (r.sql_hash === null) continue;
      const k = key(r.user_id, r.resource_id, r.sql_hash);
      if (r.status === 'approved' && !this.used.has(r.id)) approved.set(k, [...(approved.get(k) ?? []), r.id]);
      else if (r.status === 'pending' && r.review_deadline > now) pending.set(k, r.id);
    }
    for (const [k, id] of this.pending) if (!stored.has(id)) pending.set(k, id);
    this.approved.clear();
    for (const [k, ids] of approved) this.approved.set(k, ids);
    this.pending.clear();
    for (const [k, id] of pending) this.pending.set(k, id);
  }

  /** Is there an approval in the book for this exact statement (a claim may still fail)? */
  offered(who: { userId: string }, resource: { id: string }, hash: string): boolean {
    return this.approved.has(key(who.userId, resource.id, hash));
  }

  /**
   * Claims an approval for this exact statement, once across every node on the state store: the
   * book in memory names a candidate (another node may have loaded the same one), and a
   * conditional update `approved → used` decides; only the node whose update changed the row
   * runs the statement. Returns the request id, or undefined when there is no approval or the
   * claim failed (used elsewhere, or the store unreachable: fail closed, the statement is held
   * as if unapproved).
   */
  async consume(who: { userId: string; userName: string }, resource: { id: string; name: string }, hash: string): Promise<string | undefined> {
    const k = key(who.userId, resource.id, hash);
    const ids = this.approved.get(k);
    const id = ids?.shift();
    if (id === undefined) return undefined;
    if (ids !== undefined && ids.length === 0) this.approved.delete(k);
    // Never offered again by this process, whether the claim wins or not (reload keeps it out).
    this.used.add(id);
    let won = false;
    try {
      const r = await this.db
        .updateTable('gateway_requests')
        .set({ status: 'used' })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      won = r.numUpdatedRows === 1n;
    } catch (err) {
      this.log.error({ err, request: id }, 'cannot claim a statement approval: the statement is held as unapproved');
    }
    if (!won) {
      this.audit.append({ kind: 'request.claim_failed', actor: who.userName, resource: resource.name, data: { request: id } });
      return undefined;
    }
    this.audit.append({ kind: 'request.used', actor: who.userName, resource: resource.name, data: { request: id } });
    return id;
  }

  /** Holds a statement for review (one pending request per user, resource and statement). */
  hold(
    who: { userId: string; userName: string },
    resource: { id: string; name: string; reviewWindowS: number },
    sql: string,
    hash: string,
    finding: Finding | undefined,
  ): string {
    const k = key(who.userId, resource.id, hash);
    const existing = this.pending.get(k);
    if (existing !== undefined) return existing;
    const id = ulid();
    const now = Date.now();
    this.pending.set(k, id);
    const rule = finding?.rule ?? null;
    this.db
      .insertInto('gateway_requests')
      .values({
        id, kind: 'statement', user_id: who.userId, resource_id: resource.id, mode: null, duration_s: null,
        reason: finding === undefined ? 'statement review' : `${finding.rule}: ${finding.detail}`, sql_text: sql, sql_hash: hash,
        rule, status: 'pending', break_glass: 0, created_at: toTimestamp(now),
        review_deadline: toTimestamp(now + resource.reviewWindowS * 1000), decided_by: null, decided_at: null, decision_note: null, grant_id: null,
      })
      .execute()
      .catch((err: unknown) => this.log.error({ err }, 'cannot store a statement review request'));
    this.audit.append({ kind: 'request.created', actor: who.userName, resource: resource.name, data: { request: id, kind: 'statement', rule, ...requestText(sql) } });
    this.webhook.notify({
      text: `:mag: ${who.userName} wants to run a statement on *${resource.name}* that needs review (${rule ?? 'guardrail'})`,
      lines: ['```' + shortStatement(sql) + '```', `approve: \`tightloop access approve ${id}\``],
    });
    return id;
  }

  /** Keeps the book in step with decisions made through the access service. */
  decided(req: AccessRequest, hash: string | null): void {
    if (hash === null) return;
    const k = key(req.userId, req.resourceId, hash);
    if (this.pending.get(k) === req.id) this.pending.delete(k);
    if (req.status === 'approved') this.approved.set(k, [...(this.approved.get(k) ?? []), req.id]);
  }
}

/** A held statement in its `request.created` record: bounded as the audit's `text` is (audit-text.ts). */
function requestText(sql: string): { sql: string; sqlChars?: number; sqlSha256?: string } {
  const b = boundedText(sql);
  return b.textSha256 === undefined ? { sql: b.text } : { sql: b.text, sqlChars: b.textChars, sqlSha256: b.textSha256 };
}

/** A held statement in a notification: as the server reads it (no comments), cut at 500 characters. */
function shortStatement(sql: string): string {
  const s = serverText(sql, 'collapse')?.text ?? sql;
  return s.length > 500 ? `${s.slice(0, 500)}…` : s;
}
