/**
 * REST API of progressive deploys and the local actuator (inside the bearer-token scope).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { badRequest } from '../../core/app-error.js';
import { actorOf } from '../actions/routes.js';
import type { LocalActuator } from './local-actuator.js';
import type { RolloutManager } from './rollout.js';

const startBody = z.strictObject({
  service: z.string().min(1).max(128),
  version: z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'letters, digits, ".", "_", "+", "-"'),
  environment: z.string().min(1).max(128).optional(),
  commit: z.string().max(128).nullable().optional(),
  commitTime: z.string().max(64).nullable().optional(),
  url: z.string().max(2048).nullable().optional(),
  steps: z.array(z.number().int().min(1).max(100)).min(1).max(20).optional()
    .refine((s) => s === undefined || (s.every((w, i) => i === 0 || w > s[i - 1]) && s[s.length - 1] === 100), 'steps must rise and end at 100'),
  verifyMaxDurationS: z.number().positive().max(86400).optional(),
  /** Answer when the rollout has ended (up to waitS) instead of at once. */
  wait: z.boolean().default(false),
  waitS: z.number().int().min(1).max(3600).default(600),
});

export function registerRolloutRoutes(api: FastifyInstance, rollouts: RolloutManager, actuator: LocalActuator | undefined): void {
  api.post('/api/deploys/rollouts', async (req, reply) => {
    const r = startBody.safeParse(req.body ?? {});
    if (!r.success) throw badRequest(`invalid rollout: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const { wait, waitS, ...input } = r.data;
    const started = await rollouts.start(input, actorOf(req));
    if (!wait) return reply.code(202).send(started);
    const ended = await Promise.race([rollouts.wait(started.id), new Promise<undefined>((res) => {
      setTimeout(() => res(undefined), waitS * 1000).unref();
    })]);
    const now = ended ?? rollouts.get(started.id);
    return reply.code(now.status === 'running' ? 202 : 200).send(now);
  });
  api.get('/api/deploys/rollouts', () => ({ rollouts: rollouts.list() }));
  api.get('/api/deploys/rollouts/:id', (req: FastifyRequest<{ Params: { id: string } }>) => rollouts.get(req.params.id));
  api.get('/api/local-services', () => ({ services: actuator?.status() ?? [] }));
}
