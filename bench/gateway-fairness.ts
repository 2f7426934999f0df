/**
 * `npm run bench -- gateway-fairness`: how much one user's many sessions slow another user's
 * statements through the gateway (issue 15: 8 sessions of one user made others' statements take
 * 5–14 s; column masking and message framing are in no per-user budget).
 *
 * One gateway, one PostgreSQL (embedded), masking on with column rules for four PII columns.
 * The `light` user runs one short masked query at a time (1 row), first alone, then while the
 * `heavy` user's HEAVY_SESSIONS sessions (pgbench, another process) each loop over a
 * HEAVY_ROWS-row masked result. Prints
 * light's latency percentiles in both phases, side by side in one run, and the heavy user's
 * rows/s. Flags: --heavy-sessions N (8), --heavy-rows N (2000), --seconds N (10).
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

const PASSWORD = 'bench-secret';
const HEAVY_SESSIONS = arg('heavy-sessions', 8);
const HEAVY_ROWS = arg('heavy-rows', 2000);
const SECONDS = arg('seconds', 10);

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
      FROM generate_series(1, ${Math.max(HEAVY_ROWS, 1000)}) i`);
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
    const gw = await startGateway({ db: state.db, dataDir: stateDir, log: pino({ level: 'silent' }), port: 0, maxSessionsPerUser: 0 });
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
    const alone = await lightRun(SECONDS * 1000);

    // The heavy user's sessions run in pgbench (another process), so their clients' row parsing
    // does not share the gateway's thread as in-process pg clients would.
    const script = join(dir, 'heavy.sql');
    writeFileSync(script, `SELECT id, email, phone, card, ssn FROM pii WHERE id <= ${HEAVY_ROWS};\n`);
    chmodSync(dir, 0o755);
    const bench = new Promise<string>((resolve, reject) => {
      execFile('pgbench', ['-h', '127.0.0.1', '-p', String(gw.port ?? 0), '-U', 'heavy', '-n', '-f', script, '-c', String(HEAVY_SESSIONS), '-j', '2', '-T', String(SECONDS + 2), 'bench'],
        { env: { ...process.env, PGPASSWORD: heavy.token, PGSSLMODE: 'disable' }, timeout: (SECONDS + 60) * 1000 }, (err, stdout) => {
        if (err === null) resolve(stdout);
        else reject(new Error(`pgbench failed: ${err.message}`));
      });
    });
    await new Promise((r) => setTimeout(r, 1000)); // the heavy sessions get going
    const loaded = await lightRun(SECONDS * 1000);
    const out = await bench;
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
    const heavyRate = tps * HEAVY_ROWS;
    await lightClient.end();

    const line = (name: string, xs: number[]): string => `${name.padEnd(28)} n=${String(xs.length).padStart(5)}  p50 ${pct(xs, 50).toFixed(2)} ms  p95 ${pct(xs, 95).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  max ${Math.max(...xs).toFixed(1)} ms`;
    console.log(line('light alone', alone));
    console.log(line(`light + ${HEAVY_SESSIONS} heavy sessions`, loaded));
    console.log(`heavy: ${HEAVY_SESSIONS} sessions × ${HEAVY_ROWS}-row masked results, ${heavyRate.toFixed(0)} rows/s (${(heavyRate * 4).toFixed(0)} masked values/s); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    await gw.close();
    await state.close();
    console.log(`RESULT gateway-fairness p50_ratio=${(pct(loaded, 50) / pct(alone, 50)).toFixed(2)} p95_ratio=${(pct(loaded, 95) / pct(alone, 95)).toFixed(2)} p99_ratio=${(pct(loaded, 99) / pct(alone, 99)).toFixed(2)} light_p95_ms=${pct(loaded, 95).toFixed(1)} heavy_rows_per_s=${heavyRate.toFixed(0)}`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
