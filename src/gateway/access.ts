import type { Logger } from 'pino';
import { ulid } from 'ulid';
import { badRequest, conflict, forbidden, notFound } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import type { AuditChain } from './audit.js';
import { GrantStore, MODE_RANK, type AccessGrant } from './grants.js';
import type { ResourceStore } from './resources.js';
import { ACCESS_MODES, type AccessMode, type GatewayDb, type RequestsTable } from './schema.js';
import { serverText } from './server-text.js';
import type { WebhookNotifier } from './webhook.js';

/**
 * Just-in-time access: users ask for a mode on a resource for a while, with a reason; another
 * user with the approver role (a tightloop admin, or an admin grant on that resource) approves
 * or denies. Nobody approves their own request; a resource may allow break-glass instead,
 * which grants at once but demands a reason and raises an alert. Unreviewed requests expire,
 * grants expire on time, and ending a grant ends the sessions that used it.
 *
 * Statement reviews (a guardrail said "approve") travel the same path: once approved, the
 * exact statement may run once (see StatementApprovals).
 */

export interface Principal {
  userId: string;
  userName: string;
  role: string;
}

export interface AccessRequest {
  id: string;
  kind: 'access' | 'statement';
  userId: string;
  resourceId: string;
  mode: AccessMode | null;
  durationS: number | null;
  reason: string;
  sql: string | null;
  /**
   * A statement request's text as the server reads it: comments removed by the server's own
   * lexer (server-text.ts), so an approver is not misled by what looks like a comment and is
   * not (attack round 7 F4). Null for access requests, or when the text cannot be lexed.
   */
  statement: string | null;
  rule: string | null;
  status: string;
  breakGlass: boolean;
  createdAt: string;
  reviewDeadline: string;
  decidedBy: string | null;
  decidedAt: string | null;
  note: string | null;
  grantId: string | null;
}

export function toRequest(r: RequestsTable): AccessRequest {
  return {
    id: r.id, kind: r.kind === 'statement' ? 'statement' : 'access', userId: r.user_id, resourceId: r.resource_id,
    mode: r.mode, durationS: r.duration_s === null ? null : Number(r.duration_s), reason: r.reason, sql: r.sql_text,
    statement: r.kind === 'statement' && r.sql_text !== null ? (serverText(r.sql_text, 'keep')?.text.trim() ?? null) : null,
    rule: r.rule, status: r.status, breakGlass: Number(r.break_glass) === 1, createdAt: r.created_at,
    reviewDeadline: r.review_deadline, decidedBy: r.decided_by, decidedAt: r.decided_at, note: r.decision_note, grantId: r.grant_id,
  };
}

export interface AccessRequestInput {
  resource: string;
  mode: AccessMode;
  durationS: number;
  reason: string;
  breakGlass?: boolean;
}

export interface AccessEvents {
  /** A grant stopped being valid: sessions using it must end. */
  grantEnded(grantId: string, reason: string): void;
  /** Something a human should look at now (break-glass). */
  alert(summary: string, detail: Record<string, unknown>): void;
  /** A statement review was decided (approved, denied, expired or withdrawn). */
  statementDecided(req: AccessRequest): void;
}

export class AccessService {
  readonly grants: GrantStore;

  constructor(
    private readonly db: GatewayDb,
    private readonly resources: ResourceStore,
    private readonly audit: AuditChain,
    private readonly webhook: WebhookNotifier,
    private readonly events: AccessEvents,
    private readonly log: Logger,
  ) {
    this.grants = new GrantStore(db);
  }

  async userByName(name: string): Promise<{ id: string; name: string; role: string } | undefined> {
    return this.db.selectFrom('users').select(['id', 'name', 'role']).where('name', '=', name).executeTakeFirst();
  }

