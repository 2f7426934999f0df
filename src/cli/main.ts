import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { ServerConfig } from '../config/schema.js';
import type { LoadedConfig } from '../config/load.js';
import { CONFIG_FILE_NAME, DEFAULT_DATA_DIR } from '../config/settings.js';
import type { RunningServer } from '../http/server.js';
import { registerActionCommands } from './actions.js';
import { registerDeployCommands } from './deploys.js';
import { registerDetectCommands } from './detect.js';
import { registerErrorCommands } from './errors.js';
import { registerGatewayCommands } from './gateway.js';
import { registerIncidentCommands } from './incidents.js';
import { registerUserCommands } from './users.js';
import { registerStateCommands } from './state.js';

/**
 * The `tightloop` command. Exit codes: 0 ok, 1 verdict or check failed, 2 usage or connection error.
 */

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** `tightloop up` (and `config show`) flags, by the ServerConfig setting they set. */
const FLAG_SETTINGS = {
  dataDir: 'dataDir', role: 'roles', state: 'stateUrl', telemetry: 'telemetryUrl', clickhouseCluster: 'clickhouseCluster', host: 'host', advertiseUrl: 'cluster.advertiseUrl', port: 'port', gatewayPort: 'gatewayPort',
  queueMaxRows: 'queueMaxRows', incidentWindow: 'incidentWindowS', actionsDir: 'actionsDir', services: 'servicesPath', corsOrigins: 'corsOrigins', logLevel: 'logLevel',
} as const;

type UpOpts = { [K in keyof typeof FLAG_SETTINGS]?: K extends 'port' | 'gatewayPort' | 'queueMaxRows' | 'incidentWindow' ? number : string } & { config?: string; demo?: boolean; json?: boolean };

function flagsOf(opts: UpOpts): Record<string, string | number | undefined> {
  const flags: Record<string, string | number | undefined> = {};
  for (const [opt, setting] of Object.entries(FLAG_SETTINGS)) flags[setting] = opts[opt as keyof typeof FLAG_SETTINGS];
  return flags;
}

/** The effective configuration (config/load.ts), or undefined after printing each problem. */
export async function configFromFlags(command: string, opts: UpOpts): Promise<LoadedConfig | undefined> {
  const { ConfigError, loadConfig } = await import('../config/load.js');
  try {
    return await loadConfig({ flags: flagsOf(opts), configFile: opts.config });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(err.message.split('\n').map((l) => `tightloop ${command}: ${l}\n`).join(''));
    return undefined;
  }
}

/** Adds the server's flags (no commander defaults: an unset flag leaves the environment, the file or the default). */
function serverFlags(cmd: Command): Command {
  return cmd
    .option('--config <file>', `configuration file (default <data-dir>/${CONFIG_FILE_NAME} when it exists; docs/configuration.md)`)
    .option('--data-dir <dir>', `data directory (default ${DEFAULT_DATA_DIR}; env TIGHTLOOP_DATA_DIR)`)
    .option('--role <list>', 'what this node runs: a comma list of api, ingest, gateway, worker (default all; api, ingest and worker go together, docs/cluster.md)')
    .option('--state <url>', 'state database: postgres://user:pass@host:5432/db (default: SQLite in the data directory; env TIGHTLOOP_STATE_URL)')
    .option('--telemetry <url>', 'telemetry store: clickhouse://user:pass@host:8123/db (default: DuckDB in the data directory; env TIGHTLOOP_TELEMETRY_URL)')
    .option('--clickhouse-cluster <name>', 'with --telemetry clickhouse://: create the tables ON CLUSTER name, Replicated under Distributed (env TIGHTLOOP_CLICKHOUSE_CLUSTER)')
    .option('--host <host>', 'address to bind (default 127.0.0.1, loopback)')
    .option('--advertise-url <url>', 'several nodes on PostgreSQL: the http:// URL other nodes reach this one at (required with --host 0.0.0.0 or ::; env TIGHTLOOP_ADVERTISE_URL)')
    .option('--port <port>', 'HTTP port: OTLP, API, console (default 4318)', intArg('--port', 0, 65535))
    .option('--gateway-port <port>', 'PostgreSQL gateway port (default 15432)', intArg('--gateway-port', 0, 65535))
    .option('--queue-max-rows <n>', 'rows waiting for commit before ingest answers 429', intArg('--queue-max-rows', 1, 1e9))
    .option('--incident-window <s>', 'seconds within which alerts join an open incident of their service (default 1800)', intArg('--incident-window', 1, 604_800))
    .option('--actions-dir <dir>', 'folder of action YAML files (default <data-dir>/actions)')
    .option('--services <path>', 'services.yaml or a folder of service files (default <data-dir>/services.yaml and <data-dir>/services/)')
    .option('--cors-origins <list>', 'browser origins allowed to send OTLP: comma-separated origins, loopback (default: pages on this machine), * or none; env TIGHTLOOP_CORS_ORIGINS')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default info)');
}

