/**
 * REST API of the detect pillar (inside the bearer-token scope): `/api/rules` (CRUD),
 * `/api/alerts` (open alerts, history), `/api/silences` (create, list, expire).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../core/app-error.js';
import { alertHistory, queryAlerts } from './alert.js';
import type { DetectEngine } from './engine.js';
import { parseRuleSpec } from './rule-book.js';
import { parseSilenceInput } from './silences.js';

type IdParams = FastifyRequest<{ Params: { id: string } }>;
const ALERT_STATES = new Set(['pending', 'firing', 'resolved']);

function limitOf(q: Record<string, unknown>): number {
  const raw = q.limit;
  if (raw === undefined) return 100;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw badRequest(`parameter 'limit': expected an integer from 1 to 1000`);
  return n;
}

export function registerDetectRoutes(api: FastifyInstance, engine: DetectEngine): void {
  api.get('/api/rules', () => ({ rules: engine.rules.list() }));
  api.get('/api/rules/:id', (req: IdParams) => engine.rules.get(req.params.id));
  // Bodies are validated here, at the edge (zod: 400 naming each bad field); the rule book and the
  // silence book receive typed values.
  api.post('/api/rules', async (req, reply) => reply.code(201).send(await engine.rules.createSpec(parseRuleSpec(req.body), req.body)));
  api.put('/api/rules/:id', async (req: IdParams) => engine.rules.updateSpec(req.params.id, parseRuleSpec(req.body), req.body));
  api.delete('/api/rules/:id', async (req: IdParams, reply) => {
    await engine.rules.remove(req.params.id);
    return reply.code(204).send();
  });

  api.get('/api/alerts', async (req) => {
    const q = req.query as Record<string, unknown>;
    const state = typeof q.state === 'string' ? q.state : undefined;
    if (state !== undefined && state !== 'all' && !ALERT_STATES.has(state)) throw badRequest(`parameter 'state': pending, firing, resolved or all`);
    await engine.flushWrites();
    const alerts = await queryAlerts(engine.db, { state: state === 'all' ? undefined : state }, limitOf(q));
    return {
      alerts: alerts.map((a) => {
        const live = engine.openAlerts().find((o) => o.id === a.id);
        return { ...a, value: live?.value ?? a.value, muted: live ? engine.dispatcher.muted(live) ?? null : null };
      }),
    };
  });
  api.get('/api/alerts/:id', async (req: IdParams) => {
    await engine.flushWrites();
    const [alert] = await queryAlerts(engine.db, { id: req.params.id }, 1);
    if (alert === undefined) throw notFound(`alert ${req.params.id} not found`);
    return { ...alert, history: await alertHistory(engine.db, alert.id) };
  });

  api.get('/api/silences', (req) => {
    const q = req.query as Record<string, unknown>;
    return { silences: engine.silences.list(q.all === 'true' || q.all === '1') };
  });
  api.post('/api/silences', async (req, reply) => {
    const s = await engine.silences.addParsed(parseSilenceInput(req.body), req.principal?.userName ?? 'unknown');
    return reply.code(201).send(s);
  });
  api.delete('/api/silences/:id', async (req: IdParams) => engine.silences.expire(req.params.id));
}
