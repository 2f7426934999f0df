/**
 * `npm run bench -- gateway [--seconds 2] [--rounds 1] [--clients 8] [--threads 2] [--only tightloop]
 *   [--mode simple,prepared] [--workloads S,pii20,pii1000,tpcb] [--nomask]`
 *
 * Three workloads, each against the same PostgreSQL four ways in one run, targets alternating so
 * drift hits all of them alike: direct; Debian's pgbouncer in session mode; a bare Node relay
 * (bytes piped both ways, nothing parsed: the floor any Node proxy pays on this machine, and
 * the yardstick of issue 15); the tightloop gateway with guardrails, masking and audit on (every
 * statement judged from the parse tree or its cache, every row scanned by the content
 * detectors, every statement audited; a statement that may write is durable in the audit before
 * it goes upstream). A fifth target on `-S` only, when a C compiler is here, is the same relay
 * in C (bench/native-pipe.c).
 *
 * - `S`: `pgbench -S` (one short integer back: no detector ever runs);
 * - `pii20`: a custom script (`pgbench -f`) reading 20 rows of four PII text columns (e-mail,
 *   phone, card, SSN) by a random id range: 80 values for the masker per query;
 * - `pii1000`: the same with 1,000 rows (4,000 values per query);
 * - `tpcb`: pgbench's TPC-B-like writes (per transaction: three UPDATEs and an INSERT, each
 *   durable in the audit before it goes upstream). On this one a sixth target is the gateway
 *   committing its audit on the main thread (`auditWriter: 'inline'`, how it was before
 *   audit-writer.ts): before and after side by side. Its "proxy CPU" is per transaction.
 *
 * The benchmark fails rather than measure an unmasked path: after each gateway PII run, the
 * masked counts its audit records add up to must cover every value of every transaction pgbench
 * reports, and a sampled row read through the gateway must differ from the stored one in all
 * four columns.
 *
 * "proxy CPU" is user + system time of the proxy process per query (this process for the
 * gateway and the Node relay, /proc for pgbouncer and the C relay; BENCH_VERBOSE=1 splits it).
 * Last, the masker alone on one core (values per CPU-second, 5 PII columns). Needs `pgbench`
 * and `pgbouncer` on PATH (Debian: postgresql-client, postgresql, pgbouncer).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../src/auth/index.js';
import { gatewayMigrations, startGateway, type Gateway } from '../src/gateway/index.js';
import { Masker, DEFAULT_MASKING } from '../src/gateway/masking/index.js';
import { openStateStore, toTimestamp } from '../src/state/index.js';
import { cpuMs, startBarePipe, startNativePipe, startPgbouncer, startProfile } from './_gateway-targets.js';
import { arg, startBenchPostgres } from './_util.js';
import { rng } from './_pii-corpus.js';

const run = promisify(execFile);

function list(name: string, def: string): string[] {
  const i = process.argv.indexOf(`--${name}`);
  return (i === -1 ? def : process.argv[i + 1]).split(',');
}
const SECONDS = arg('seconds', 2);
const CLIENTS = arg('clients', 8);
/** Rounds over all workloads and targets; each figure is the mean over rounds (and modes). */
const ROUNDS = arg('rounds', 1);
const THREADS = arg('threads', 2);
const PASSWORD = 'bench-secret';
/** `--only tightloop` (or direct, pgbouncer, node-pipe, c-pipe) runs one target: handy under a profiler. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const MODES = list('mode', 'simple') as ('simple' | 'prepared')[];
const WORKLOADS = list('workloads', 'S,pii20,pii1000,tpcb') as Workload[];
type Workload = 'S' | 'pii20' | 'pii1000' | 'tpcb';
/** Rows per query of a PII workload. */
const PII_ROWS: Record<string, number> = { pii20: 20, pii1000: 1000 };
const PII_COLUMNS = ['email', 'phone', 'card', 'ssn'];
const PII_TABLE_ROWS = 100_000;

