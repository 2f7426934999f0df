import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import pino from 'pino';
import { verifyToken } from '../auth/index.js';
import { AppError, apiError } from '../core/app-error.js';
import { openStateStore, parseStateLocation, type StateStore } from '../state/index.js';
import { ClusterNode, NODE_ROLES, singleNodeView, type ClusterView, type LeaseName, type NodeRole } from '../state/cluster.js';
import { roleAtLeast } from './roles.js';
import type { ServerConfig } from './config.js';
import { startServer, type RunningServer, type ServerOptions } from './server.js';

/**
 * `tightloop up` on a shared PostgreSQL state database: one ACTIVE node, the others STANDBY
 * (docs/cluster.md says why). The node holding the `active` lease runs every pillar (API,
 * ingest, gateway, worker); a standby keeps only a heartbeat and a small HTTP listener that
 * answers `/api/health`, `/api/health/active` (503, for load balancer checks) and
 * `/api/cluster`, and 503 `node_standby` with `Retry-After` to everything else. When the active
 * node dies, a standby takes the lease within TTL + one heartbeat (8 s by default) and starts
 * the full server on the same ports.
 */

export const ACTIVE_LEASE: LeaseName = 'active';

/** GET /api/cluster and GET /api/health/active on the full server (the active node, or a node alone on SQLite). */
export function registerClusterRoutes(api: FastifyInstance, view: () => Promise<ClusterView>): void {
  api.get('/api/cluster', async () => await view());
}

/** GET /api/health/active outside the API plugin (public): the full server is always active. */
export function registerActiveCheck(app: FastifyInstance): void {
  app.get('/api/health/active', async () => ({ active: true }));
}

export function singleView(id: string, roles: readonly NodeRole[], url: () => string, startedMs: number): () => Promise<ClusterView> {
  return () => Promise.resolve(singleNodeView(id, roles, url(), startedMs));
}

/**
 * The roles a node may run (`--role`), checked before anything starts. While telemetry is each
 * node's embedded DuckDB store, `api`, `ingest` and `worker` go together: telemetry can be
 * queried and evaluated only where it was ingested, so a node that ingests without serving the
 * API or evaluating rules, or one that serves or evaluates without ingesting, would split one
 * service's data between nodes and show or judge an empty store without saying so. `gateway`
 * is optional; the gateway alone is refused (its grants, approvals and audit trail are
 * administered through the API, and one node is active per state database).
 */
export function checkRoles(roles: readonly string[]): NodeRole[] {
  const set = new Set(roles.map((r) => r.trim()).filter((r) => r !== ''));
  for (const r of set) {
    if (!(NODE_ROLES as readonly string[]).includes(r)) throw apiError('role_invalid', `unknown role '${r}' (expected a comma list of ${NODE_ROLES.join(', ')})`);
  }
  if (set.size === 0) throw apiError('role_invalid', 'no role given');
  const telemetry = (['api', 'ingest', 'worker'] as const).filter((r) => set.has(r));
  if (telemetry.length === 0) {
    throw apiError('roles_incoherent', `--role ${[...set].join(',')}: the gateway alone is not supported: its grants, approvals and audit trail are administered through the API of the active node (add api,ingest,worker; docs/cluster.md)`);
  }
  if (telemetry.length !== 3) {
    const missing = (['api', 'ingest', 'worker'] as const).filter((r) => !set.has(r));
    throw apiError('roles_split_telemetry', `--role ${[...set].join(',')}: api, ingest and worker go together (missing: ${missing.join(', ')}): one node is active at a time and runs them all, and with the embedded DuckDB store telemetry is queried and evaluated only on the node that ingested it, so splitting them would serve or judge an empty store (docs/cluster.md)`);
  }
  return NODE_ROLES.filter((r) => set.has(r));
}

export interface RunningNode {
  /** The node's HTTP URL (the same port before and after it becomes active). */
  readonly url: string;
  readonly port: number;
  /** Undefined on SQLite (a node alone). */
  readonly cluster: ClusterNode | undefined;
  /** The full server while this node is active, else undefined. */
  active(): RunningServer | undefined;
  /** Resolves when this node becomes active (at once on SQLite or when it takes the lease at start). */
  readonly whenActive: Promise<RunningServer>;
  /** Stops the server or the standby listener, gives the lease up, leaves the cluster. */
  close(): Promise<void>;
}

export interface NodeOptions extends ServerOptions {
  /**
   * The active node lost its lease (PostgreSQL unreachable past the TTL, or another node took
   * it): the server has been stopped (fail closed). `tightloop up` exits 75 so a supervisor
   * restarts it as a standby. Default: logged.
   */
  onLeaseLost?: (reason: string) => void;
  /** Lease timing (tests shorten it). */
  timing?: { heartbeatMs?: number; leaseMs?: number; marginMs?: number };
}

