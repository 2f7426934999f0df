import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError, apiError, clientError, unauthorized } from '../core/app-error.js';
import { isConnectionError } from '../state/postgres.js';
import { metrics, METRICS_CONTENT_TYPE } from '../core/metrics.js';
import type { TelemetryBatches, TelemetryStore } from '../telemetry/index.js';
import { ingestCounters } from '../otlp/index.js';
import { registerApiRoutes } from './api-routes.js';
import { FORWARDED_PUBLIC } from './cluster-forward.js';
import { DEFAULT_OTLP_CORS_ORIGINS, otlpCorsPolicy } from './cors.js';
import { registerOtlpRoutes } from './otlp-routes.js';
import { installRoleModel } from './roles.js';
import { routesPlugin } from './plugin.js';

/** Who made an API call. */
export interface Principal {
  userId: string;
  userName: string;
  role: string;
}

export interface AppDeps {
  logger: Logger;
  store: TelemetryStore;
  submit: (batches: TelemetryBatches) => Promise<void>;
  authenticate: (token: string) => Promise<Principal | null>;
  /** Ingest without a token is allowed only while the server listens on loopback. */
  ingestNeedsToken: boolean;
  maxBodyBytes: number;
  /** Browser origins allowed to send OTLP (`--cors-origins`, cors.ts); default: loopback pages. */
  corsOrigins?: readonly string[];
  /** False until the stores are open; /api/health answers 503 meanwhile. */
  isReady: () => boolean;
  /**
   * Where the admin token file is, relative to the server's working directory (adminTokenHint()),
   * named by /api/health for the console's login page; undefined when the data dir is elsewhere.
   */
  adminTokenFile?: string;
  /** Pillar plugins registered at the root, outside the bearer-token hook (e.g. Sentry ingest, which authenticates by project key). */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
  /** Hooks on the root, before any route (e.g. publishing API writes to other nodes, http/cluster-events.ts). */
  rootHooks?: (app: FastifyInstance) => void;
  /** Pillar routes registered inside the bearer-token API plugin. */
  apiRoutes?: ((api: FastifyInstance) => void)[];
  /** Errors raised in a trace, returned with GET /api/traces/:id. */
  errorsForTrace?: (traceId: string) => Promise<unknown[]>;
  /** Called after an OTLP request's batches are committed (errors/ finds exceptions in them). */
  onIngested?: (batches: TelemetryBatches) => Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h === undefined) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m === null ? null : m[1];
}

export function buildApp(deps: AppDeps): FastifyInstance {
  // Typed as Fastify's logger interface (not pino's Logger), so the instance's type is the plain FastifyInstance.
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance,
    // Per-request logs would cost more than an OTLP request's decode; errors are logged instead.
    logController: new LogController({ disableRequestLogging: true }),
    // The API's own bodies are small; OTLP routes set their own limit.
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
  });

  const authorize = async (req: FastifyRequest): Promise<void> => {
    const token = bearer(req);
    if (token === null) throw unauthorized('missing bearer token (Authorization: Bearer <token>)');
    const principal = await deps.authenticate(token);
    if (principal === null) throw unauthorized('invalid, expired or revoked token');
    req.principal = principal;
  };

  // Before any route: every route must have a required role (roles.ts), enforced by one hook.
  installRoleModel(app, deps.authenticate);
  deps.rootHooks?.(app);

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof AppError) {
      if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
      return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    }
    if (isConnectionError(err)) {
      // The PostgreSQL state database went away (e.g. mid-failover): the client retries.
      req.log.warn({ err }, 'request failed: the state database cannot be reached');
      const e = apiError('state_unavailable', 'the state database cannot be reached; retry after Retry-After seconds');
      return reply.code(e.status).header('retry-after', '2').send({ error: { code: e.code, message: e.message } });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own (FST_ERR_CTP_INVALID_MEDIA_TYPE, a body that is not JSON): a registered code.
      const e = clientError(status, err.message);
      return reply.code(e.status).send({ error: { code: e.code, message: e.message } });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: { code: 'internal', message: 'internal error' } });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));

  app.get('/api/health', async (_req, reply) => {
    if (!deps.isReady()) return reply.code(503).send({ status: 'starting' });
    // Degraded still serves (200); the list says what failed last (src/core/metrics.ts).
    const degraded = metrics.degradedComponents();
    const hint = deps.adminTokenFile === undefined ? {} : { adminTokenFile: deps.adminTokenFile };
    return degraded.length === 0 ? { status: 'ok', ingest: { ...ingestCounters }, ...hint }
      : { status: 'degraded', degraded, ingest: { ...ingestCounters }, ...hint };
  });

  // Prometheus text format 0.0.4; a viewer token (roles.ts), e.g. `authorization` in scrape config.
  metrics.collect('tightloop_ingest_truncated_values_total', 'Ingested strings cut to a limit.', 'counter',
    () => [{ labels: {}, value: ingestCounters.truncatedValues }]);
  metrics.collect('tightloop_ingest_dropped_items_total', 'Ingested attributes, events and links dropped past the count limits.', 'counter',
    () => [{ labels: {}, value: ingestCounters.droppedItems }]);
  metrics.collect('tightloop_ingest_invalid_utf8_total', 'Ingested strings or bodies whose invalid UTF-8 was replaced.', 'counter',
    () => [{ labels: {}, value: ingestCounters.invalidUtf8 }]);
  app.get('/metrics', async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(metrics.render()));

  // Authentication and the role check of these routes: the role model's onRequest hook.
  app.register(routesPlugin((api) => {
    registerApiRoutes(api, deps.store, { errorsForTrace: deps.errorsForTrace });
    for (const routes of deps.apiRoutes ?? []) routes(api);
  }));

  for (const plugin of deps.plugins ?? []) app.register(plugin);

  app.register(routesPlugin((ingest) => {
    registerOtlpRoutes(ingest, {
      maxBodyBytes: deps.maxBodyBytes,
      submit: deps.submit,
      onIngested: deps.onIngested,
      // On loopback ingest needs no token, unless a node bound beyond loopback forwarded it.
      authorize: deps.ingestNeedsToken ? authorize : async (req) => { if (req.headers[FORWARDED_PUBLIC] !== undefined) await authorize(req); },
      cors: otlpCorsPolicy(deps.corsOrigins ?? DEFAULT_OTLP_CORS_ORIGINS),
    });
  }));

  return app;
}