interface Target { port: number; user: string; password: string; database?: string }

/** One pgbench run: tps and the transactions it reports. TLS off: pgbouncer and the test server have none here. */
async function pgbench(t: Target, workload: Workload, scripts: string, mode: 'simple' | 'prepared', seconds = SECONDS): Promise<{ tps: number; xacts: number }> {
  const what = workload === 'S' ? ['-S'] : workload === 'tpcb' ? ['-b', 'tpcb-like'] : ['-f', join(scripts, `${workload}.sql`)];
  const { stdout } = await run('pgbench', [
    '-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, '-n', ...what, '-M', mode,
    '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds), t.database ?? 'bench',
  ], { env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' }, timeout: (seconds + 30) * 1000 });
  const m = /tps = ([\d.]+)/.exec(stdout);
  const x = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (m === null || x === null) throw new Error(`no tps in pgbench output:\n${stdout}`);
  return { tps: Number(m[1]), xacts: Number(x[1]) };
}

/** Luhn-valid: 15 digits and their check digit. */
function withLuhn(d15: string): string {
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = d15.charCodeAt(14 - i) - 48;
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return d15 + String((10 - (sum % 10)) % 10);
}

/** A customer table's PII as it is usually stored: one plain value per column, formats varying by row. */
function piiTable(n: number): { email: string[]; phone: string[]; card: string[]; ssn: string[] } {
  const r = rng(15);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const digits = (k: number): string => Array.from({ length: k }, () => String(int(0, 9))).join('');
  const first = ['jane', 'john', 'maria', 'li', 'ahmed', 'aiko', 'lucas', 'fatima'];
  const last = ['doe', 'smith', 'garcia', 'wang', 'khan', 'tanaka', 'dubois', 'silva'];
  const out = { email: [] as string[], phone: [] as string[], card: [] as string[], ssn: [] as string[] };
  for (let i = 1; i <= n; i++) {
    out.email.push(`${first[i % 8]}.${last[(i >> 3) % 8]}${i}@example.${['com', 'org', 'de'][i % 3]}`);
    const line = String(int(1000, 9999));
    out.phone.push(i % 3 === 0 ? `+1 415 555 ${line}` : i % 3 === 1 ? `(${int(201, 989)}) ${int(200, 999)}-${line}` : `+44 20 7946 ${line}`);
    const card = withLuhn(`${i % 2 === 0 ? '4' : '5' + String(int(1, 5))}${digits(i % 2 === 0 ? 14 : 13)}`);
    out.card.push(i % 4 < 2 ? card.replace(/(\d{4})(?=\d)/g, '$1 ') : card);
    out.ssn.push(`${int(100, 665)}-${int(10, 99)}-${int(1000, 9999)}`);
  }
  return out;
}

/** Masked values the gateway's audit records count for statements reading the PII table. */
async function maskedSoFar(gw: Gateway): Promise<number> {
  let n = 0;
  for (const r of await gw.audit.query({ kind: 'statement', limit: 10_000_000 })) {
    if (!/from pii/i.test(String(r.data.sql))) continue;
    for (const v of Object.values((r.data.masked ?? {}) as Record<string, number>)) n += v;
  }
  return n;
}

/** Rows 1..1000 through the gateway: every PII value must differ from the stored one. */
async function assertMasked(direct: Target, gateway: Target): Promise<void> {
  const read = async (t: Target): Promise<Record<string, string>[]> => {
    const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: t.user, password: t.password, database: 'bench' });
    await c.connect();
    try {
      return (await c.query(`SELECT ${PII_COLUMNS.join(', ')} FROM pii WHERE id BETWEEN 1 AND 1000 ORDER BY id`)).rows as Record<string, string>[];
    } finally {
      await c.end();
    }
  };
  const [plain, masked] = [await read(direct), await read(gateway)];
  if (plain.length !== 1000 || masked.length !== 1000) throw new Error(`expected 1000 rows, got ${plain.length} and ${masked.length}`);
  for (let i = 0; i < plain.length; i++) {
    for (const col of PII_COLUMNS) {
      if (masked[i][col] === plain[i][col]) throw new Error(`the gateway did not mask ${col} of row ${i + 1}: ${plain[i][col]}`);
    }
  }
}

