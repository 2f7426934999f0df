/**
 * REST API of users and API tokens (inside the bearer-token scope):
 *   GET/POST /api/users, PATCH/DELETE /api/users/:id, GET/POST /api/tokens, DELETE /api/tokens/:id.
 * Anyone signed in may list users and manage their own tokens; creating, changing the role of and
 * deleting users, and issuing or revoking someone else's tokens, needs the admin role.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { apiError, AppError, forbidden, notFound, unauthorized } from '../core/app-error.js';
import type { Database } from '../state/index.js';
import { createToken, revokeToken } from './tokens.js';
import { durationField } from '../core/duration.js';
import { parseBody } from '../core/parse-body.js';
import { createUser, deleteUser, findUser, getToken, listTokens, listUsers, setUserRole, type UserInfo } from './users.js';

/** The slice of the audit chain these routes write to (the gateway's AuditChain fits). */
export interface AuthAuditSink {
  append(event: { kind: string; actor?: string | null; resource?: string | null; data?: Record<string, unknown> }): unknown;
}

export interface AuthRoutesOptions {
  db: Kysely<Database>;
  audit?: AuthAuditSink;
  /** After a user is deleted, by `by` (e.g. to end their gateway grants and live sessions). */
  onUserDeleted?: (user: UserInfo, by: { userId: string; userName: string; role: string }) => Promise<void> | void;
  /** The PostgreSQL gateway's listening port, told to a new user (undefined: no gateway). */
  gatewayPort?: () => number | undefined;
}

interface Caller {
  userId: string;
  userName: string;
  isAdmin: boolean;
}

type IdParams = FastifyRequest<{ Params: { id: string } }>;

function callerOf(req: FastifyRequest): Caller {
  const p = req.principal;
  if (p === undefined) throw unauthorized();
  return { userId: p.userId, userName: p.userName, isAdmin: p.role === 'admin' };
}

function requireAdmin(req: FastifyRequest): Caller {
  const c = callerOf(req);
  if (!c.isAdmin) throw forbidden('this needs the admin role');
  return c;
}

const expiresIn = durationField('a duration like 3600, 12h, 30d or 4w');

const userBody = z.strictObject({
  name: z.string(),
  role: z.string().default('member'),
});
const userPatch = z.strictObject({ role: z.string() });
const tokenBody = z.strictObject({
  name: z.string().default('api token'),
  expiresIn: expiresIn.optional(),
  /** Admin only: issue the token for this user (id or name). */
  userId: z.string().min(1).optional(),
});

export function registerAuthRoutes(api: FastifyInstance, opts: AuthRoutesOptions): void {
  const { db, audit } = opts;

  // ---- users ----
  api.get('/api/users', async () => ({ users: await listUsers(db) }));

  api.post('/api/users', async (req, reply) => {
    const who = requireAdmin(req);
    const b = parseBody(userBody, req.body, 'user');
    const created = await createUser(db, { name: b.name, role: b.role });
    audit?.append({ kind: 'user.created', actor: who.userName, resource: `user:${created.name}`, data: { userId: created.id, role: created.role, tokenId: created.tokenId } });
    return reply.code(201).send({ ...created, gatewayPort: opts.gatewayPort?.() ?? null });
  });

  api.patch('/api/users/:id', async (req: IdParams) => {
    const who = requireAdmin(req);
    const b = parseBody(userPatch, req.body, 'user');
    const target = await findUser(db, req.params.id);
    const { before, after } = await setUserRole(db, target.id, b.role);
    if (before.role !== after.role) {
      audit?.append({ kind: 'user.role_changed', actor: who.userName, resource: `user:${after.name}`, data: { userId: after.id, from: before.role, to: after.role } });
    }
    return after;
  });

  api.delete('/api/users/:id', async (req: IdParams) => {
    const who = requireAdmin(req);
    const target = await findUser(db, req.params.id);
    if (target.id === who.userId) throw apiError('conflict', 'you cannot delete yourself');
    const removed = await deleteUser(db, target.id);
    audit?.append({ kind: 'user.deleted', actor: who.userName, resource: `user:${removed.name}`, data: { userId: removed.id, role: removed.role } });
    await opts.onUserDeleted?.(removed, { userId: who.userId, userName: who.userName, role: 'admin' });
    return removed;
  });

  // ---- tokens ----
  api.get('/api/tokens', async (req) => {
    const who = callerOf(req);
    const q = req.query as { userId?: string; all?: string };
    let userId = who.userId;
    if (q.userId !== undefined && q.userId !== who.userId) {
      if (!who.isAdmin) throw forbidden("listing another user's tokens needs the admin role");
      userId = (await findUser(db, q.userId)).id;
    }
    return { tokens: await listTokens(db, userId, { includeRevoked: q.all === '1' || q.all === 'true' }) };
  });

  api.post('/api/tokens', async (req, reply) => {
    const who = callerOf(req);
    const b = parseBody(tokenBody, req.body, 'token');
    let owner = { id: who.userId, name: who.userName };
    if (b.userId !== undefined && b.userId !== who.userId) {
      const u = await findUser(db, b.userId);
      if (u.id !== who.userId) {
        if (!who.isAdmin) throw forbidden('issuing a token for another user needs the admin role');
        owner = { id: u.id, name: u.name };
      }
    }
    const expiresAt = b.expiresIn === undefined ? undefined : new Date(Date.now() + b.expiresIn * 1000);
    const { token, id } = await createToken(db, { userId: owner.id, name: b.name, expiresAt });
    const info = await getToken(db, id);
    audit?.append({ kind: 'token.created', actor: who.userName, resource: `user:${owner.name}`, data: { tokenId: id, name: info.name, expiresAt: info.expiresAt } });
    return reply.code(201).send({ ...info, userName: owner.name, token });
  });

  api.delete('/api/tokens/:id', async (req: IdParams) => {
    const who = callerOf(req);
    const t = await getToken(db, req.params.id).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'not_found') return undefined;
      throw err;
    });
    // Someone else's token answers like an unknown one: ids are not for probing.
    if (t === undefined || (t.userId !== who.userId && !who.isAdmin)) throw notFound(`token ${req.params.id} not found`);
    const revokedNow = await revokeToken(db, t.id);
    if (revokedNow) audit?.append({ kind: 'token.revoked', actor: who.userName, resource: `token:${t.id}`, data: { userId: t.userId, name: t.name } });
    return getToken(db, t.id);
  });
}