/** Starts a node: the full server on SQLite; on PostgreSQL, active or standby (see above). */
export async function startNode(config: ServerConfig, logger?: Logger, options: NodeOptions = {}): Promise<RunningNode> {
  const log = logger ?? pino({ level: config.logLevel });
  const location = parseStateLocation(config.stateUrl, config.dataDir);
  checkRoles(config.roles);
  if (location.dialect === 'sqlite') {
    const server = await startServer(config, log, options);
    return { url: server.url, port: server.port, cluster: undefined, active: () => server, whenActive: Promise.resolve(server), close: () => server.close() };
  }

  // A small pool of its own: heartbeats must not queue behind the server's queries.
  const state = await openStateStore({ ...location, maxConnections: 2, migrations: (await import('./state-migrations.js')).SERVER_STATE_MIGRATIONS,
    onBackgroundError: (err: Error) => log.warn({ err }, 'cluster: idle state connection failed') });
  const roles = checkRoles(config.roles);
  let url = '';
  const cluster = new ClusterNode({ db: state.db, roles, url: () => url, log, timing: options.timing });
  let server: RunningServer | undefined;
  let standby: FastifyInstance | undefined;
  let port = config.port;
  let closing: Promise<void> | undefined;
  let settle!: { resolve: (s: RunningServer) => void; reject: (e: Error) => void };
  const whenActive = new Promise<RunningServer>((resolve, reject) => { settle = { resolve, reject }; });
  whenActive.catch(() => undefined);
  let activation: Promise<void> = Promise.resolve();

  const activate = async (token: number): Promise<void> => {
    if (closing !== undefined) throw new Error('node is stopping');
    if (standby !== undefined) {
      await standby.close();
      standby = undefined;
    }
    log.info({ node: cluster.id, token }, 'cluster: this node is now active; starting every pillar');
    server = await startServer({ ...config, port }, log, { ...options, cluster: { node: cluster, view: () => cluster.view() } });
    url = server.url;
    settle.resolve(server);
  };

  await cluster.join();
  try {
    // A standby that takes over must serve what the active node served: one role set per cluster.
    const other = (await cluster.liveRoles()).find((r) => r !== roles.join(','));
    if (other !== undefined) {
      throw apiError('roles_mismatch', `--role ${roles.join(',')}: the other nodes on this state database run ${other}; every node of one cluster runs the same roles (a standby that takes over serves what the active node served)`);
    }
    await cluster.want(ACTIVE_LEASE, {
      onAcquired: (token) => (activation = activate(token)),
      onLost: (reason) => {
        // Fail closed: stop serving at once; the node does not compete again until restarted.
        void activation.catch(() => undefined).then(async () => {
          await server?.close();
          server = undefined;
          log.error({ node: cluster.id, reason }, 'cluster: this node is no longer active and stopped its server; restart it to rejoin as a standby');
          options.onLeaseLost?.(reason);
        });
      },
    });
    // A start that fails on this node's own configuration (a bad rules.yaml, a busy port) stops
    // the start, as on a node alone; the lease was given up already.
    await activation;
  } catch (err) {
    await cluster.leave();
    await state.close();
    throw err;
  }
  if (server === undefined) {
    standby = buildStandbyApp(log, state, cluster);
    await standby.listen({ host: config.host, port: config.port });
    const address = standby.server.address();
    port = typeof address === 'object' && address !== null ? address.port : config.port;
    const hostForUrl = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
    url = `http://${hostForUrl}:${port}`;
    log.info({ node: cluster.id, url }, 'cluster: another node is active; this node is a standby');
  }

  return {
    get url() { return url; },
    get port() { return port; },
    cluster,
    active: () => server,
    whenActive,
    close() {
      closing ??= (async () => {
        await activation.catch(() => undefined);
        await standby?.close();
        await server?.close();
        await cluster.leave();
        await state.close();
        settle.reject(apiError('node_stopped', 'the node stopped before it became active'));
      })();
      return closing;
    },
  };
}

/** The standby's listener: health, the cluster view, and 503 for everything else. */
function buildStandbyApp(log: Logger, state: StateStore, cluster: ClusterNode): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = log;
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true });
  const standbyError = () => apiError('node_standby', 'this tightloop node is a standby: another node is active on this state database (GET /api/cluster); retry through the load balancer', { retryAfterS: 2 });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof AppError) {
      if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
      return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    }
    return reply.code(err.statusCode ?? 500).send({ error: { code: 'internal', message: err.message } });
  });
  app.get('/api/health', async () => ({ status: 'standby', node: cluster.id }));
  app.get('/api/health/active', async (_req, reply) => reply.code(503).header('retry-after', '2').send({ active: false, node: cluster.id }));
  app.get('/api/cluster', async (req) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const p = m === null ? null : await verifyToken(state.db, m[1]);
    if (p === null) throw apiError('unauthorized', m === null ? 'missing bearer token (Authorization: Bearer <token>)' : 'invalid, expired or revoked token');
    if (!roleAtLeast(p.role, 'viewer')) throw apiError('forbidden', 'GET /api/cluster needs the viewer role');
    return await cluster.view();
  });
  app.setNotFoundHandler(() => { throw standbyError(); });
  return app;
}
