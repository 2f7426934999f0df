import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { forbidden, notFound, unauthorized } from '../core/app-error.js';
import type { Principal } from './access.js';
import { registerAuditRoutes } from './api-audit.js';
import { durationField } from '../core/duration.js';
import type { Gateway } from './gateway.js';
import { checkLogin } from './catalog.js';
import { publicResource } from './resources.js';
import { parseBody } from '../core/parse-body.js';
import { ACCESS_MODES } from './schema.js';
import { seesDetail, withoutDetail } from '../http/redact.js';

/**
 * The gateway's REST API as a Fastify plugin: resources, grants, access requests (JIT and
 * statement reviews) and the audit trail. It authenticates on its own (bearer token, like the
 * rest of /api) so it can be registered anywhere in the app.
 *
 *   app.register(gatewayApi, { gateway, authenticate })
 */

export interface GatewayApiOptions {
  gateway: Gateway;
  authenticate(token: string): Promise<Principal | null>;
}

declare module 'fastify' {
  interface FastifyRequest {
    gatewayPrincipal?: Principal;
  }
}

function principal(req: FastifyRequest): Principal {
  const p = req.gatewayPrincipal;
  if (p === undefined) throw unauthorized();
  return p;
}

function requireAdmin(req: FastifyRequest): Principal {
  const p = principal(req);
  if (p.role !== 'admin') throw forbidden('this needs the admin role');
  return p;
}

const duration = durationField('a duration like 90s, 30m, 1h or 2d');

const requestBody = z.object({
  resource: z.string().min(1),
  mode: z.enum(ACCESS_MODES),
  duration,
  reason: z.string().min(1).max(2000),
  breakGlass: z.boolean().default(false),
});
const grantBody = z
  .object({
    user: z.string().min(1).optional(),
    role: z.enum(['admin', 'member', 'viewer']).optional(),
    resource: z.string().min(1),
    mode: z.enum(ACCESS_MODES),
    duration: duration.optional(),
  })
  .refine((b) => (b.user === undefined) !== (b.role === undefined), 'give exactly one of user or role');
const noteBody = z.object({ note: z.string().max(2000).optional() });

export function gatewayApi(app: FastifyInstance, opts: GatewayApiOptions): void {
  const { gateway } = opts;
  const { access, resources, audit } = gateway;

  app.addHook('onRequest', async (req) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (m === null) throw unauthorized('missing bearer token (Authorization: Bearer <token>)');
    const p = await opts.authenticate(m[1]);
    if (p === null) throw unauthorized('invalid, expired or revoked token');
    req.gatewayPrincipal = p;
  });

  // ---- resources ----
  app.get('/api/resources', async () => ({ resources: (await resources.list()).map(publicResource) }));
  app.get('/api/resources/:name', async (req: FastifyRequest<{ Params: { name: string } }>) => {
    const r = await resources.require(req.params.name);
    // Columns masking classified (implied column rules), so an admin can see and override them.
    return { ...publicResource(r), classification: gateway.classification(r) };
  });
  app.post('/api/resources', async (req, reply) => {
    const who = requireAdmin(req);
    const r = await resources.create(req.body);
    audit.append({ kind: 'resource.created', actor: who.userName, resource: r.name, data: { host: r.host, port: r.port, database: r.database, user: r.user, tls: r.tls.mode } });
    // A superuser login would make every guardrail the only line of defence: say so.
    const warnings = await checkLogin(r, resources.credentialSources);
    return reply.code(201).send({ ...publicResource(r), warnings });
  });
  app.put('/api/resources/:name/policy', async (req: FastifyRequest<{ Params: { name: string } }>) => {
    const who = requireAdmin(req);
    const r = await resources.setPolicy(req.params.name, req.body);
    audit.append({ kind: 'resource.policy', actor: who.userName, resource: r.name, data: { policy: r.policy } });
    return publicResource(r);
  });
  app.delete('/api/resources/:name', async (req: FastifyRequest<{ Params: { name: string } }>) => {
    const who = requireAdmin(req);
    const r = await resources.remove(req.params.name);
    audit.append({ kind: 'resource.removed', actor: who.userName, resource: r.name });
    for (const s of gateway.registry.sessions()) if (s.resource?.id === r.id) s.terminate('resource removed');
    return { removed: r.name };
  });

  // ---- grants ----
  app.get('/api/access/grants', async (req) => {
    const q = req.query as { resource?: string; all?: string };
    const resourceId = q.resource === undefined ? undefined : (await resources.require(q.resource)).id;
    return { grants: await access.grants.list({ resourceId, includeEnded: q.all === '1' || q.all === 'true' }) };
  });
  app.post('/api/access/grants', async (req, reply) => {
    const b = parseBody(grantBody, req.body, 'grant');
    let subject = b.role ?? '';
    if (b.user !== undefined) {
      const user = await access.userByName(b.user);
      if (user === undefined) throw notFound(`user ${b.user} not found`);
      subject = user.id;
    }
    const grant = await access.grant(principal(req), {
      subjectKind: b.user === undefined ? 'role' : 'user', subject, resource: b.resource, mode: b.mode, durationS: b.duration,
    });
    return reply.code(201).send(grant);
  });
  app.delete('/api/access/grants/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => access.revoke(principal(req), req.params.id));

  // ---- requests ----
  app.get('/api/access/requests', async (req) => {
    const q = req.query as { status?: string; resource?: string; mine?: string };
    const resourceId = q.resource === undefined ? undefined : (await resources.require(q.resource)).id;
    const userId = q.mine === '1' || q.mine === 'true' ? principal(req).userId : undefined;
    const requests = await access.list({ status: q.status, resourceId, userId });
    return { requests: seesDetail(req) ? requests : requests.map(withoutDetail) };
  });
  app.post('/api/access/requests', async (req, reply) => {
    const b = parseBody(requestBody, req.body, 'access request');
    const r = await access.request(principal(req), { resource: b.resource, mode: b.mode, durationS: b.duration, reason: b.reason, breakGlass: b.breakGlass });
    return reply.code(201).send(r);
  });
  app.get('/api/access/requests/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const r = await access.get(req.params.id);
    return seesDetail(req) ? r : withoutDetail(r);
  });
  app.post('/api/access/requests/:id/approve', async (req: FastifyRequest<{ Params: { id: string } }>) =>
    access.approve(principal(req), req.params.id, parseBody(noteBody, req.body, 'note').note));
  app.post('/api/access/requests/:id/deny', async (req: FastifyRequest<{ Params: { id: string } }>) =>
    access.deny(principal(req), req.params.id, parseBody(noteBody, req.body, 'note').note));
  app.post('/api/access/revoke/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => access.revoke(principal(req), req.params.id));

  // ---- SCRAM enrolment of the calling token ----
  app.post('/api/gateway/credentials', async (req, reply) => {
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    await gateway.auth.enroll(principal(req).userId, token);
    return reply.code(201).send({ enrolled: true, user: principal(req).userName });
  });

  registerAuditRoutes(app, audit, requireAdmin);
}
