/**
 * REST API of the deploys pillar (inside the bearer-token scope):
 * `POST /api/deploys`, `GET /api/deploys`, `GET /api/deploys/:id` (with its verification),
 * `POST /api/deploys/:id/verify` and `GET /api/deploys/:id/verification` (long poll with `waitS`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError, AppError, unauthorized } from '../core/app-error.js';
import { int, oneOf, str, timeUs, type Query } from '../http/params.js';
import { parseBody } from '../core/parse-body.js';
import type { DeployService } from './service.js';

type IdParams = FastifyRequest<{ Params: { id: string } }>;

const text = (max: number) => z.string().trim().min(1).max(max);
const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: 'expected an ISO 8601 time' })
  .transform((v) => new Date(Date.parse(v)).toISOString());

/**
 * What a caller may say about a deploy. Not `actor` (always the authenticated caller), not
 * `previousVersion` (tightloop works it out; a rollback restores only a version tightloop saw
 * serving healthily: DeployService.rollbackTarget), not `source` beyond api/cli (rollout,
 * rollback and implicit records are tightloop's own). Unknown keys are refused (400).
 */
const recordBody = z.object({
  service: text(200),
  version: text(200),
  environment: text(100).optional(),
  commit: text(100).nullish(),
  commitTime: isoTime.nullish(),
  url: z.string().url().max(2000).nullish(),
  source: z.enum(['api', 'cli']).optional(),
  rollbackOf: text(100).nullish(),
  verify: z.boolean().optional(),
  startedAt: isoTime.optional(),
}).strict();

const verifyBody = z.object({ maxDurationS: z.number().positive().max(86_400).optional() }).strict();

export function registerDeployRoutes(api: FastifyInstance, deploys: DeployService): void {
  api.post('/api/deploys', async (req, reply) => {
    const input = parseBody(recordBody, req.body, 'deploy');
    // The role hook (http/roles.ts: member) has authenticated the caller; the actor is who called.
    const actor = req.principal?.userName;
    if (actor === undefined) throw unauthorized();
    const deploy = await deploys.record({ ...input, actor });
    return reply.code(201).send({ ...deploy, verification: await deploys.verification(deploy.id) });
  });

  api.get('/api/deploys', async (req) => {
    const q = req.query as Query;
    const nowUs = Date.now() * 1000;
    const iso = (name: string): string | undefined => {
      const us = timeUs(q, name, nowUs);
      return us === undefined ? undefined : new Date(us / 1000).toISOString();
    };
    const status = oneOf(q, 'status', ['started', 'verifying', 'passed', 'failed', 'inconclusive', 'rolled_back'] as const);
    return {
      deploys: await deploys.list({
        service: str(q, 'service'), environment: str(q, 'environment'), version: str(q, 'version'), status,
        from: iso('from'), to: iso('to'), limit: int(q, 'limit', 1, 1000),
      }),
    };
  });

  api.get('/api/deploys/:id', async (req: IdParams) => {
    const deploy = await deploys.get(req.params.id);
    // rollbackTarget: what a rollback of this deploy would restore (null: nothing seen healthy before it).
    return { ...deploy, verification: await deploys.verification(deploy.id), rollbackTarget: await deploys.rollbackTarget(deploy) };
  });

  api.post('/api/deploys/:id/verify', async (req: IdParams, reply) => {
    const body = parseBody(verifyBody, req.body, 'verify request');
    const deploy = await deploys.get(req.params.id);
    return reply.code(202).send(await deploys.startVerification(deploy, body.maxDurationS));
  });

  api.get('/api/deploys/:id/verification', async (req: IdParams) => {
    const q = req.query as Query;
    const waitS = int(q, 'waitS', 0, 60) ?? 0;
    await deploys.get(req.params.id);
    if (waitS > 0) {
      try {
        return await deploys.waitForVerdict(req.params.id, waitS * 1000);
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'verification_pending')) throw err;
      }
    }
    const v = await deploys.verification(req.params.id);
    if (v === null) throw apiError('not_verified', `deploy ${req.params.id} has no verification`);
    return v;
  });
}