/** The table's values as DataRows through the masker on this thread: values per CPU-second and per wall second. */
function maskThroughput(t: ReturnType<typeof piiTable>, seconds: number): { cpu: number; wall: number } {
  const masker = new Masker({ ...DEFAULT_MASKING }, Buffer.alloc(32, 7));
  const plan = masker.plan(PII_COLUMNS.map((name) => ({ name, tableOid: 0, column: 0, typeOid: 25, format: 0 })));
  const rows: Buffer[] = [];
  for (let i = 0; i < 20_000; i++) {
    const parts = PII_COLUMNS.map((c) => Buffer.from(t[c as keyof typeof t][i]));
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
  const counts: Record<string, number> = {};
  for (const r of rows) masker.maskDataRow(r, 0, r.length, plan, counts); // warm-up
  const before = Object.values(counts).reduce((a, b) => a + b, 0);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let done = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (const r of rows) masker.maskDataRow(r, 0, r.length, plan, counts);
    done += rows.length;
  }
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const masked = Object.values(counts).reduce((a, b) => a + b, 0) - before;
  if (masked < done * PII_COLUMNS.length) throw new Error(`expected every value masked, got ${masked} of ${done * PII_COLUMNS.length}`);
  const values = done * PII_COLUMNS.length;
  return { cpu: values / ((c.user + c.system) / 1e6), wall: values / wall };
}

interface Run { tps: number; cpuUs: number }

