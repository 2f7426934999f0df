import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import pino from 'pino';
import { verifyToken } from '../auth/index.js';
import { AppError, apiError } from '../core/app-error.js';
import { isConnectionError, openStateStore, parseStateLocation, type StateStore } from '../state/index.js';
import { ClusterNode, DEFAULT_TIMING, NODE_ROLES, singleNodeView, type ClusterView, type LeaseName, type NodeRole } from '../state/cluster.js';
import { roleAtLeast } from './roles.js';
import { subscribeCaches } from './cluster-events.js';
import { PostgresBus, type BusEvent } from '../state/bus.js';
import { isLoopback, type ServerConfig } from './config.js';
import { openGateway, startServer, type RunningServer, type ServerOptions } from './server.js';
import { checkAdvertiseUrl, registerForwarding } from './cluster-forward.js';
import type { Gateway } from '../gateway/index.js';

/**
 * `tightloop up` on a shared PostgreSQL state database (docs/cluster.md). Every node serves:
 * its PostgreSQL gateway listener (one per node, kept across changes of lease holder, so its
 * sessions outlive a failover) and its HTTP port. The node holding the `active` lease runs the
 * full server: the API, ingest and the work that must happen once (rule evaluation and alerts,
 * notifications, verification, rollouts, incidents, retention). The others answer
 * `/api/health`, `/api/health/active` (503, for load balancer checks) and `/api/cluster`
 * themselves and forward every other request to the holder (http/cluster-forward.ts), so the
 * API, the console and ingest are answered by any node while their work and the telemetry
 * store stay on one. When the holder dies, another node takes the lease within TTL + one
 * heartbeat (8 s by default) and starts the full server on its HTTP port. A holder that loses
 * its lease (PostgreSQL unreachable, or another node took it) stops its server, answers 503
 * (`state_unavailable` while PostgreSQL cannot be reached) or forwards on the same port, and
 * competes again: it recovers by itself.
 */

export const ACTIVE_LEASE: LeaseName = 'active';

/** GET /api/cluster and GET /api/health/active on the full server (the active node, or a node alone on SQLite). */
export function registerClusterRoutes(api: FastifyInstance, view: () => Promise<ClusterView>): void {
  api.get('/api/cluster', async () => await view());
}

/** GET /api/health/active outside the API plugin (public): the full server is always active. */
export function registerActiveCheck(app: FastifyInstance): void {
  app.get('/api/health/active', () => ({ active: true }));
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
  /** The PostgreSQL gateway's port (every node serves it; undefined without the `gateway` role). */
  readonly gatewayPort: number | undefined;
  /** Undefined on SQLite (a node alone). */
  readonly cluster: ClusterNode | undefined;
  /** The full server while this node is active, else undefined. */
  active(): RunningServer | undefined;
  /** Resolves when this node first becomes active (at once on SQLite or when it takes the lease at start). */
  readonly whenActive: Promise<RunningServer>;
  /** Stops the server or the standby listener, gives the lease up, leaves the cluster. */
  close(): Promise<void>;
}

export interface NodeOptions extends ServerOptions {
  /**
   * The active node lost its lease and could not stop its work for sure (its server's close
   * failed): it no longer competes for the lease; `tightloop up` exits 75 so a supervisor
   * restarts it. A node that stopped cleanly after losing its lease (PostgreSQL unreachable past
   * the TTL, or another node took it) stays up as a standby and does not call this.
   */
  onLeaseLost?: (reason: string) => void;
  /** Called every time this node becomes active (the first time, and after each takeover). */
  onActive?: (server: RunningServer) => void;
  /** Lease timing (tests shorten it). */
  timing?: { heartbeatMs?: number; leaseMs?: number; marginMs?: number };
}

