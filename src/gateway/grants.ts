import { ulid } from 'ulid';
import { badRequest, notFound } from '../core/app-error.js';
import { ROLES, toTimestamp } from '../state/index.js';
import { ACCESS_MODES, type AccessMode, type GatewayDb, type GrantsTable } from './schema.js';

/**
 * Access grants: a user (or everyone holding a tightloop role) may use a resource in read,
 * write or admin mode, forever or until a time. JIT requests end in a grant with an expiry.
 */

export interface AccessGrant {
  id: string;
  subjectKind: 'user' | 'role';
  subject: string;
  resourceId: string;
  mode: AccessMode;
  expiresAt: string | null;
  requestId: string | null;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  expiredAt: string | null;
  /** The admin grant this one was made through (ends with it); null when a tightloop admin made it. */
  parentGrantId: string | null;
}

export const MODE_RANK: Record<AccessMode, number> = { read: 0, write: 1, admin: 2 };

export function toGrant(r: GrantsTable): AccessGrant {
  return {
    id: r.id,
    subjectKind: r.subject_kind === 'role' ? 'role' : 'user',
    subject: r.subject,
    resourceId: r.resource_id,
    mode: r.mode,
    expiresAt: r.expires_at,
    requestId: r.request_id,
    createdBy: r.created_by,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
    expiredAt: r.expired_at,
    parentGrantId: r.parent_grant_id ?? null,
  };
}

export function isLive(g: AccessGrant, now: number): boolean {
  return g.revokedAt === null && (g.expiresAt === null || Date.parse(g.expiresAt) > now);
}

export interface NewGrant {
  subjectKind: 'user' | 'role';
  subject: string;
  resourceId: string;
  mode: AccessMode;
  expiresAt: string | null;
  requestId?: string | null;
  createdBy: string;
  parentGrantId?: string | null;
}

export class GrantStore {
  constructor(private readonly db: GatewayDb) {}

  async create(g: NewGrant): Promise<AccessGrant> {
    if (!ACCESS_MODES.includes(g.mode)) throw badRequest(`mode must be one of ${ACCESS_MODES.join(', ')}`);
    if (g.subjectKind === 'role' && !(ROLES as readonly string[]).includes(g.subject)) {
      throw badRequest(`role must be one of ${ROLES.join(', ')}`);
    }
    const row: GrantsTable = {
      id: ulid(),
      subject_kind: g.subjectKind,
      subject: g.subject,
      resource_id: g.resourceId,
      mode: g.mode,
      expires_at: g.expiresAt,
      request_id: g.requestId ?? null,
      created_by: g.createdBy,
      created_at: toTimestamp(Date.now()),
      revoked_at: null,
      revoked_by: null,
      expired_at: null,
      parent_grant_id: g.parentGrantId ?? null,
    };
    await this.db.insertInto('gateway_grants').values(row).execute();
    return toGrant(row);
  }

  async get(id: string): Promise<AccessGrant | undefined> {
    const row = await this.db.selectFrom('gateway_grants').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toGrant(row);
  }

  /** The strongest live grant a user holds on a resource (directly or through their role). */
  async activeFor(userId: string, role: string, resourceId: string, now = Date.now()): Promise<AccessGrant | undefined> {
    const rows = await this.db
      .selectFrom('gateway_grants')
      .selectAll()
      .where('resource_id', '=', resourceId)
      .where('revoked_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb.and([eb('subject_kind', '=', 'user'), eb('subject', '=', userId)]),
          eb.and([eb('subject_kind', '=', 'role'), eb('subject', '=', role)]),
        ]),
      )
      .execute();
    const live = rows.map(toGrant).filter((g) => isLive(g, now));
    // Highest mode first; among equals the one lasting longest, so a session is cut as late as possible.
    live.sort((a, b) => MODE_RANK[b.mode] - MODE_RANK[a.mode] || expiry(b) - expiry(a));
    return live[0];
  }

  async list(filter: { resourceId?: string; subject?: string; includeEnded?: boolean } = {}): Promise<AccessGrant[]> {
    let sel = this.db.selectFrom('gateway_grants').selectAll();
    if (filter.resourceId !== undefined) sel = sel.where('resource_id', '=', filter.resourceId);
    if (filter.subject !== undefined) sel = sel.where('subject', '=', filter.subject);
    const rows = (await sel.orderBy('created_at', 'desc').limit(1000).execute()).map(toGrant);
    const now = Date.now();
    return filter.includeEnded === true ? rows : rows.filter((g) => isLive(g, now));
  }

  /** Revokes a live grant; false if it had already ended. */
  async revoke(id: string, by: string): Promise<{ grant: AccessGrant; changed: boolean }> {
    const grant = await this.get(id);
    if (grant === undefined) throw notFound(`grant ${id} not found`);
    const res = await this.db
      .updateTable('gateway_grants')
      .set({ revoked_at: toTimestamp(Date.now()), revoked_by: by })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return { grant: { ...grant, revokedAt: toTimestamp(Date.now()), revokedBy: by }, changed: res.numUpdatedRows > 0n };
  }

  /** Grants made through `parentId` (one level) that have not ended yet. */
  async children(parentId: string): Promise<AccessGrant[]> {
    const rows = await this.db.selectFrom('gateway_grants').selectAll()
      .where('parent_grant_id', '=', parentId).where('revoked_at', 'is', null).where('expired_at', 'is', null).execute();
    return rows.map(toGrant);
  }

  /** Marks grants whose time ran out (once each) and returns them. */
  async expireDue(now = Date.now()): Promise<AccessGrant[]> {
    const ts = toTimestamp(now);
    const due = await this.db
      .selectFrom('gateway_grants')
      .selectAll()
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', ts)
      .where('expired_at', 'is', null)
      .where('revoked_at', 'is', null)
      .execute();
    if (due.length === 0) return [];
    // Every node of a cluster sweeps: only the grants this statement marked are this node's to report.
    const marked = new Set((await this.db.updateTable('gateway_grants').set({ expired_at: ts }).where('id', 'in', due.map((d) => d.id)).where('expired_at', 'is', null)
      .returning('id').execute()).map((r) => r.id));
    return due.filter((d) => marked.has(d.id)).map((d) => ({ ...toGrant(d), expiredAt: ts }));
  }
}

function expiry(g: AccessGrant): number {
  return g.expiresAt === null ? Infinity : Date.parse(g.expiresAt);
}
