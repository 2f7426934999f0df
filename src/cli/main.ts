import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { serverConfigSchema } from '../http/config.js';
import { startServer } from '../http/server.js';
import { registerDetectCommands } from './detect.js';
import { registerErrorCommands } from './errors.js';
import { registerGatewayCommands } from './gateway.js';

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

async function up(opts: { dataDir: string; host: string; port: number; gatewayPort?: number; queueMaxRows?: number; logLevel: string }): Promise<number> {
  const parsed = serverConfigSchema.safeParse({
    dataDir: resolve(opts.dataDir),
    host: opts.host,
    port: opts.port,
    queueMaxRows: opts.queueMaxRows,
    logLevel: opts.logLevel,
  });
  if (!parsed.success) {
    process.stderr.write(`tightloop up: invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`);
    return 2;
  }
  const config = parsed.data;
  let server;
  try {
    server = await startServer(config, undefined, { gatewayPort: opts.gatewayPort });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${config.port} on ${config.host} is already in use` : e.message;
    process.stderr.write(`tightloop up: cannot start: ${why}\n`);
    return 2;
  }
  const lines = [
    '',
    `  tightloop is up  (data: ${config.dataDir})`,
    `  API             ${server.url}/api/`,
    `  OTLP/HTTP       ${server.url}/v1/traces | /v1/logs | /v1/metrics`,
    `  OpenAPI         ${server.url}/api/openapi.json`,
    `  health          ${server.url}/api/health`,
    `  Sentry DSN      ${server.defaultDsn}  (default project)`,
    server.gatewayPort === undefined
      ? '  PostgreSQL      gateway not listening (port 15432 in use; pass --gateway-port)'
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

  return await new Promise<number>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`tightloop: ${signal} received, flushing and shutting down\n`);
      server.close().then(
        () => done(0),
        (err: unknown) => {
          process.stderr.write(`tightloop: shutdown failed: ${(err as Error).message}\n`);
          done(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

export async function run(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command()
    .name('tightloop')
    .description('Observe, detect, act safely, ship verified, learn: one self-hosted service.')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('up')
    .description('run tightloop: OTLP ingest, API and console on one port')
    .option('--data-dir <dir>', 'data directory', './.tightloop')
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'HTTP port (OTLP, API, console)', intArg('--port', 0, 65535), 4318)
    .option('--gateway-port <port>', 'PostgreSQL gateway port (default 15432)', intArg('--gateway-port', 0, 65535))
    .option('--queue-max-rows <n>', 'rows waiting for commit before ingest answers 429', intArg('--queue-max-rows', 1, 1e9))
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .action(async (opts) => {
      code = await up(opts);
    });

  registerErrorCommands(program, (c) => { code = c; });
  registerGatewayCommands(program, (c) => { code = c; });
  registerDetectCommands(program, (c) => { code = c; });

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