/** Starts a node: the full server on SQLite; on PostgreSQL, active or standby (see above). */
export async function startNode(config: ServerConfig, logger?: Logger, options: NodeOptions = {}): Promise<RunningNode> {
  const log = logger ?? pino({ level: config.logLevel });
  const location = parseStateLocation(config.stateUrl, config.dataDir);
  checkRoles(config.roles);
  const advertised = checkAdvertiseUrl(location.dialect, config.host, config.cluster.advertiseUrl);
  if (location.dialect === 'sqlite') {
    const server = await startServer(config, log, options);
    options.onActive?.(server);
    return { url: server.url, port: server.port, gatewayPort: server.gatewayPort, cluster: undefined, active: () => server, whenActive: Promise.resolve(server), close: () => server.close() };
  }

  // The margin keeps its share of the lease when the lease is shortened (TIGHTLOOP_CLUSTER_LEASE_MS).
  const timing = { ...DEFAULT_TIMING, ...config.cluster, marginMs: Math.min(DEFAULT_TIMING.marginMs, Math.floor(config.cluster.leaseMs / 6)), ...options.timing };
  // A small pool of its own: heartbeats must not queue behind the server's queries. Bounded
  // waits: a partitioned PostgreSQL fails a heartbeat within the lease time, never hangs it.
  const state = await openStateStore({ ...location, maxConnections: 3, migrations: (await import('./state-migrations.js')).SERVER_STATE_MIGRATIONS,
    connectTimeoutMs: timing.leaseMs, queryTimeoutMs: timing.leaseMs,
    onBackgroundError: (err: Error) => log.warn({ err }, 'cluster: idle state connection failed') });
  const roles = checkRoles(config.roles);
  let url = '';
  const cluster = new ClusterNode({ db: state.db, roles, url: () => url, log, timing });
  // Events from the other nodes' API writes (state/bus.ts); this node's server publishes through it.
  const bus = new PostgresBus({ db: state.db, connectionString: location.connectionString, node: cluster.id, log });
  const unsubscribe = subscribeCaches(bus, state.db);
  // The node's own pool for what it serves whether or not it holds the lease (the gateway).
  let serving: StateStore | undefined;
  let gateway: Gateway | undefined;
  let stopForwarding: (() => void) | undefined;
  let offGateway: (() => void) | undefined;
  let server: RunningServer | undefined;
  let standby: FastifyInstance | undefined;
  let port = config.port;
  let started = false;
  let closing: Promise<void> | undefined;
  let settle!: { resolve: (s: RunningServer) => void; reject: (e: Error) => void };
  const whenActive = new Promise<RunningServer>((resolve, reject) => { settle = { resolve, reject }; });
  whenActive.catch(() => undefined); // marks the rejection handled: whoever awaits whenActive gets it
  let activation: Promise<void> = Promise.resolve();
  let deactivation: Promise<void> = Promise.resolve();

  const listenStandby = async (): Promise<void> => {
    const app = buildStandbyApp(log, state, cluster);
    stopForwarding?.();
    stopForwarding = registerForwarding(app, { self: cluster.id, selfUrl: () => url, holder: () => cluster.holder(ACTIVE_LEASE), reachable: () => cluster.reachable, publicBind: !isLoopback(config.host), notServing: () => notServing(cluster), log });
    await app.listen({ host: config.host, port });
    standby = app;
    const address = app.server.address();
    port = typeof address === 'object' && address !== null ? address.port : port;
    const hostForUrl = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
    url = advertised ?? `http://${hostForUrl}:${port}`;
  };

  const activate = async (token: number): Promise<void> => {
    await deactivation.catch(() => undefined); // logged where it failed (deactivate): only its end matters here
    if (closing !== undefined) throw new Error('node is stopping');
    if (standby !== undefined) {
      await standby.close();
      standby = undefined;
      stopForwarding?.();
      stopForwarding = undefined;
    }
    log.info({ node: cluster.id, token }, 'cluster: this node is now active; starting every pillar');
    server = await startServer({ ...config, port }, log, { ...options, cluster: { node: cluster, view: () => cluster.view(), bus, gateway } });
    url = advertised ?? server.url;
    settle.resolve(server);
    options.onActive?.(server);
  };

  /**
   * The lease is lost (PostgreSQL unreachable past the TTL, another node took it, or the start
   * failed): stop every pillar at once (fail closed), then answer as a standby on the same port
   * (503 `state_unavailable` while PostgreSQL cannot be reached, `node_standby` once it can) and
   * compete again. A server that cannot be stopped for sure ends the competition (onLeaseLost).
   */
  const deactivate = async (reason: string): Promise<void> => {
    await activation.catch(() => undefined); // logged where it failed (the lease's onAcquired): only its end matters here
    const s = server;
    server = undefined;
    if (s !== undefined) {
      try {
        await s.close();
      } catch (err) {
        log.error({ err, node: cluster.id, reason }, 'cluster: this node lost its lease and could not stop its server cleanly; it no longer competes (restart it)');
        options.onLeaseLost?.(reason);
        throw err;
      }
    }
    if (!started || closing !== undefined) return;
    if (standby === undefined) await listenStandby();
    log.warn({ node: cluster.id, reason, url }, 'cluster: this node is no longer active; its work stopped, it answers 503 and competes for the lease again');
  };

  await cluster.join();
  try {
    await bus.start();
    // Every node serves the gateway, holder or not; the same listener across changes of holder.
    serving = await openStateStore({ ...location, migrate: false, onBackgroundError: (err: Error) => log.warn({ err }, 'state database: idle connection failed') });
    gateway = await openGateway(config, serving.db, log, options);
    offGateway = followAccess(bus, gateway, log);
    // A standby that takes over must serve what the active node served: one role set per cluster.
    const other = (await cluster.liveRoles()).find((r) => r !== roles.join(','));
    if (other !== undefined) {
      throw apiError('roles_mismatch', `--role ${roles.join(',')}: the other nodes on this state database run ${other}; every node of one cluster runs the same roles (a standby that takes over serves what the active node served)`);
    }
    await cluster.want(ACTIVE_LEASE, {
      onAcquired: (token) => (activation = activate(token)),
      onLost: (reason) => (deactivation = deactivate(reason)),
    });
    // A start that fails on this node's own configuration (a bad rules.yaml, a busy port) stops
    // the start, as on a node alone; the lease was given up already.
    await activation;
  } catch (err) {
    unsubscribe();
    offGateway?.();
    await gateway?.close();
    await serving?.close();
    await bus.close();
    await cluster.leave();
    await state.close();
    throw err;
  }
  started = true;
  if (server === undefined) {
    await listenStandby();
    log.info({ node: cluster.id, url }, 'cluster: another node is active; this node is a standby');
  }

  return {
    get url() { return url; },
    get port() { return port; },
    get gatewayPort() { return gateway?.port; },
    cluster,
    active: () => server,
    whenActive,
    close() {
      closing ??= (async () => {
        await activation.catch(() => undefined); // logged where it failed (the lease's onAcquired)
        await deactivation.catch(() => undefined); // logged where it failed (deactivate)
        await standby?.close();
        stopForwarding?.();
        await server?.close();
        offGateway?.();
        await gateway?.close();
        await serving?.close();
        unsubscribe();
        await bus.close();
        await cluster.leave();
        await state.close();
        settle.reject(apiError('node_stopped', 'the node stopped before it became active'));
      })();
      return closing;
    },
  };
}

