/**
 * The chdb test engine (test/clickhouse-engine/server.mjs: ClickHouse's HTTP interface on
 * ClickHouse-as-a-library) for the benchmarks: started on a directory as a child process, which
 * shares the machine's cores with tightloop and the load generator. Not a benchmark itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@clickhouse/client';

export interface BenchEngine {
  /** `http://127.0.0.1:PORT` */
  http: string;
  /** A `--telemetry` URL for `database`. */
  url(database: string): string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startBenchEngine(dir: string): Promise<BenchEngine> {
  const server = fileURLToPath(new URL('../../test/clickhouse-engine/server.mjs', import.meta.url));
  const child = spawn(process.execPath, [server, '--path', join(dir, 'engine'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`test engine exited (${code}); installed? npm --prefix test/clickhouse-engine install`)));
  });
  const { listening } = JSON.parse(line) as { listening: string };
  return {
    http: listening,
    url: (database) => `${listening.replace(/^http:/, 'clickhouse:')}/${database}`,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs one SELECT on the engine and returns its rows. */
export async function engineRows<T>(http: string, database: string, query: string): Promise<T[]> {
  const client = createClient({ url: http, database, clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
  try {
    return await (await client.query({ query, format: 'JSONEachRow' })).json<T>();
  } finally {
    await client.close();
  }
}
