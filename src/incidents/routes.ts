/**
 * REST API of the incidents pillar (inside the bearer-token scope): `/api/incidents` (list, the
 * story, ack / assign / resolve, notes) and `/api/loop-metrics` (MTTD/MTTA/MTTR and the DORA keys).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { int, str, timeRange, type Query } from '../http/params.js';
import { assignBody, noteBody, parseStatusFilter, resolveBody } from './inputs.js';
import { gatherLoopMetrics, tellStory, type StoryDeps } from './story.js';
import { seesDetail, storyWithoutDetail } from '../http/redact.js';

type IdReq = FastifyRequest<{ Params: { id: string } }>;

const actorOf = (req: FastifyRequest): string => req.principal?.userName ?? 'unknown';

export function registerIncidentRoutes(api: FastifyInstance, deps: StoryDeps): void {
  const svc = deps.incidents;
  api.get('/api/incidents', async (req) => {
    const q = req.query as Query;
    await svc.idle();
    return { incidents: await svc.list({ status: parseStatusFilter(str(q, 'status')), service: str(q, 'service'), limit: int(q, 'limit', 1, 1000) }) };
  });
  api.get('/api/incidents/:id', async (req: IdReq) => {
    const story = await tellStory(deps, req.params.id);
    return seesDetail(req) ? story : storyWithoutDetail(story); // viewers: metadata only (http/redact.ts)
  });
  api.post('/api/incidents/:id/ack', async (req: IdReq) => svc.acknowledge(req.params.id, actorOf(req)));
  api.post('/api/incidents/:id/assign', async (req: IdReq) => svc.assign(req.params.id, assignBody(req.body), actorOf(req)));
  api.post('/api/incidents/:id/resolve', async (req: IdReq) => svc.resolve(req.params.id, actorOf(req), resolveBody(req.body)));
  api.post('/api/incidents/:id/notes', async (req: IdReq) => svc.addNote(req.params.id, actorOf(req), noteBody(req.body)));
  api.get('/api/loop-metrics', async (req) => {
    const q = req.query as Query;
    const { fromUs, toUs } = timeRange(q, 30 * 86_400);
    return gatherLoopMetrics(deps, fromUs / 1000, toUs / 1000, str(q, 'service'));
  });
}