  async get(id: string): Promise<AccessRequest> {
    const row = await this.db.selectFrom('gateway_requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw notFound(`request ${id} not found`);
    return toRequest(row);
  }

  async list(filter: { status?: string; resourceId?: string; userId?: string } = {}): Promise<AccessRequest[]> {
    let sel = this.db.selectFrom('gateway_requests').selectAll();
    if (filter.status !== undefined) sel = sel.where('status', '=', filter.status);
    if (filter.resourceId !== undefined) sel = sel.where('resource_id', '=', filter.resourceId);
    if (filter.userId !== undefined) sel = sel.where('user_id', '=', filter.userId);
    return (await sel.orderBy('created_at', 'desc').limit(500).execute()).map(toRequest);
  }

  async request(who: Principal, input: AccessRequestInput): Promise<AccessRequest> {
    if (!ACCESS_MODES.includes(input.mode)) throw badRequest(`mode must be one of ${ACCESS_MODES.join(', ')}`);
    const reason = input.reason.trim();
    if (reason.length < 3) throw badRequest('a reason is required (at least 3 characters)');
    const resource = await this.resources.require(input.resource);
    if (!Number.isInteger(input.durationS) || input.durationS < 60 || input.durationS > resource.policy.maxGrantS) {
      throw badRequest(`duration must be 60 s to ${resource.policy.maxGrantS} s for ${resource.name}`);
    }
    const now = Date.now();
    const row: RequestsTable = {
      id: ulid(), kind: 'access', user_id: who.userId, resource_id: resource.id, mode: input.mode, duration_s: input.durationS,
      reason, sql_text: null, sql_hash: null, rule: null, status: 'pending', break_glass: 0, created_at: toTimestamp(now),
      review_deadline: toTimestamp(now + resource.policy.reviewWindowS * 1000), decided_by: null, decided_at: null,
      decision_note: null, grant_id: null,
    };
    if (input.breakGlass === true) {
      if (!resource.policy.breakGlass) throw forbidden(`break-glass access is not enabled for ${resource.name}`);
      const grant = await this.grants.create({
        subjectKind: 'user', subject: who.userId, resourceId: resource.id, mode: input.mode,
        expiresAt: toTimestamp(now + input.durationS * 1000), requestId: row.id, createdBy: who.userId,
      });
      Object.assign(row, { status: 'approved', break_glass: 1, decided_by: who.userId, decided_at: toTimestamp(now), decision_note: 'break-glass', grant_id: grant.id });
      await this.db.insertInto('gateway_requests').values(row).execute();
      const detail = { request: row.id, grant: grant.id, user: who.userName, mode: input.mode, durationS: input.durationS, reason };
      this.audit.append({ kind: 'access.break_glass', actor: who.userName, resource: resource.name, data: detail });
      this.events.alert(`BREAK-GLASS: ${who.userName} took ${input.mode} access to ${resource.name}`, detail);
      this.webhook.notify({ text: `:rotating_light: *Break-glass*: ${who.userName} took *${input.mode}* access to *${resource.name}* for ${input.durationS} s`, lines: [`reason: ${reason}`, `request ${row.id}`] });
      return toRequest(row);
    }
    await this.db.insertInto('gateway_requests').values(row).execute();
    this.audit.append({ kind: 'request.created', actor: who.userName, resource: resource.name, data: { request: row.id, kind: 'access', mode: input.mode, durationS: input.durationS, reason } });
    this.webhook.notify({
      text: `:key: ${who.userName} requests *${input.mode}* access to *${resource.name}* for ${input.durationS} s`,
      lines: [`reason: ${reason}`, `approve: \`tightloop access approve ${row.id}\``, `deny: \`tightloop access deny ${row.id}\``],
    });
    return toRequest(row);
  }

  /** A tightloop admin, or a holder of an admin grant on the resource. */
  private async isApprover(who: Principal, resourceId: string): Promise<boolean> {
    return (await this.approverBasis(who, resourceId)) !== null;
  }

  /**
   * Why `who` may approve and grant on a resource: 'admin' (the tightloop role), the live admin
   * grant they act through (the longest-lasting one), or null. Whatever is done through a grant
   * is bounded by it: see `bounded`.
   */
  private async approverBasis(who: Principal, resourceId: string): Promise<'admin' | AccessGrant | null> {
    if (who.role === 'admin') return 'admin';
    const grant = await this.grants.activeFor(who.userId, who.role, resourceId);
    return grant?.mode === 'admin' ? grant : null;
  }

  /**
   * A grant made through `basis` (a non-admin's admin grant) never widens or outlives it: no
   * grant to a role, none to oneself, a mode no higher, an expiry no later (default: the basis's).
   * It records the basis as its parent, so it ends when the basis ends. For a tightloop admin
   * everything is as asked.
   */
  private bounded(who: Principal, basis: 'admin' | AccessGrant, g: { subjectKind: 'user' | 'role'; subject: string; mode: AccessMode; expiresAt: string | null }): { expiresAt: string | null; parentGrantId: string | null } {
    if (basis === 'admin') return { expiresAt: g.expiresAt, parentGrantId: null };
    if (g.subjectKind === 'role') throw forbidden('granting to a whole role needs the tightloop admin role; your access comes from an admin grant');
    if (g.subject === who.userId) throw forbidden('you cannot grant yourself access through your own grant');
    if (MODE_RANK[g.mode] > MODE_RANK[basis.mode]) throw forbidden(`your grant allows ${basis.mode}, not ${g.mode}`);
    if (basis.expiresAt === null) return { expiresAt: g.expiresAt, parentGrantId: basis.id };
    if (g.expiresAt === null) return { expiresAt: basis.expiresAt, parentGrantId: basis.id };
    return { expiresAt: Date.parse(g.expiresAt) <= Date.parse(basis.expiresAt) ? g.expiresAt : basis.expiresAt, parentGrantId: basis.id };
  }

  private async pendingFor(who: Principal, id: string, verb: 'approve' | 'deny'): Promise<AccessRequest> {
    const req = await this.get(id);
    if (req.status !== 'pending') throw conflict(`request ${id} is ${req.status}, not pending`);
    if (Date.parse(req.reviewDeadline) <= Date.now()) {
      await this.expireRequest(req);
      throw conflict(`request ${id} expired before review`);
    }
    if (verb === 'approve' && req.userId === who.userId) throw forbidden('you cannot approve your own request');
    if (!(req.userId === who.userId && verb === 'deny') && !(await this.isApprover(who, req.resourceId))) {
      throw forbidden('approving needs the admin role or an admin grant on the resource');
    }
    return req;
  }

  async approve(who: Principal, id: string, note?: string): Promise<AccessRequest> {
    const req = await this.pendingFor(who, id, 'approve');
    const resource = await this.resources.getById(req.resourceId);
    const now = Date.now();
    let grant: AccessGrant | undefined;
    if (req.kind === 'access') {
      const basis = await this.approverBasis(who, req.resourceId);
      if (basis === null) throw forbidden('approving needs the admin role or an admin grant on the resource');
      const mode = req.mode ?? 'read';
      const limits = this.bounded(who, basis, { subjectKind: 'user', subject: req.userId, mode, expiresAt: toTimestamp(now + (req.durationS ?? 3600) * 1000) });
      grant = await this.grants.create({
        subjectKind: 'user', subject: req.userId, resourceId: req.resourceId, mode, ...limits, requestId: req.id, createdBy: who.userId,
      });
    }
    const changed = await this.db
      .updateTable('gateway_requests')
      .set({ status: 'approved', decided_by: who.userId, decided_at: toTimestamp(now), decision_note: note ?? null, grant_id: grant?.id ?? null })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (changed.numUpdatedRows === 0n) throw conflict(`request ${id} was decided concurrently`);
    this.audit.append({ kind: 'request.approved', actor: who.userName, resource: resource?.name, data: { request: id, kind: req.kind, user: req.userId, grant: grant?.id, note } });
    if (req.kind === 'statement') this.events.statementDecided({ ...req, status: 'approved' });
    if (grant !== undefined) this.audit.append({ kind: 'grant.created', actor: who.userName, resource: resource?.name, data: { grant: grant.id, user: req.userId, mode: grant.mode, expiresAt: grant.expiresAt, request: id, through: grant.parentGrantId } });
    return this.get(id);
  }

  async deny(who: Principal, id: string, note?: string): Promise<AccessRequest> {
    const req = await this.pendingFor(who, id, 'deny');
    const resource = await this.resources.getById(req.resourceId);
    await this.db
      .updateTable('gateway_requests')
      .set({ status: 'denied', decided_by: who.userId, decided_at: toTimestamp(Date.now()), decision_note: note ?? null })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
    this.audit.append({ kind: 'request.denied', actor: who.userName, resource: resource?.name, data: { request: id, kind: req.kind, user: req.userId, note } });
    if (req.kind === 'statement') this.events.statementDecided({ ...req, status: 'denied' });
    return this.get(id);
  }

  /** Direct grant (no request) by an admin, or within the bounds of an admin grant (see `bounded`). */
  async grant(who: Principal, input: { subjectKind: 'user' | 'role'; subject: string; resource: string; mode: AccessMode; durationS?: number }): Promise<AccessGrant> {
    const resource = await this.resources.require(input.resource);
    const basis = await this.approverBasis(who, resource.id);
    if (basis === null) throw forbidden('granting needs the admin role or an admin grant on the resource');
    const asked = input.durationS === undefined ? null : toTimestamp(Date.now() + input.durationS * 1000);
    const limits = this.bounded(who, basis, { ...input, expiresAt: asked });
    const grant = await this.grants.create({ ...input, resourceId: resource.id, ...limits, createdBy: who.userId });
    this.audit.append({ kind: 'grant.created', actor: who.userName, resource: resource.name, data: { grant: grant.id, subject: `${grant.subjectKind}:${grant.subject}`, mode: grant.mode, expiresAt: grant.expiresAt, through: grant.parentGrantId } });
    return grant;
  }

  /**
   * A grant ended (revoked or expired): every grant made through it ends too, in the audit as
   * `grant.revoked` by tightloop, and their sessions are ended. Depth-first over the whole tree.
   */
  private async endDerived(parent: AccessGrant, why: string): Promise<void> {
    for (const child of await this.grants.children(parent.id)) {
      const { changed } = await this.grants.revoke(child.id, 'tightloop');
      if (!changed) continue;
      if (child.requestId !== null) {
        await this.db.updateTable('gateway_requests').set({ status: 'revoked' }).where('id', '=', child.requestId).where('status', '=', 'approved').execute();
      }
      const resource = await this.resources.getById(child.resourceId);
      this.audit.append({ kind: 'grant.revoked', actor: 'tightloop', resource: resource?.name, data: { grant: child.id, request: child.requestId, reason: `${why}: grant ${parent.id} it was made through ended` } });
      this.events.grantEnded(child.id, 'the access grant it was made through ended');
      await this.endDerived(child, why);
    }
  }

  /**
   * A user was deleted: their live grants are revoked (ending their sessions) and their pending
   * requests withdrawn, each in the audit as `by`'s act. Returns how many were ended.
   */
  async endUser(by: Principal, userId: string): Promise<number> {
    let n = 0;
    for (const g of await this.grants.list({ subject: userId })) {
      if (g.subjectKind !== 'user') continue;
      await this.revoke(by, g.id);
      n++;
    }
    for (const r of await this.list({ status: 'pending', userId })) {
      await this.revoke(by, r.id);
      n++;
    }
    return n;
  }

  /** Revokes a grant, or the grant an approved request produced, or cancels a pending request. */
  async revoke(who: Principal, id: string): Promise<{ grant?: AccessGrant; request?: AccessRequest }> {
    let grant = await this.grants.get(id);
    let request: AccessRequest | undefined;
    if (grant === undefined) {
      request = await this.get(id);
      if (request.status === 'pending') {
        if (request.userId !== who.userId && !(await this.isApprover(who, request.resourceId))) throw forbidden('not allowed to cancel this request');
        await this.db.updateTable('gateway_requests').set({ status: 'revoked', decided_by: who.userId, decided_at: toTimestamp(Date.now()) }).where('id', '=', id).execute();
        this.audit.append({ kind: 'request.revoked', actor: who.userName, data: { request: id } });
        if (request.kind === 'statement') this.events.statementDecided({ ...request, status: 'revoked' });
        return { request: await this.get(id) };
      }
      if (request.grantId === null) throw conflict(`request ${id} has no grant to revoke`);
      grant = await this.grants.get(request.grantId);
      if (grant === undefined) throw notFound(`grant ${request.grantId} not found`);
    }
    const ownGrant = grant.subjectKind === 'user' && grant.subject === who.userId;
    if (!ownGrant && !(await this.isApprover(who, grant.resourceId))) throw forbidden('revoking needs the admin role or an admin grant on the resource');
    const { grant: revoked, changed } = await this.grants.revoke(grant.id, who.userId);
    if (changed) {
      const resource = await this.resources.getById(grant.resourceId);
      if (grant.requestId !== null) {
        await this.db.updateTable('gateway_requests').set({ status: 'revoked' }).where('id', '=', grant.requestId).where('status', '=', 'approved').execute();
      }
      this.audit.append({ kind: 'grant.revoked', actor: who.userName, resource: resource?.name, data: { grant: grant.id, request: grant.requestId } });
      this.events.grantEnded(grant.id, 'access grant revoked');
      await this.endDerived(grant, 'revoked');
    }
    return { grant: revoked, request };
  }

  private async expireRequest(req: AccessRequest): Promise<void> {
    const res = await this.db.updateTable('gateway_requests').set({ status: 'expired' }).where('id', '=', req.id).where('status', '=', 'pending').executeTakeFirst();
    if (res.numUpdatedRows === 0n) return;
    this.audit.append({ kind: 'request.expired', data: { request: req.id, kind: req.kind, user: req.userId } });
    if (req.kind === 'statement') this.events.statementDecided({ ...req, status: 'expired' });
  }

  /** Expires unreviewed requests and time-limited grants; run every few seconds. */
  async sweep(now = Date.now()): Promise<void> {
    const stale = await this.db.selectFrom('gateway_requests').selectAll().where('status', '=', 'pending').where('review_deadline', '<=', toTimestamp(now)).execute();
    for (const r of stale) await this.expireRequest(toRequest(r));
    for (const g of await this.grants.expireDue(now)) {
      const resource = await this.resources.getById(g.resourceId);
      this.audit.append({ kind: 'grant.expired', resource: resource?.name, data: { grant: g.id, subject: `${g.subjectKind}:${g.subject}`, expiresAt: g.expiresAt } });
      this.events.grantEnded(g.id, 'access grant expired');
      await this.endDerived(g, 'expired');
    }
  }

  logError(err: unknown, what: string): void {
    this.log.error({ err }, what);
  }
}
