/**
 * `npm run bench -- gateway-fairness`: how much one user's many sessions slow another user's
 * statements through the gateway (issue 15 F5: beside another user's 8 heavy masked sessions a
 * light user's p95 rose 7.3×, beside 1 session doing as much work 1.12×).
 *
 * One gateway, one PostgreSQL (embedded), masking on with column rules for four PII columns.
 * The `light` user runs one short masked query at a time (1 row): alone, then while the `heavy`
 * user's sessions (pgbench, another process) loop over masked results — HEAVY_SESSIONS sessions
 * of HEAVY_ROWS rows each, or one session of HEAVY_SESSIONS × HEAVY_ROWS rows (the same rows per
 * turn of all its sessions). Each phase runs under both schedulings of the work on server data,
 * side by side in one run: `fair` (chunk-scheduler.ts, one chunk per user per round) and `old`
 * (each chunk worked on as it arrives: one per session per turn). Then the heavy user alone, for
 * its throughput under both. Prints light's latency percentiles per phase, the p95 ratio beside
 * 8 sessions over beside 1, and the heavy user's rows/s, with the load average.
 * Flags: --heavy-sessions N (8), --heavy-rows N (2000), --seconds N (10), --reps N (1).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../src/auth/index.js';
import { gatewayMigrations, startGateway } from '../src/gateway/index.js';
import { openStateStore, toTimestamp } from '../src/state/index.js';
import { arg, startBenchPostgres } from './_util.js';
import { ChunkScheduler } from '../src/gateway/chunk-scheduler.js';

const PASSWORD = 'bench-secret';
const HEAVY_SESSIONS = arg('heavy-sessions', 8);
const HEAVY_ROWS = arg('heavy-rows', 2000);
const SECONDS = arg('seconds', 10);
const REPS = arg('reps', 1);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-fair-'));
  chmodSync(dir, 0o755);
  const { server, port: pgPort } = await startBenchPostgres(join(dir, 'data'), PASSWORD, ['-c', 'fsync=off', '-c', 'synchronous_commit=off']);
  const stateDir = join(dir, 'state');
  try {
    await server.createDatabase('bench');
    const admin = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: PASSWORD, database: 'bench' });
    await admin.connect();
    await admin.query(`CREATE TABLE pii AS SELECT i AS id, 'user' || i || '.name@example.com' AS email, '+1 415 555 ' || lpad((i % 10000)::text, 4, '0') AS phone,
      '4111 1111 1111 ' || lpad((i % 10000)::text, 4, '0') AS card, lpad((i % 1000)::text, 3, '0') || '-45-' || lpad((i % 10000)::text, 4, '0') AS ssn
      FROM generate_series(1, ${Math.max(HEAVY_ROWS * HEAVY_SESSIONS, 1000)}) i`);
    await admin.query('ALTER TABLE pii ADD PRIMARY KEY (id); ANALYZE pii');
    await admin.end();

    const state = await openStateStore({ dialect: 'sqlite', path: join(stateDir, 'state.db'), migrations: gatewayMigrations });
    await ensureAdmin(state.db, stateDir);
    const user = async (name: string): Promise<{ id: string; token: string }> => {
      const id = ulid();
      await state.db.insertInto('users').values({ id, name, role: 'member', created_at: toTimestamp(Date.now()) }).execute();
      return { id, token: (await createToken(state.db, { userId: id, name })).token };
    };
    const heavy = await user('heavy');
    const light = await user('light');
    process.env.TIGHTLOOP_CRED_BENCH_PG = PASSWORD;
    const scheduler = new ChunkScheduler();
    const gw = await startGateway({ db: state.db, dataDir: stateDir, log: pino({ level: 'silent' }), port: 0, maxSessionsPerUser: 0, chunkScheduler: scheduler });
    await gw.resources.create({
      name: 'bench', host: '127.0.0.1', port: pgPort, database: 'bench', user: 'postgres', credential: 'env:TIGHTLOOP_CRED_BENCH_PG', tls: { mode: 'disable' },
      policy: { masking: { columns: ['email', 'phone', 'card', 'ssn'].map((name) => ({ name, mode: 'partial' })) } },
    });
    for (const u of [heavy, light]) await gw.access.grant({ userId: 'bench', userName: 'bench-setup', role: 'admin' }, { subjectKind: 'user', subject: u.id, resource: 'bench', mode: 'read' });
    const connect = async (name: string, token: string): Promise<pg.Client> => {
      const c = new pg.Client({ host: '127.0.0.1', port: gw.port ?? 0, user: name, password: token, database: 'bench' });
      await c.connect();
      return c;
    };

    const lightClient = await connect('light', light.token);
    const lightRun = async (ms: number): Promise<number[]> => {
      const out: number[] = [];
      const until = performance.now() + ms;
      let i = 0;
      while (performance.now() < until) {
        const t0 = performance.now();
        const r = await lightClient.query<{ email: string }>(`SELECT id, email, phone, card, ssn FROM pii WHERE id = ${(i++ % 1000) + 1}`);
        out.push(performance.now() - t0);
        if (r.rows.length !== 1 || r.rows[0].email.includes('.name@')) throw new Error('light: unexpected or unmasked row');
      }
      return out;
    };
    await lightRun(1000); // warm-up

    // The heavy user's sessions run in pgbench (another process), so their clients' row parsing
    // does not share the gateway's thread as in-process pg clients would.
    const heavyRun = (sessions: number, rows: number): Promise<number> => {
      const script = join(dir, `heavy-${rows}.sql`);
      writeFileSync(script, `SELECT id, email, phone, card, ssn FROM pii WHERE id <= ${rows};\n`);
      chmodSync(dir, 0o755);
      return new Promise<number>((resolve, reject) => {
        execFile('pgbench', ['-h', '127.0.0.1', '-p', String(gw.port ?? 0), '-U', 'heavy', '-n', '-f', script, '-c', String(sessions), '-j', String(Math.min(sessions, 2)), '-T', String(SECONDS + 2), 'bench'],
          { env: { ...process.env, PGPASSWORD: heavy.token, PGSSLMODE: 'disable' }, timeout: (SECONDS + 60) * 1000 }, (err, stdout) => {
          if (err === null) resolve(Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN) * rows);
          else reject(new Error(`pgbench failed: ${err.message}`));
        });
      });
    };
    type Mode = 'fair' | 'old';
    type Shape = { sessions: number; rows: number };
    const shapes: Shape[] = [{ sessions: HEAVY_SESSIONS, rows: HEAVY_ROWS }, { sessions: 1, rows: HEAVY_ROWS * HEAVY_SESSIONS }];
    const shapeName = (s: Shape): string => `${s.sessions}×${s.rows}`;
    const lightMs = new Map<string, number[]>();
    const heavyRate = new Map<string, number[]>();
    const loads = new Map<string, number[]>();
    const add = <T>(m: Map<string, T[]>, k: string, v: T[]): void => {
      m.set(k, [...(m.get(k) ?? []), ...v]);
    };
    const phase = async (mode: Mode, shape: Shape | undefined, withLight: boolean): Promise<void> => {
      scheduler.direct = mode === 'old';
      const key = `${mode} ${shape === undefined ? 'alone' : shapeName(shape)}${withLight ? '' : ' heavy only'}`;
      if (shape === undefined) {
        add(lightMs, key, await lightRun(SECONDS * 1000));
        add(loads, key, [loadavg()[0]]);
        return;
      }
      const bench = heavyRun(shape.sessions, shape.rows);
      await new Promise((r) => setTimeout(r, 1000)); // the heavy sessions get going
      if (withLight) add(lightMs, key, await lightRun(SECONDS * 1000));
      add(heavyRate, key, [await bench]);
      add(loads, key, [loadavg()[0]]);
    };
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of ['fair', 'old'] as const) await phase(mode, undefined, true);
      for (const shape of shapes) for (const mode of ['fair', 'old'] as const) await phase(mode, shape, true);
      for (const shape of shapes) for (const mode of ['fair', 'old'] as const) await phase(mode, shape, false);
    }
    await lightClient.end();

    const line = (name: string, xs: number[]): string => `${name.padEnd(24)} n=${String(xs.length).padStart(5)}  p50 ${pct(xs, 50).toFixed(2)} ms  p95 ${pct(xs, 95).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  max ${Math.max(...xs).toFixed(1)} ms`;
    const mean = (xs: number[] | undefined): number => (xs === undefined || xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
    const load = (k: string): string => `load ${mean(loads.get(k)).toFixed(1)}`;
    for (const [k, xs] of lightMs) console.log(`${line(`light, ${k}`, xs)}  ${heavyRate.has(k) ? `heavy ${mean(heavyRate.get(k)).toFixed(0)} rows/s  ` : ''}${load(k)}`);
    for (const [k, r] of heavyRate) if (!lightMs.has(k)) console.log(`${`heavy, ${k}`.padEnd(32)} ${mean(r).toFixed(0)} rows/s (${(mean(r) * 4).toFixed(0)} masked values/s)  ${load(k)}`);
    const p95 = (k: string): number => pct(lightMs.get(k) ?? [], 95);
    const many = shapeName(shapes[0]);
    const one = shapeName(shapes[1]);
    const keys: string[] = [];
    for (const mode of ['fair', 'old'] as const) {
      const r8 = p95(`${mode} ${many}`) / p95(`${mode} alone`);
      const r1 = p95(`${mode} ${one}`) / p95(`${mode} alone`);
      console.log(`${mode}: light p95 beside ${many} ${r8.toFixed(2)}× alone, beside ${one} ${r1.toFixed(2)}×; 8 vs 1: ${(r8 / r1).toFixed(2)}×`);
      keys.push(`${mode}_p95_ratio_many=${r8.toFixed(2)}`, `${mode}_p95_ratio_one=${r1.toFixed(2)}`, `${mode}_many_vs_one=${(r8 / r1).toFixed(2)}`,
        `${mode}_heavy_rows_per_s_many=${mean(heavyRate.get(`${mode} ${many}`)).toFixed(0)}`,
        `${mode}_heavy_alone_rows_per_s_many=${mean(heavyRate.get(`${mode} ${many} heavy only`)).toFixed(0)}`,
        `${mode}_heavy_alone_rows_per_s_one=${mean(heavyRate.get(`${mode} ${one} heavy only`)).toFixed(0)}`);
    }
    console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    await gw.close();
    await state.close();
    console.log(`RESULT gateway-fairness ${keys.join(' ')}`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
