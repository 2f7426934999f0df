import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { metrics } from '../core/metrics.js';
import { clearTokenCache } from '../auth/index.js';
import type { EventBus, EventTopic } from '../state/bus.js';
import type { Database } from '../state/index.js';
import type { Kysely } from 'kysely';

/**
 * Which state each API write changes, so the other nodes learn of it through the event bus
 * (src/state/bus.ts). One table for every write route: a write route without a topic is refused
 * when the server starts (the same fail-closed rule as the role table in roles.ts), so a new
 * route cannot change state other nodes cache without telling them. Ingest routes change
 * telemetry, not state, and are listed as `null`.
 */
export const WRITE_TOPICS: Readonly<Record<string, EventTopic | null>> = {
  'POST /v1/traces': null,
  'POST /v1/logs': null,
  'POST /v1/metrics': null,
  'POST /api/:projectId/envelope': null,
  'POST /api/:projectId/envelope/': null,
  'POST /api/:projectId/store': null,
  'POST /api/:projectId/store/': null,
  'POST /api/projects': 'errors.changed',
  'PATCH /api/errors/:groupId': 'errors.changed',
  'POST /api/rules': 'rules.changed',
  'PUT /api/rules/:id': 'rules.changed',
  'DELETE /api/rules/:id': 'rules.changed',
  'POST /api/silences': 'silences.changed',
  'DELETE /api/silences/:id': 'silences.changed',
  'POST /api/incidents/:id/ack': 'incidents.changed',
  'POST /api/incidents/:id/assign': 'incidents.changed',
  'POST /api/incidents/:id/resolve': 'incidents.changed',
  'POST /api/incidents/:id/notes': 'incidents.changed',
  'POST /api/deploys': 'deploys.changed',
  'POST /api/deploys/:id/verify': 'deploys.changed',
  'POST /api/deploys/rollouts': 'deploys.changed',
  'POST /api/actions/:name/runs': 'actions.changed',
  'POST /api/actions/runs/:id/approve': 'actions.changed',
  'POST /api/actions/runs/:id/deny': 'actions.changed',
  'POST /api/resources': 'gateway.policy.changed',
  'PUT /api/resources/:name/policy': 'gateway.policy.changed',
  'DELETE /api/resources/:name': 'gateway.policy.changed',
  'POST /api/access/grants': 'gateway.access.changed',
  'DELETE /api/access/grants/:id': 'gateway.access.changed',
  'POST /api/access/requests': 'gateway.access.changed',
  'POST /api/access/requests/:id/approve': 'gateway.access.changed',
  'POST /api/access/requests/:id/deny': 'gateway.access.changed',
  'POST /api/access/revoke/:id': 'gateway.access.changed',
  'POST /api/gateway/credentials': 'gateway.credentials.changed',
  'POST /api/users': 'auth.changed',
  'PATCH /api/users/:id': 'auth.changed',
  'DELETE /api/users/:id': 'auth.changed',
  'POST /api/tokens': 'auth.changed',
  'DELETE /api/tokens/:id': 'auth.changed',
};

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

let publishFailures = 0;
metrics.collect('tightloop_cluster_events_publish_failures_total', 'API writes whose event could not be written to the outbox (other nodes learn of them at their next refresh).', 'counter',
  () => [{ labels: {}, value: publishFailures }]);

/**
 * Publishes the topic of every successful API write, after the write and before the response
 * is sent (a client that got its answer can rely on the event being in the outbox). A failure
 * to publish is logged and counted; the write itself stands (it is committed).
 */
export function registerWriteEvents(app: FastifyInstance, bus: EventBus, log: Logger): void {
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (READS.has(method)) continue;
      const key = `${method} ${route.url}`;
      if (!(key in WRITE_TOPICS)) throw new Error(`route ${key} writes but has no event topic in src/http/cluster-events.ts (other nodes would not learn of it)`);
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (READS.has(req.method) || reply.statusCode >= 400) return payload;
    const topic = WRITE_TOPICS[`${req.method} ${req.routeOptions.url ?? ''}`];
    if (topic === undefined || topic === null) return payload;
    try {
      await bus.publish(topic, { method: req.method, route: req.routeOptions.url, params: req.params ?? {} });
    } catch (err) {
      publishFailures++;
      log.error({ err, topic }, 'event bus: publishing an API write failed; other nodes learn of it at their next refresh');
    }
    return payload;
  });
}

/** What a node does when another node's API changed state it caches. */
export function subscribeCaches(bus: EventBus, db: Kysely<Database>): () => void {
  // Verified tokens are cached (auth/verification-cache.ts): a revocation, a deleted user or a
  // changed role elsewhere clears them here, instead of waiting for the cache's TTL.
  return bus.on('auth.changed', () => clearTokenCache(db));
}
