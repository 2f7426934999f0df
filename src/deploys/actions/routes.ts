/**
 * REST API of actions (inside the bearer-token scope): the catalogue, runs, approvals.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { badRequest, unauthorized } from '../../core/app-error.js';
import type { ActionDefinition } from './definitions.js';
import { parseBody } from '../../core/parse-body.js';
import type { ActionService, Actor } from './service.js';
import { seesDetail, withoutDetail } from '../../http/redact.js';

type IdParams = FastifyRequest<{ Params: { id: string } }>;
type NameParams = FastifyRequest<{ Params: { name: string } }>;

export function actorOf(req: FastifyRequest): Actor {
  const p = req.principal;
  if (p === undefined) throw unauthorized();
  return { userId: p.userId, userName: p.userName, role: p.role };
}

/** What the API shows of a definition: header values are left out (they may hold credentials). */
export function publicAction(d: ActionDefinition): Record<string, unknown> {
  const common = { name: d.name, kind: d.kind, description: d.description ?? null, approval: d.approval, params: d.params, source: d.source };
  if (d.kind === 'command') return { ...common, argv: d.argv, cwd: d.cwd ?? null, timeoutS: d.timeoutS };
  if (d.kind === 'webhook') return { ...common, method: d.method, url: d.url, headers: Object.keys(d.headers), timeoutS: d.timeoutS };
  return { ...common, operation: d.operation };
}

const runBody = z.strictObject({
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).default({}),
  deployId: z.string().min(1).max(64).optional(),
  /** Answer when the run has finished (up to waitS seconds) instead of at once. */
  wait: z.boolean().default(false),
  waitS: z.number().int().min(1).max(600).default(60),
});
const noteBody = z.strictObject({ note: z.string().max(2000).optional() });

export function registerActionRoutes(api: FastifyInstance, actions: ActionService): void {
  api.get('/api/actions', () => {
    const c = actions.catalog();
    return { actions: c.actions.map(publicAction), errors: c.errors };
  });
  api.get('/api/actions/runs', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest(`parameter 'limit': expected an integer from 1 to 1000`);
    const runs = await actions.listRuns({ action: q.action, status: q.status, deployId: q.deployId, limit });
    return { runs: seesDetail(req) ? runs : runs.map(withoutDetail) };
  });
  api.get('/api/actions/runs/:id', async (req: IdParams) => {
    const run = await actions.get(req.params.id);
    return seesDetail(req) ? run : withoutDetail(run);
  });
  api.post('/api/actions/runs/:id/approve', async (req: IdParams) => actions.approve(actorOf(req), req.params.id, parseBody(noteBody, req.body, 'body').note));
  api.post('/api/actions/runs/:id/deny', async (req: IdParams) => actions.deny(actorOf(req), req.params.id, parseBody(noteBody, req.body, 'body').note));
  api.get('/api/actions/:name', (req: NameParams) => publicAction(actions.definition(req.params.name)));
  api.post('/api/actions/:name/runs', async (req: NameParams, reply) => {
    const body = parseBody(runBody, req.body, 'run request');
    const input = Object.fromEntries(Object.entries(body.params).filter(([, v]) => v !== null));
    const { run } = await actions.start(req.params.name, input, actorOf(req), { deployId: body.deployId });
    if (!body.wait || run.status === 'pending_approval') return reply.code(202).send(run);
    const done = await actions.waitFor(run.id, body.waitS * 1000);
    return reply.code(done.status === 'running' ? 202 : 200).send(done);
  });
}
