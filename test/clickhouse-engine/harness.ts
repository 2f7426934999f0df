/**
 * Starts the ClickHouse test engine (server.mjs: ClickHouse's HTTP interface on chdb) as a child
 * process for a test file. The engine lives in its own package (`npm --prefix
 * test/clickhouse-engine install`, which .ci/run does); without it the tests that need it skip and say
 * why — except under CI, where a missing engine fails them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const DIR = dirname(fileURLToPath(import.meta.url));

export const ENGINE_INSTALL_HINT = 'ClickHouse test engine not installed: run `npm --prefix test/clickhouse-engine install` (chdb, ~550 MB)';

/** True when the engine package is installed (its tests run); throws under CI when it is not. */
export function clickHouseEngineInstalled(): boolean {
  const ok = existsSync(join(DIR, 'node_modules', 'chdb', 'package.json')) && existsSync(join(DIR, 'node_modules', '@chdb', 'lib-linux-x64-gnu'));
  if (!ok && process.env.CI) throw new Error(`${ENGINE_INSTALL_HINT} — CI must install it (.ci/run)`);
  if (!ok) console.warn(`skipped: ${ENGINE_INSTALL_HINT}`);
  return ok;
}

export interface RunningEngine {
  /** `http://127.0.0.1:PORT` */
  http: string;
  /** A tightloop --telemetry URL for `database` (user `tl`, password `secret`). */
  url(database: string): string;
  version: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export const ENGINE_USER = 'tl';
export const ENGINE_PASSWORD = 'secret';

export async function startClickHouseEngine(): Promise<RunningEngine> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-chdb-'));
  const child = spawn(process.execPath, [join(DIR, 'server.mjs'), '--path', dataDir, '--port', '0', '--user', `${ENGINE_USER}:${ENGINE_PASSWORD}`, '--user', 'default:'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`ClickHouse test engine exited (${code}) before listening: ${stderr}`)));
  });
  const { listening, version } = JSON.parse(first) as { listening: string; version: string };
  const hostPort = listening.replace(/^http:\/\//, '');
  return {
    http: listening,
    version,
    process: child,
    url: (database) => `clickhouse://${ENGINE_USER}:${ENGINE_PASSWORD}@${hostPort}/${database}`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
