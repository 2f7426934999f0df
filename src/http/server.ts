import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ensureAdmin, verifyToken } from '../auth/index.js';
import { DetectEngine, detectMigrations, registerDetectRoutes, type DetectEvents } from '../detect/index.js';
import { ERRORS_MIGRATIONS, openErrorsModule, type ErrorEvents } from '../errors/index.js';
import { gatewayApi, gatewayMigrations, startGateway, type Gateway } from '../gateway/index.js';
import { openStateStore } from '../state/index.js';
import { DuckDbTelemetryStore, RetentionJob, TelemetryWriter } from '../telemetry/index.js';
import { buildApp } from './app.js';
import { isLoopback, type ServerConfig } from './config.js';

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
  /** Port of the PostgreSQL gateway listener. */
  gatewayPort: number | undefined;
  /** Stops accepting, flushes pending batches, closes the stores. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /**
   * PostgreSQL gateway port. Given: it must be free. Not given: 15432 if free (else the gateway
   * runs without a listener and says so), or an ephemeral one when the HTTP port is (tests).
   */
  gatewayPort?: number;
}

export async function startServer(config: ServerConfig, logger?: Logger, options: ServerOptions = {}): Promise<RunningServer> {
  const log = logger ?? pino({ level: config.logLevel });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });

  const state = await openStateStore({ dialect: 'sqlite', path: join(config.dataDir, 'state.db'), migrations: { ...ERRORS_MIGRATIONS, ...detectMigrations, ...gatewayMigrations } });
  const admin = await ensureAdmin(state.db, config.dataDir);
  const gatewayPort = options.gatewayPort ?? (config.port === 0 ? 0 : 15432);
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      db: state.db, dataDir: config.dataDir, log, host: config.host, port: gatewayPort, portOptional: options.gatewayPort === undefined,
      webhookUrl: process.env.TIGHTLOOP_GATEWAY_WEBHOOK_URL,
      tls: { certFile: process.env.TIGHTLOOP_GATEWAY_TLS_CERT, keyFile: process.env.TIGHTLOOP_GATEWAY_TLS_KEY },
    });
  } catch (err) {
    await state.close();
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error(`gateway port ${gatewayPort} on ${config.host} is already in use (--gateway-port)`, { cause: err });
  }

  const store = new DuckDbTelemetryStore(join(config.dataDir, 'telemetry.duckdb'));
  await store.open();
  const writer = new TelemetryWriter(store, { maxQueuedRows: config.queueMaxRows });
  const retention = new RetentionJob(store, config.retentionDays, log);
  retention.start();
  const errors = await openErrorsModule({
    state: state.db, submitSpans: (b) => writer.submit(b),
    maxBodyBytes: config.maxBodyBytes, log,
  });
  let publicUrl = '';
  // Started before listening: a bad rules.yaml stops the start, and windows warm before traffic.
  const detect = new DetectEngine({
    db: state.db, source: store, rulesFile: join(config.dataDir, 'rules.yaml'), publicUrl: () => publicUrl, logger: log,
  });
  try {
    await detect.start();
  } catch (err) {
    // A bad rules.yaml: release what is open so the caller (or a test) can fix it and start again.
    retention.stop();
    await gateway.close();
    await errors.close();
    await writer.close();
    await store.close();
    await state.close();
    throw err;
  }

  let ready = false;
  const app = buildApp({
    logger: log,
    store,
    submit: (batches) => writer.submit(batches),
    authenticate: async (token) => {
      const p = await verifyToken(state.db, token);
      return p === null ? null : { userId: p.userId, userName: p.userName, role: p.role };
    },
    ingestNeedsToken: !isLoopback(config.host),
    maxBodyBytes: config.maxBodyBytes,
    isReady: () => ready,
    plugins: [errors.ingestPlugin, (api) => gatewayApi(api, {
      gateway,
      authenticate: async (token) => {
        const p = await verifyToken(state.db, token);
        return p === null ? null : { userId: p.userId, userName: p.userName, role: p.role };
      },
    })],
    apiRoutes: [(api) => errors.registerApi(api, () => publicUrl), (api) => registerDetectRoutes(api, detect)],
    errorsForTrace: (traceId) => errors.errorsForTrace(traceId),
    onIngested: (batches) => errors.onIngested(batches),
  });

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const hostForUrl = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
  publicUrl = `http://${hostForUrl}:${port}`;
  ready = true;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      retention.stop();
      await app.close();
      await gateway.close();
      await detect.stop();
      await errors.close();
      await writer.close();
      await store.close();
      await state.close();
    })();
    return closing;
  };

  return { url: `http://${hostForUrl}:${port}`, port, adminToken: admin.created ? admin.token : undefined,
    defaultDsn: errors.defaultDsn(publicUrl), errorEvents: errors.events, detectEvents: detect.events, gatewayPort: gateway.port, close };
}
