import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { tightenDataDir } from '../core/data-dir.js';
import pino, { type Logger } from 'pino';
import { createUser, adminTokenHint, ensureAdmin, registerAuthRoutes, verifyToken } from '../auth/index.js';
import { DeployService, registerDeployRoutes, type DeployApi, type VerifyConfig } from '../deploys/index.js';
import { ActionService, registerActionRoutes } from '../deploys/actions/index.js';
import { LocalActuator, RolloutManager, loadServices, registerRolloutRoutes } from '../deploys/rollout/index.js';
import { DetectEngine, registerDetectRoutes, sendNotice, type DetectEvents } from '../detect/index.js';
import { openErrorsModule, type ErrorEvents } from '../errors/index.js';
import { gatewayApi, startGateway, type Gateway } from '../gateway/index.js';
import { IncidentService, registerIncidentRoutes } from '../incidents/index.js';
import { describeStateLocation, openStateStore, parseStateLocation, type Role, type StateStore } from '../state/index.js';
import type { Kysely } from 'kysely';
import { decodeRequest } from '../otlp/index.js';
import { ClickHouseTelemetryStore, DuckDbTelemetryStore, RetentionJob, TelemetryWriter, isClickHouseUrl } from '../telemetry/index.js';
import { buildApp } from './app.js';
import { consolePlugin } from './console.js';
import { registerConsoleApi } from './console-api.js';
import { LogTailHub } from './log-tail.js';
import { isLoopback, type ServerConfig } from './config.js';
import { registeredRoutes, type RegisteredRoute } from './roles.js';
import { SERVER_STATE_MIGRATIONS } from './state-migrations.js';
import { ClusterNode, type ClusterView } from '../state/cluster.js';
import { apiError } from '../core/app-error.js';
import { checkRoles, registerActiveCheck, registerClusterRoutes, singleView } from './cluster.js';
import { registerWriteEvents, subscribeCaches } from './cluster-events.js';
import { LocalBus, PostgresBus, type EventBus } from '../state/bus.js';
import { routesPlugin } from './plugin.js';

/** A running tightloop: what `tightloop up` starts and tests drive. */
export interface RunningServer {
  url: string;
  port: number;
  /** The admin token when this start created it (first start), else undefined. */
  adminToken: string | undefined;
  /** DSN of the default error-tracking project (Sentry SDKs), shown in the start banner. */
  defaultDsn: string;
  /** error.new_group / error.regressed, for modules that react to errors. */
  errorEvents: ErrorEvents;
  /** alert.fired / alert.resolved, for modules that react to alerts (incidents). */
  detectEvents: DetectEvents;
  /** Incidents (open/join on alerts and failed verdicts, ack, resolve, the story). */
  incidents: IncidentService;
  /** Port of the PostgreSQL gateway listener. */
  gatewayPort: number | undefined;
  /** Deploy records and their verification (deploy.recorded / deploy.status / deploy.verdict). */
  deploys: DeployApi;
  /** Actions (runbooks): runs, approvals, ActionEvents. */
  actions: ActionService;
  /** Progressive deploys and automatic rollback. */
  rollouts: RolloutManager;
  /** The local actuator: service versions as child processes behind weighted proxies. */
  actuator: LocalActuator;
  /** Creates a user with one API token (the demo's second person); the API is POST /api/users. */
  createUser(name: string, role: Role): Promise<{ id: string; name: string; token: string }>;
  /** Every HTTP route with its required role (http/roles.ts), as registered. */
  routes(): readonly RegisteredRoute[];
  /** Stops accepting, flushes pending batches, closes the stores. */
  close(): Promise<void>;
}

/** The gateway's port when neither `--gateway-port` nor the configuration names one. */
const DEFAULT_GATEWAY_PORT = 15432;