async function up(opts: UpOpts): Promise<number> {
  let loaded = await configFromFlags('up', opts);
  if (loaded === undefined) return 2;
  if (opts.demo === true) {
    // What --demo changes when nothing (flag, environment, file) said otherwise: demo/up.ts.
    const sources = loaded.sources;
    try {
      const { demoUpDefaults, movedText } = await import('../demo/up.js');
      const d = await demoUpDefaults({ dataDir: loaded.config.dataDir, port: loaded.config.port, gatewayPort: loaded.config.gatewayPort, logLevel: loaded.config.logLevel },
        (k) => sources[k]?.kind === 'default', (m) => process.stdout.write(`tightloop up --demo: ${movedText(m)}\n`));
      loaded = await configFromFlags('up', { ...opts, dataDir: d.dataDir, port: d.port, gatewayPort: d.gatewayPort, logLevel: d.logLevel });
    } catch (err) {
      process.stderr.write(`tightloop up --demo: ${(err as Error).message}\n`);
      return 2;
    }
    if (loaded === undefined) return 2;
  }
  const config = loaded.config;
  const { parseStateLocation, describeStateLocation } = await import('../state/location.js');
  const stateLine = describeStateLocation(parseStateLocation(config.stateUrl, config.dataDir));
  let telemetryLine = `DuckDB (${join(config.dataDir, 'telemetry.duckdb')})`;
  if (config.telemetryUrl !== undefined && config.telemetryUrl !== 'duckdb') {
    const { describeClickHouse, parseClickHouseUrl } = await import('../telemetry/clickhouse-sql.js');
    telemetryLine = `ClickHouse ${describeClickHouse(parseClickHouseUrl(config.telemetryUrl))}`;
  }
  // Loaded only by `up`: the other commands are REST clients and start faster without the server.
  const { startNode } = await import('../http/cluster.js');
  const demo = opts.demo === true ? await import('../demo/index.js') : undefined;
  // Signals are ours from here on, also while PostgreSQL and the server start: the first one
  // stops gracefully (whatever has started is stopped, the demo's PostgreSQL directory removed);
  // another one while that runs ends at once, after the synchronous clean-up of the demo's files.
  const shutdown = new AbortController();
  const onSignal = (signal: string): void => {
    if (!shutdown.signal.aborted) {
      process.stdout.write(`tightloop: ${signal} received, flushing and shutting down\n`);
      shutdown.abort();
      return;
    }
    process.stdout.write(`tightloop: ${signal} again, stopping now\n`);
    demo?.stopAllNow();
    process.exit(130);
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await serve(config, startNode, demo, shutdown.signal, `${stateLine}\n  telemetry       ${telemetryLine}`);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

type Demo = typeof import('../demo/index.js');

async function serve(config: ServerConfig, startNode: typeof import('../http/cluster.js').startNode,
  demo: Demo | undefined, stopped: AbortSignal, stateLine: string): Promise<number> {
  let prepared: import('../demo/index.js').PreparedDemo | undefined;
  let node: import('../http/cluster.js').RunningNode;
  // An active node that loses its lease stops its server (fail closed) and stays up as a standby
  // (503 while PostgreSQL is unreachable); only one that could not stop its server for sure
  // gives up: exit 75 (EX_TEMPFAIL) so a supervisor restarts it.
  let leaseLost = false;
  const lost = new AbortController();
  // The first activation (inside startNode) prints its banner below; later ones print it here.
  let onActive: (server: RunningServer) => void = () => undefined;
  try {
    prepared = await demo?.prepareDemo(config.dataDir, stopped, config.gateway.credentialDir);
    node = await startNode(config, undefined, { onLeaseLost: () => { leaseLost = true; lost.abort(); }, onActive: (s) => onActive(s) });
  } catch (err) {
    await prepared?.stop();
    if (stopped.aborted) return 0;
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${config.port} on ${config.host} is already in use` : e.message;
    process.stderr.write(`tightloop up: cannot start: ${why}\n`);
    return 2;
  }
  const banner = (server: RunningServer): void => {
    if (stopped.aborted) return;
    const lines = [
      '',
      `  tightloop is up  (data: ${config.dataDir})`,
      `  state           ${stateLine}`,
      `  API             ${server.url}/api/`,
      `  OTLP/HTTP       ${server.url}/v1/traces | /v1/logs | /v1/metrics`,
      `  OpenAPI         ${server.url}/api/openapi.json`,
      `  health          ${server.url}/api/health`,
      `  Sentry DSN      ${server.defaultDsn}  (default project)`,
      server.gatewayPort === undefined
        ? (config.roles.includes('gateway') ? '  PostgreSQL      gateway not listening (port 15432 in use; pass --gateway-port)' : '  PostgreSQL      gateway not run here (--role without gateway)')
        : `  PostgreSQL      postgres://<user>:<token>@${config.host}:${server.gatewayPort}/<resource>  (gateway)`,
    ];
    if (server.adminToken !== undefined) {
      lines.push(
        '',
        `  admin token (shown once; saved to ${resolve(config.dataDir, 'admin.token')}, mode 0600):`,
        `    ${server.adminToken}`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n\n');
  };
  const server = node.active();
  if (server !== undefined) banner(server);
  else process.stdout.write(`\n  tightloop is a STANDBY  (state: ${stateLine})\n  another node is active; this one takes over when it stops (${node.url}/api/cluster)\n\n`);
  // Each later takeover (after a failover, or after PostgreSQL came back) prints the banner again.
  onActive = (s) => banner(s);
  const demoRun = prepared === undefined || stopped.aborted || server === undefined ? undefined : demo?.runDemo(server, prepared, { color: process.stdout.isTTY, shopPort: config.demo.shopPort });
  await new Promise<void>((done) => {
    if (stopped.aborted || lost.signal.aborted) done();
    else {
      stopped.addEventListener('abort', () => done(), { once: true });
      lost.signal.addEventListener('abort', () => done(), { once: true });
    }
  });
  demoRun?.stop();
  let code = leaseLost ? 75 : 0;
  try {
    await node.close();
  } catch (err) {
    process.stderr.write(`tightloop: shutdown failed: ${(err as Error).message}\n`);
    code = 1;
  }
  await prepared?.stop();
  return code;
}

/** The version in this checkout's package.json (from src/cli under tests, from dist/src/cli when built). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tightloop' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: one level up
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

export async function run(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command()
    .name('tightloop')
    .description('Observe, detect, act safely, ship verified, learn: one self-hosted service.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError();

  serverFlags(program
    .command('up')
    .description('run tightloop: OTLP ingest, API and console on one port'))
    .option('--demo', 'run the demo too: a shop in two versions, PostgreSQL, traffic, a bad deploy and its automatic rollback (npm start)')
    .action(async (opts: UpOpts) => {
      code = await up(opts);
    });
  serverFlags(program
    .command('config')
    .description('the server configuration (flags > environment > tightloop.yaml > defaults)')
    .command('show')
    .description('print the effective configuration of `tightloop up` with these flags, each value with its source, secrets redacted'))
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: UpOpts) => {
      const loaded = await configFromFlags('config show', opts);
      if (loaded === undefined) {
        code = 2;
        return;
      }
      const { formatShown, shownSettings } = await import('../config/show.js');
      process.stdout.write(opts.json === true ? JSON.stringify({ file: loaded.file ?? null, settings: shownSettings(loaded) }, null, 2) + '\n' : formatShown(loaded));
    });

  registerErrorCommands(program, (c) => { code = c; });
  registerGatewayCommands(program, (c) => { code = c; });
  registerDetectCommands(program, (c) => { code = c; });
  registerDeployCommands(program, (c) => { code = c; });
  registerIncidentCommands(program, (c) => { code = c; });
  registerUserCommands(program, (c) => { code = c; });
  registerStateCommands(program, (c) => { code = c; });
  // After the other `deploy` subcommands: it adds `deploy start` to that command.
  registerActionCommands(program, (c) => { code = c; });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return code;
}