/** A gateway on its own state database, with a user `bench` granted write on resource `bench`. */
async function benchGateway(stateDir: string, pgPort: number, auditWriter: 'thread' | 'inline', cleanups: (() => Promise<void>)[]): Promise<{ gw: Gateway; token: string; userId: string }> {
  const state = await openStateStore({ dialect: 'sqlite', path: join(stateDir, 'state.db'), migrations: gatewayMigrations });
  cleanups.push(() => state.close());
  await ensureAdmin(state.db, stateDir);
  const userId = ulid();
  await state.db.insertInto('users').values({ id: userId, name: 'bench', role: 'member', created_at: toTimestamp(Date.now()) }).execute();
  const { token } = await createToken(state.db, { userId, name: 'bench' });
  const gw = await startGateway({ db: state.db, dataDir: stateDir, log: pino({ level: 'silent' }), port: 0, auditWriter, maxSessionsPerUser: 0 });
  cleanups.unshift(() => gw.close());
  await gw.resources.create({ name: 'bench', host: '127.0.0.1', port: pgPort, database: 'bench', user: 'postgres', credential: 'env:TIGHTLOOP_CRED_BENCH_PG', tls: { mode: 'disable' } });
  await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: userId, resource: 'bench', mode: 'write' });
  return { gw, token, userId };
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-gwbench-'));
  chmodSync(dir, 0o755);
  const { server, port: pgPort } = await startBenchPostgres(join(dir, 'data'), PASSWORD, ['-c', 'max_connections=100', '-c', 'fsync=off', '-c', 'synchronous_commit=off']);
  const stateDir = join(dir, 'state');
  let bouncer: ChildProcess | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    await server.createDatabase('bench');
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(pgPort), '-U', 'postgres', 'bench'], { env: { ...process.env, PGPASSWORD: PASSWORD } });
    const table = piiTable(PII_TABLE_ROWS);
    const admin = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: PASSWORD, database: 'bench' });
    await admin.connect();
    await admin.query('CREATE TABLE pii (id int PRIMARY KEY, email text, phone text, card text, ssn text)');
    for (let i = 0; i < PII_TABLE_ROWS; i += 10_000) {
      const ids = Array.from({ length: Math.min(10_000, PII_TABLE_ROWS - i) }, (_, k) => i + k + 1);
      await admin.query('INSERT INTO pii SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[])',
        [ids, ...PII_COLUMNS.map((c) => table[c as keyof typeof table].slice(i, i + ids.length))]);
    }
    await admin.query('ANALYZE pii');
    await admin.end();
    const scripts = mkdtempSync(join(dir, 'scripts-'));
    for (const [name, rows] of Object.entries(PII_ROWS)) {
      writeFileSync(join(scripts, `${name}.sql`), `\\set id random(1, ${PII_TABLE_ROWS - rows + 1})\nSELECT id, ${PII_COLUMNS.join(', ')} FROM pii WHERE id BETWEEN :id AND :id + ${rows - 1};\n`);
    }
    chmodSync(scripts, 0o755);

    const bdir = mkdtempSync(join(dir, 'bouncer-'));
    const b = await startPgbouncer(bdir, pgPort, PASSWORD);
    bouncer = b.proc;

    process.env.TIGHTLOOP_CRED_BENCH_PG = PASSWORD;
    const { gw, token, userId } = await benchGateway(stateDir, pgPort, 'thread', cleanups);
    // Before/after of the audit writer thread, side by side: the same gateway committing its
    // audit on the main thread (as before audit-writer.ts), on the write workload only.
    const inline = WORKLOADS.includes('tpcb') ? await benchGateway(join(dir, 'state-inline'), pgPort, 'inline', cleanups) : undefined;

    // Diagnosis, `--nomask`: a second resource with masking off, as a target of its own.
    const NOMASK = process.argv.includes('--nomask');
    if (NOMASK) {
      await gw.resources.create({ name: 'bench_nomask', host: '127.0.0.1', port: pgPort, database: 'bench', user: 'postgres', credential: 'env:TIGHTLOOP_CRED_BENCH_PG', tls: { mode: 'disable' } });
      await gw.resources.setPolicy('bench_nomask', { masking: { enabled: false } });
      await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: userId, resource: 'bench_nomask', mode: 'write' });
    }
    const bare = await startBarePipe(pgPort);
    cleanups.unshift(() => new Promise<void>((r) => bare.close(() => r())));
    const cPipe = WORKLOADS.includes('S') ? await startNativePipe(dir, pgPort) : undefined;
    if (cPipe !== undefined) cleanups.unshift(() => { cPipe.proc.kill(); return Promise.resolve(); });
    const pgUser = { user: 'postgres', password: PASSWORD };
    const targets: Record<string, Target> = {
      direct: { port: pgPort, ...pgUser },
      pgbouncer: { port: b.port, ...pgUser },
      'node-pipe': { port: (bare.address() as { port: number }).port, ...pgUser },
      tightloop: { port: gw.port ?? 0, user: 'bench', password: token },
    };
    if (inline !== undefined) targets['tl-inline-audit'] = { port: inline.gw.port ?? 0, user: 'bench', password: inline.token };
    if (NOMASK) targets['tl-nomask'] = { port: gw.port ?? 0, user: 'bench', password: token, database: 'bench_nomask' };
    if (cPipe !== undefined) targets['c-pipe'] = { port: cPipe.port, ...pgUser };
    const pidOf: Record<string, number | undefined> = { pgbouncer: b.proc.pid, 'c-pipe': cPipe?.proc.pid };
    const inProcess = new Set(['tightloop', 'node-pipe', 'tl-nomask', 'tl-inline-audit']);
    const wanted = (name: string, w: Workload): boolean => (ONLY === undefined || ONLY === name) && (name !== 'c-pipe' || w === 'S') && (name !== 'tl-inline-audit' || w === 'tpcb');

    await assertMasked(targets.direct, targets.tightloop);
    // Warm-up, not measured: V8 compiling the JS hot path and tiering up the parser's WASM, the
    // regexes' native code, PostgreSQL's buffers. On a loaded machine a 1 s warm-up can end
    // before 8 clients have logged in (no tps line): that still warmed the path.
    for (const [name, t] of Object.entries(targets)) {
      for (const w of WORKLOADS) {
        // The gateway's masking and guardrail paths get every workload, and longer: a first
        // measured round after 1 s of warm-up on a loaded machine still paid for compilation.
        const gateway = name === 'tightloop' || name === 'tl-inline-audit';
        if (wanted(name, w) && (w === 'S' || gateway)) await pgbench(t, w, scripts, MODES[0], gateway ? 2 : 1).catch(() => undefined);
      }
    }

    const results: Record<string, Record<string, Run[]>> = {};
    for (let round = 0; round < ROUNDS; round++) for (const w of WORKLOADS) {
      results[w] ??= {};
      for (const mode of MODES) {
        for (const [name, t] of Object.entries(targets)) {
          if (!wanted(name, w)) continue;
          const checkMasking = name === 'tightloop' && w !== 'S';
          const masked0 = checkMasking ? await maskedSoFar(gw) : 0;
          const cpu0 = inProcess.has(name) ? process.cpuUsage() : undefined;
          const p0 = cpuMs(pidOf[name]);
          const prof = name === 'tightloop' && process.env.BENCH_PROFILE !== undefined ? await startProfile() : undefined;
          const r = await pgbench(t, w, scripts, mode);
          if (prof !== undefined) await prof(join(process.env.BENCH_PROFILE ?? '.', `gateway-${w}-${mode}.cpuprofile`));
          const used = cpu0 === undefined ? undefined : process.cpuUsage(cpu0);
          const ms = used !== undefined ? (used.user + used.system) / 1000 : cpuMs(pidOf[name]) - p0;
          const cpuUs = (ms * 1000) / r.xacts;
          (results[w][name] ??= []).push({ tps: r.tps, cpuUs });
          const split = used !== undefined && process.env.BENCH_VERBOSE === '1' ? ` [user ${(used.user / 1000).toFixed(0)} ms, system ${(used.system / 1000).toFixed(0)} ms]` : '';
          console.log(`pgbench ${w === 'S' ? '-S' : w === 'tpcb' ? '-b tpcb-like' : `-f ${w}.sql`} -M ${mode} -c ${CLIENTS} -j ${THREADS} -T ${SECONDS} ${name.padEnd(9)} ${r.tps.toFixed(0).padStart(6)} tps` + (Number.isNaN(cpuUs) ? '' : `  (proxy CPU ${cpuUs.toFixed(0)} µs/${w === 'tpcb' ? 'transaction' : 'query'})`) + split);
          if (checkMasking) {
            const want = r.xacts * PII_ROWS[w] * PII_COLUMNS.length;
            let got = 0;
            for (let i = 0; i < 50 && got < want; i++) {
              got = (await maskedSoFar(gw)) - masked0;
              if (got < want) await new Promise((res) => setTimeout(res, 100));
            }
            if (got < want) throw new Error(`the gateway's audit counts ${got} masked values for ${r.xacts} transactions × ${PII_ROWS[w]} rows × ${PII_COLUMNS.length} columns (${want}): it did not mask the PII run`);
            console.log(`  masked by the gateway in this run: ${got} values (≥ ${want} expected)`);
          }
        }
      }
    }
    await assertMasked(targets.direct, targets.tightloop);

    const mask = maskThroughput(table, 2);
    console.log(`masker alone, ${PII_COLUMNS.length} PII text columns (every value masked): ${(mask.cpu / 1e6).toFixed(2)} M values per CPU-second (${(mask.wall / 1e6).toFixed(2)} M/s wall)`);
    console.log(`audit: ${JSON.stringify(gw.audit.stats)}${inline === undefined ? '' : `, main-thread commits (before): ${JSON.stringify(inline.gw.audit.stats)}`}; guardrail cache: ${JSON.stringify(gw.guardrails.stats)}`);
    const mean = (w: Workload, name: string, k: keyof Run): number => {
      const rs = results[w]?.[name];
      return rs === undefined || rs.length === 0 ? NaN : rs.reduce((a, x) => a + x[k], 0) / rs.length;
    };
    const f0 = (x: number): string => (Number.isNaN(x) ? 'NaN' : x.toFixed(0));
    const f2 = (x: number): string => (Number.isNaN(x) ? 'NaN' : x.toFixed(2));
    const keys: string[] = [];
    for (const w of WORKLOADS) {
      const p = w === 'S' ? '' : w === 'pii20' ? 'pii_' : `${w}_`;
      const g = mean(w, 'tightloop', 'tps');
      const n = mean(w, 'node-pipe', 'tps');
      console.log(`${w}: tightloop ${f0(g)} tps = ${f2(g / n)}× the bare Node pipe, ${f2(g / mean(w, 'pgbouncer', 'tps'))}× pgbouncer, ${f2(g / mean(w, 'direct', 'tps'))}× direct; ` +
        `proxy CPU µs/query: tightloop ${f0(mean(w, 'tightloop', 'cpuUs'))}, Node pipe ${f0(mean(w, 'node-pipe', 'cpuUs'))}, pgbouncer ${f0(mean(w, 'pgbouncer', 'cpuUs'))}`);
      for (const name of ['direct', 'pgbouncer', 'node-pipe', 'tightloop']) keys.push(`${p}${name.replace('-', '_')}_tps=${f0(mean(w, name, 'tps'))}`);
      for (const name of ['pgbouncer', 'node-pipe', 'tightloop']) keys.push(`${p}${name.replace('-', '_')}_cpu_us=${f0(mean(w, name, 'cpuUs'))}`);
      keys.push(`${p}ratio_vs_node_pipe=${f2(g / n)}`);
      if (w === 'S') keys.push(`ratio_vs_pgbouncer=${f2(g / mean(w, 'pgbouncer', 'tps'))}`, `ratio_vs_direct=${f2(g / mean(w, 'direct', 'tps'))}`);
      if (w === 'tpcb') {
        const i = mean(w, 'tl-inline-audit', 'tps');
        const ms = (a: Gateway['audit']['stats']): string => (a.commits === 0 ? 'NaN' : (a.commitMs / a.commits).toFixed(1));
        console.log(`tpcb: audit commits on the writer thread ${f0(g)} tps, on the main thread (before) ${f0(i)} tps: ${f2(g / i)}×; inline = ${f2(i / n)}× the bare Node pipe; ` +
          `mean audit commit ${ms(gw.audit.stats)} ms (thread), ${inline === undefined ? 'NaN' : ms(inline.gw.audit.stats)} ms (main thread)`);
        keys.push(`audit_commit_ms=${ms(gw.audit.stats)}`);
        keys.push(`tpcb_inline_audit_tps=${f0(i)}`, `tpcb_inline_audit_ratio_vs_node_pipe=${f2(i / n)}`);
      }
    }
    const c = mean('S', 'c-pipe', 'tps');
    if (!Number.isNaN(c)) console.log(`bare C pipe (reference, -S): ${f0(c)} tps, ${f2(c / mean('S', 'pgbouncer', 'tps'))}× pgbouncer, ${f2(c / mean('S', 'direct', 'tps'))}× direct`);
    console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores (tps ratios are side by side in this run); total ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log(`RESULT gateway ${keys.join(' ')} mask_values_per_s=${f0(mask.cpu)} load_avg=${f2(loadavg()[0])}`);
  } finally {
    bouncer?.kill();
    for (const c of cleanups) await c().catch(() => undefined);
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