/**
 * The node's gateway follows access changed through any other node: a grant or token revoked, a
 * user removed or demoted, a resource removed, a statement approved or denied. Its sessions are
 * checked at once (the 500 ms session watch is the safety net) and its statement approvals
 * re-read. This node's own writes took effect locally already.
 */
function followAccess(bus: PostgresBus, gateway: Gateway, log: Logger): () => void {
  const recheck = (e: BusEvent): void => {
    if (e.node === bus.node) return;
    gateway.recheck().catch((err: unknown) => log.error({ err, topic: e.topic }, 'gateway: re-checking sessions after another node\'s change failed; the session watch retries'));
  };
  const offs = (['gateway.access.changed', 'gateway.policy.changed', 'auth.changed'] as const).map((t) => bus.on(t, recheck));
  return () => { for (const off of offs) off(); };
}

/**
 * What a node that does not hold the lease cannot forward answers: `node_standby` when no node
 * holds it or the holder cannot be reached, `state_unavailable` while this node's heartbeats
 * cannot reach PostgreSQL (both with Retry-After).
 */
function notServing(cluster: ClusterNode): AppError {
  return cluster.reachable
    ? apiError('node_standby', 'this tightloop node does not hold the active lease and cannot reach the node that does (GET /api/cluster); retry, through the load balancer or later', { retryAfterS: 2 })
    : apiError('state_unavailable', 'this tightloop node cannot reach its PostgreSQL state database; it serves again by itself when PostgreSQL is back', { retryAfterS: 2 });
}

/** The listener of a node that is not active: health and the cluster view; registerForwarding adds the rest. */
function buildStandbyApp(log: Logger, state: StateStore, cluster: ClusterNode): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = log;
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof AppError) {
      if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
      return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    }
    if (isConnectionError(err)) return reply.code(503).header('retry-after', '2').send({ error: { code: 'state_unavailable', message: 'the state database cannot be reached' } });
    return reply.code(err.statusCode ?? 500).send({ error: { code: 'internal', message: err.message } });
  });
  app.get('/api/health', async (_req, reply) => (cluster.reachable ? { status: 'standby', node: cluster.id }
    : reply.code(503).header('retry-after', '2').send({ status: 'state_unavailable', node: cluster.id })));
  app.get('/api/health/active', async (_req, reply) => reply.code(503).header('retry-after', '2').send({ active: false, node: cluster.id }));
  app.get('/api/cluster', async (req) => {
    if (!cluster.reachable) throw notServing(cluster);
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const p = m === null ? null : await verifyToken(state.db, m[1]);
    if (p === null) throw apiError('unauthorized', m === null ? 'missing bearer token (Authorization: Bearer <token>)' : 'invalid, expired or revoked token');
    if (!roleAtLeast(p.role, 'viewer')) throw apiError('forbidden', 'GET /api/cluster needs the viewer role');
    return await cluster.view();
  });
  return app;
}
