/**
 * The gateway benchmark's targets and probes (not a benchmark itself: bench/run.mjs skips names
 * starting with `_`): pgbouncer, the bare Node and C relays, /proc CPU time, CPU profiles.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { connect, createServer, type Server } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './_util.js';

const run = promisify(execFile);

export async function startPgbouncer(dir: string, pgPort: number, password: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), `"postgres" "${password}"\n`);
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]', `bench = host=127.0.0.1 port=${pgPort} dbname=bench`,
    '[pgbouncer]', `listen_addr = 127.0.0.1`, `listen_port = ${port}`, 'pool_mode = session',
    'auth_type = scram-sha-256', `auth_file = ${join(dir, 'userlist.txt')}`, `unix_socket_dir =`,
    `logfile = ${join(dir, 'pgbouncer.log')}`, 'max_client_conn = 200', 'default_pool_size = 50', '',
  ].join('\n'));
  // pgbouncer refuses to run as root; run it as the postgres OS user then.
  const asRoot = userInfo().uid === 0;
  const ids = asRoot ? await osIds('postgres') : undefined;
  if (ids !== undefined) for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), ids.uid, ids.gid);
  const proc = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { stdio: 'ignore', ...(ids ?? {}) });
  for (let i = 0; i < 50; i++) {
    try {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'bench' });
      await c.connect();
      await c.end();
      return { port, proc };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill();
  throw new Error('pgbouncer did not start');
}

/** CPU time (user + system) of another process, from /proc. */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

async function osIds(name: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', name])).stdout.trim());
  const gid = Number((await run('id', ['-g', name])).stdout.trim());
  return { uid, gid };
}

/** BENCH_PROFILE=<dir>: a V8 CPU profile of this process over each measured gateway run only (not the set-up). */
export async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  const post = (method: string): Promise<unknown> => new Promise((resolve, reject) => session.post(method, (err, res) => (err === null ? resolve(res) : reject(err))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async (file) => {
    const { profile } = await post('Profiler.stop') as { profile: unknown };
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    console.log(`  CPU profile: ${file}`);
  };
}

/** bench/native-pipe.c, compiled into `dir` and started; undefined when there is no C compiler. */
export async function startNativePipe(dir: string, upstreamPort: number): Promise<{ port: number; proc: ChildProcess } | undefined> {
  const bin = join(dir, 'native-pipe');
  try {
    await run('cc', ['-O2', '-o', bin, fileURLToPath(new URL('../../bench/native-pipe.c', import.meta.url))]);
  } catch (err) {
    console.log(`bare C pipe skipped: cannot compile bench/native-pipe.c (${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
  const proc = spawn(bin, ['0', String(upstreamPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString('utf8').trim())));
    proc.once('exit', (code) => reject(new Error(`native-pipe exited ${code}`)));
  });
  return { port, proc };
}

/** A TCP relay that pipes bytes both ways and parses nothing. */
export function startBarePipe(upstreamPort: number): Promise<Server> {
  const srv = createServer((client) => {
    const up = connect(upstreamPort, '127.0.0.1');
    client.setNoDelay(true);
    up.setNoDelay(true);
    client.pipe(up).on('error', () => client.destroy());
    up.pipe(client).on('error', () => up.destroy());
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}