export interface ServerOptions {
  /**
   * PostgreSQL gateway port, over `config.gatewayPort`. Given: it must be free. Not given: 15432
   * if free (else the gateway runs without a listener and says so), or an ephemeral one when the
   * HTTP port is (tests).
   */
  gatewayPort?: number;
  /** Deploy verification settings (tests shorten windows); default: deploys/analysis.ts. */
  deploys?: { verify?: Partial<VerifyConfig>; preDeployWindowS?: number; tickMs?: number };
  /**
   * The cluster membership when `startNode` (http/cluster.ts) starts this server on the node
   * that took the `active` lease. Absent on PostgreSQL: this server takes the lease itself and
   * is refused (`state_in_use`) when another node holds it.
   */
  cluster?: { node: ClusterNode; view: () => Promise<ClusterView>; bus: EventBus; gateway?: Gateway };
}

/**
 * The PostgreSQL gateway of this process: its listener when the node runs the `gateway` role,
 * its access service and its share of the audit chain in any case.
 */
export async function openGateway(config: ServerConfig, db: StateStore['db'], log: Logger, options: Pick<ServerOptions, 'gatewayPort'> = {}): Promise<Gateway> {
  const roles = checkRoles(config.roles);
  const wantedGatewayPort = options.gatewayPort ?? config.gatewayPort;
  const gatewayPort = wantedGatewayPort ?? (config.port === 0 ? 0 : DEFAULT_GATEWAY_PORT);
  try {
    return await startGateway({
      db, dataDir: config.dataDir, log, host: config.host, port: roles.includes('gateway') ? gatewayPort : null, portOptional: wantedGatewayPort === undefined,
      webhookUrl: config.gateway.webhookUrl,
      tls: { certFile: config.gateway.tlsCertFile, keyFile: config.gateway.tlsKeyFile },
      auditKeyFile: config.audit.keyFile, auditAnchorFile: config.audit.anchorFile,
      credentialDir: config.gateway.credentialDir, credentialEnv: config.gateway.credentialEnv,
      maxSessionsPerUser: config.gateway.maxSessionsPerUser,
      maxStatementWork: config.gateway.maxStatementWork,
      maxRowBytes: config.gateway.maxRowBytes,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error(`gateway port ${gatewayPort} on ${config.host} is already in use (--gateway-port)`, { cause: err });
  }
}

/** DuckDB in the data directory, or the ClickHouse database of `--telemetry`. */
function openTelemetryStore(config: ServerConfig, log: Logger): DuckDbTelemetryStore | ClickHouseTelemetryStore {
  if (config.clickhouseCluster !== undefined && (config.telemetryUrl === undefined || config.telemetryUrl === 'duckdb')) {
    throw new Error('--clickhouse-cluster: only with --telemetry clickhouse://…');
  }
  if (config.telemetryUrl !== undefined && config.telemetryUrl !== 'duckdb') {
    if (!isClickHouseUrl(config.telemetryUrl)) throw new Error('--telemetry: expected duckdb or clickhouse://user:pass@host:8123/db');
    // The node's name in its rows: the host and this data directory (two nodes on one host differ).
    const nodeId = `${hostname()}-${createHash('sha256').update(config.dataDir).digest('hex').slice(0, 8)}`;
    return new ClickHouseTelemetryStore({ url: config.telemetryUrl, nodeId, cluster: config.clickhouseCluster, retentionDays: config.retentionDays, log });
  }
  return new DuckDbTelemetryStore({
    path: join(config.dataDir, 'telemetry.duckdb'), log,
    ingestLog: { dir: join(config.dataDir, 'ingest-log'), decode: (signal, format, body) => decodeRequest(signal, format, body).batches },
  });
}

export async function startServer(config: ServerConfig, logger?: Logger, options: ServerOptions = {}): Promise<RunningServer> {
  const log = logger ?? pino({ level: config.logLevel });
  const roles = checkRoles(config.roles);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const loose = tightenDataDir(config.dataDir);
  if (loose.length > 0) log.warn({ dataDir: config.dataDir, paths: loose.slice(0, 20).map((t) => `${t.path} ${t.from.toString(8)}→${t.to.toString(8)}`), count: loose.length }, 'data directory: removed group/other permissions');

  const location = parseStateLocation(config.stateUrl, config.dataDir);
  const state = await openStateStore({
    ...location, migrations: SERVER_STATE_MIGRATIONS,
    ...(location.dialect === 'postgres' ? { onBackgroundError: (err: Error) => log.warn({ err }, 'state database: idle connection failed') } : {}),
  });
  log.info({ state: describeStateLocation(location) }, 'state database open');
  // On PostgreSQL one node is active at a time (http/cluster.ts, docs/cluster.md): started
  // alone, this server takes the `active` lease itself or is refused.
  let publicUrl = '';
  const closeRef: { current?: () => Promise<void> } = {};
  let ownCluster: ClusterNode | undefined;
  let clusterView: () => Promise<ClusterView> = singleView(`single-${process.pid}`, roles, () => publicUrl, Date.now());
  if (options.cluster !== undefined) clusterView = options.cluster.view;
  else if (location.dialect === 'postgres') {
    const node = new ClusterNode({ db: state.db, roles, url: () => config.cluster.advertiseUrl ?? publicUrl, log });
    try {
      await node.join();
      await node.want('active', { onAcquired: () => undefined, onLost: async (reason) => {
        // Started alone (not through startNode): it stops for good; closing leaves the cluster.
        log.error({ reason }, 'cluster: lost the active lease; stopping this server (fail closed)');
        await closeRef.current?.();
      } });
      if (!node.holds('active')) {
        throw apiError('state_in_use', 'another tightloop node is active on this PostgreSQL state database; `tightloop up` starts this one as its standby (docs/cluster.md)');
      }
    } catch (err) {
      await node.leave();
      await state.close();
      throw err;
    }
    ownCluster = node;
    clusterView = () => node.view();
  }
  // Events to and from the other nodes (state/bus.ts): the node's bus, or one of this server's own.
  let ownBus: PostgresBus | LocalBus | undefined;
  const bus: EventBus = options.cluster?.bus ?? (ownBus = location.dialect === 'postgres' && ownCluster !== undefined
    ? new PostgresBus({ db: state.db, connectionString: location.connectionString, node: ownCluster.id, log })
    : new LocalBus(ownCluster?.id ?? `single-${process.pid}`, log));
  if (ownBus instanceof PostgresBus) {
    try {
      await ownBus.start();
    } catch (err) {
      await ownCluster?.leave();
      await state.close();
      throw err;
    }
  }
  const unsubscribe = subscribeCaches(bus, state.db);
  const admin = await ensureAdmin(state.db, config.dataDir);
  // The node's gateway (startNode keeps one across activations: its sessions outlive a change of
  // lease holder), or one of this server's own.
  let gateway: Gateway;
  const ownGateway = options.cluster?.gateway === undefined;
  if (options.cluster?.gateway !== undefined) gateway = options.cluster.gateway;
  else {
    try {
      gateway = await openGateway(config, state.db, log, options);
    } catch (err) {
      await ownCluster?.leave();
      await state.close();
      throw err;
    }
  }

  // DuckDB: acknowledged once in the ingest log, loaded in large transactions. ClickHouse:
  // acknowledged once its synchronous INSERT returned (telemetry/README.md).
  const store = openTelemetryStore(config, log);
  try {
    await store.open();
  } catch (err) {
    // E.g. another process has this data directory (DuckDB's file lock): release what is open so
    // the refusal ends the process instead of leaving the gateway and the lease behind.
    if (ownGateway) await gateway.close();
    await ownCluster?.leave();
    await state.close();
    throw err;
  }
  // The ingest log groups what arrives while it writes: no need to wait for companions here.
  const writer = new TelemetryWriter(store, {
    maxQueuedRows: config.queueMaxRows, maxQueuedBytes: config.ingest.queueMaxBytes, groupRows: config.ingest.groupRows,
    maxDelayMs: config.ingest.maxDelayMs, maxInFlight: config.ingest.maxInFlight,
  });
  const retention = new RetentionJob(store, config.retentionDays, log);
  retention.start();
  const errors = await openErrorsModule({
    state: state.db, submitSpans: (b) => writer.submit(b),
    maxBodyBytes: config.maxBodyBytes, log, statePath: location.dialect === 'sqlite' ? location.path : undefined, spans: store,
  });
  // Started before listening: a bad rules.yaml stops the start, and windows warm before traffic.
  // Fencing (docs/cluster.md): singleton writes commit only while this node holds the lease.
  const leaseNode = options.cluster?.node ?? ownCluster;
  const fence = leaseNode === undefined ? undefined : <DB>(tx: Kysely<DB>) => leaseNode.assertHolds('active', tx);
  const detect = new DetectEngine({
    db: state.db, fence, source: store, errors: errors.events, rulesFile: join(config.dataDir, 'rules.yaml'), publicUrl: () => publicUrl, logger: log,
  });
  const services = () => loadServices(config.dataDir, config.servicesPath);
  try {
    services(); // a broken services.yaml stops the start, like a broken rules.yaml
    await detect.start();
  } catch (err) {
    // A bad rules.yaml: release what is open so the caller (or a test) can fix it and start again.
    retention.stop();
    if (ownGateway) await gateway.close();
    await errors.close();
    await writer.close();
    await store.close();
    await ownCluster?.leave();
    await state.close();
    throw err;
  }

  // Rules created, changed or removed through another node's API (the event bus).
  const offRules = bus.on('rules.changed', (e) => {
    if (e.node === bus.node) return; // applied already, by this node's own write
    detect.rules.sync().catch((err: unknown) => log.error({ err }, 'rules: re-reading the rules another node changed failed; they apply after a restart'));
  });
  // Silences created or ended through another node's API (or written by it while it held the lease).
  const offSilences = bus.on('silences.changed', (e) => {
    if (e.node === bus.node) return;
    detect.silences.reload().catch((err: unknown) => log.error({ err }, 'silences: re-reading the silences another node changed failed; they apply after a restart'));
  });
  const incidents = new IncidentService({ db: state.db, telemetry: store, detectEvents: detect.events, errorEvents: errors.events, windowMs: config.incidentWindowS * 1000, log, fence });
  incidents.start();
  const deploys = new DeployService({
    db: state.db, source: store, errorEvents: errors.events, logger: log, fence,
    metricChecks: (service) => services().find((s) => s.name === service)?.metricChecks ?? [], ...options.deploys,
  });
  await deploys.start();
  incidents.attachDeploys(deploys);
  // Deploys recorded or re-verified through another node: verified here, where the telemetry is.
  const offDeploys = bus.on('deploys.changed', (e) => {
    if (e.node === bus.node) return;
    deploys.adoptVerifying().catch((err: unknown) => log.error({ err }, 'deploys: starting the verifications another node asked for failed; they start at the next takeover or restart'));
  });
  const actuator = new LocalActuator({ services, log, otlpEndpoint: () => publicUrl });
  const actions = new ActionService({ db: state.db, actionsDir: config.actionsDir ?? join(config.dataDir, 'actions'), audit: gateway.audit, log, local: actuator, fence });
  await actions.open();
  const rollouts = new RolloutManager({
    deploys, actions, actuator, services, audit: gateway.audit, log, db: state.db, fence,
    notify: async (n) => {
      const sent = await sendNotice(detect.receiverList, {
        id: `${n.kind}:${n.rolloutId}`, kind: n.kind, title: n.title, text: n.text,
        labels: { service: n.service, environment: n.environment, version: n.version }, link: `${publicUrl}/#/deploys/${n.deployId}`,
      });
      for (const x of sent) if (!x.ok) log.warn({ receiver: x.receiver, error: x.error }, `${n.kind}: notification not delivered`);
    },
  });
  await rollouts.open();
  rollouts.attach();
  // Rollbacks and rollouts a crashed process (or a dead lease holder) left undone go on here.
  await rollouts.resumeRollbacks();
  await rollouts.resumeRollouts();

  if (config.corsOrigins.includes('*') && isLoopback(config.host)) {
    log.warn('--cors-origins *: any web page opened on this machine can send OTLP here (ingest needs no token on loopback)');
  }
  let ready = false;
  const logTail = new LogTailHub();
  const app = buildApp({
    logger: log,
    store,
    submit: (batches) => writer.submit(batches),
    authenticate: async (token) => {
      const p = await verifyToken(state.db, token);
      return p === null ? null : { userId: p.userId, userName: p.userName, role: p.role };
    },
    ingestNeedsToken: !isLoopback(config.host),
    rootHooks: (root) => registerWriteEvents(root, bus, log),
    maxBodyBytes: config.maxBodyBytes,
    corsOrigins: config.corsOrigins,
    isReady: () => ready,
    adminTokenFile: adminTokenHint(config.dataDir),
    plugins: [errors.ingestPlugin, routesPlugin((api) => gatewayApi(api, {
      gateway,
      authenticate: async (token) => {
        const p = await verifyToken(state.db, token);
        return p === null ? null : { userId: p.userId, userName: p.userName, role: p.role };
      },
    })), routesPlugin(registerActiveCheck), consolePlugin()],
    apiRoutes: [(api) => errors.registerApi(api, () => publicUrl), (api) => registerDetectRoutes(api, detect),
      (api) => registerIncidentRoutes(api, { incidents, telemetry: store, audit: gateway.audit, errorsForTrace: (t) => errors.errorsForTrace(t), publicUrl: () => publicUrl }),
      (api) => registerConsoleApi(api, { tail: logTail, gateway }), (api) => registerDeployRoutes(api, deploys),
      (api) => registerActionRoutes(api, actions), (api) => registerClusterRoutes(api, clusterView), (api) => registerRolloutRoutes(api, rollouts, actuator),
      (api) => registerAuthRoutes(api, { db: state.db, audit: gateway.audit, gatewayPort: () => gateway.port, onUserDeleted: async (u, by) => {
        for (const s of gateway.registry.sessions()) if (s.userName === u.name) s.terminate('user deleted');
        await gateway.access.endUser(by, u.id);
      } })],
    errorsForTrace: (traceId) => errors.errorsForTrace(traceId),
    onIngested: (batches) => {
      logTail.publish(batches.logs);
      return errors.onIngested(batches);
    },
  });

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const hostForUrl = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
  publicUrl = `http://${hostForUrl}:${port}`;
  tightenDataDir(config.dataDir); // files the stores created with the umask's mode
  ready = true;
  await actuator.start(); // after listen: the children export telemetry to publicUrl

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      offSilences();
      offDeploys();
      retention.stop();
      // First the local services, while ingest still answers: their last telemetry, flushed as
      // they stop, lands. With the rollouts: a rollout still running may wait on the actuator (a
      // version starting), which closing ends at once. Before the gateway: their last audit
      // records go into its chain.
      await Promise.all([rollouts.close(), actuator.close()]);
      await app.close();
      await actions.close();
      if (ownGateway) await gateway.close();
      await detect.stop();
      await incidents.stop();
      await deploys.stop();
      await errors.close();
      await writer.close();
      await store.close();
      unsubscribe();
      offRules();
      await ownBus?.close();
      await ownCluster?.leave();
      await state.close();
    })();
    return closing;
  };
  closeRef.current = close;
  if (ownCluster !== undefined && !ownCluster.holds('active')) {
    // The lease lapsed while the pillars started (PostgreSQL unreachable): fail closed.
    await close();
    throw apiError('state_in_use', 'lost the active lease while starting; another node may be active (GET /api/cluster)');
  }

  return { url: `http://${hostForUrl}:${port}`, port, adminToken: admin.created ? admin.token : undefined,
    defaultDsn: errors.defaultDsn(publicUrl), errorEvents: errors.events, detectEvents: detect.events, incidents, gatewayPort: gateway.port, deploys, actions, rollouts, actuator, close,
    routes: () => registeredRoutes(app),
    async createUser(name, role) {
      const { id, token } = await createUser(state.db, { name, role, tokenName: `${name} token` });
      return { id, name, token };
    } };
}
