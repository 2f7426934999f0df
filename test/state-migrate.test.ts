import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { textOf } from '../src/core/text.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { BIN, freePort } from './helpers/child-server.js';
import { callApi, eventually } from './helpers/server.js';

/**
 * `tightloop state migrate --to postgres://…` on real parts: a real server fills a SQLite state
 * (users, tokens, a rule, its alert and the incident it opens, deploys, a gateway resource and
 * grant, statements through the gateway into the audit chain), the command copies it into a
 * database on the run's real test PostgreSQL, every row compares equal value by value, and
 * `tightloop up --state` on the copy serves the same data with a verifiable audit chain.
 */

const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;
const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-migrate-'));
let target: TestDatabase;
let upstream: TestDatabase;
let server: RunningServer | undefined;
let token = '';
let bobToken = '';
let child: ChildProcess | undefined;

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  try {
    return { code: await run(['node', 'tightloop', ...args]), out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

/** OTLP/JSON: `n` failing server spans of checkout 1.0.0 (first-seen version: an implicit deploy). */
function errorSpans(n: number): string {
  const now = Date.now() * 1e6;
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'POST /checkout', kind: 2,
    startTimeUnixNano: String(now + i * 1000), endTimeUnixNano: String(now + i * 1000 + 5_000_000), status: { code: 2 },
  }));
  return JSON.stringify({ resourceSpans: [{
    resource: { attributes: [
      { key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'service.version', value: { stringValue: '1.0.0' } },
      { key: 'deployment.environment', value: { stringValue: 'prod' } }] },
    scopeSpans: [{ scope: { name: 'test' }, spans }],
  }] });
}

/** Every row of every table, each value in one comparable form. */
function norm(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Buffer.isBuffer(v)) return `bytes:${v.toString('hex')}`;
  return `${typeof v === 'bigint' || typeof v === 'number' ? 'n' : typeof v}:${textOf(v)}`;
}
function sortedRows(rows: Array<Record<string, unknown>>): string[] {
  return rows.map((r) => Object.keys(r).sort().map((k) => `${k}=${norm(r[k])}`).join('|')).sort();
}

beforeAll(async () => {
  target = await createTestDatabase({ migrate: false });
  upstream = await createTestDatabase({ migrate: false });
  const up = new URL(upstream.connectionString);
  process.env.TIGHTLOOP_CRED_MIGRATE_UP = decodeURIComponent(up.password);
  server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  token = server.adminToken ?? '';
  const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(server!.url, token, method, path, body);
  const bob = await api<{ token: string }>('POST', '/api/users', { name: 'bob', role: 'member' });
  expect(bob.status).toBe(201);
  bobToken = bob.body.token;
  expect((await api('POST', '/api/tokens', { name: 'ci deploys' })).status).toBe(201);
  expect((await api('POST', '/api/rules', { name: 'checkout-errors', type: 'threshold', select: { service: 'checkout' }, by: ['service', 'environment'],
    signal: 'error_rate', threshold: 0.2, window: '2s', min_count: 20 })).status).toBe(201);
  expect((await api('POST', '/api/resources', { name: 'shop', host: up.hostname, port: Number(up.port), database: upstream.name, user: up.username,
    credential: 'env:TIGHTLOOP_CRED_MIGRATE_UP', tls: { mode: 'disable' }, allowInsecurePassword: true })).status).toBe(201);
  expect((await api('POST', '/api/access/grants', { user: 'admin', resource: 'shop', mode: 'write' })).status).toBe(201);
  const c = new pg.Client({ host: '127.0.0.1', port: server.gatewayPort ?? 0, user: 'admin', password: token, database: 'shop' });
  c.on('error', () => undefined);
  const owner = new pg.Client({ connectionString: upstream.connectionString });
  await owner.connect();
  await owner.query('create table orders (id int primary key, note text)');
  await owner.end();
  await c.connect();
  await c.query('insert into orders values ($1, $2)', [1, 'first']);
  await c.query('select * from orders');
  await c.end();
  // A Sentry event: its payload is a blob (bytea on PostgreSQL).
  const key = new URL(server.defaultDsn).username;
  expect((await fetch(`${server.url}/api/1/store/?sentry_key=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'migrated error', platform: 'node', exception: { values: [{ type: 'TypeError', value: 'x is undefined' }] } }) })).status).toBe(200);
  await eventually(async () => ((await api<{ groups?: unknown[] }>('GET', '/api/errors')).body.groups?.length ?? 0) > 0 ? true : undefined, 10_000);
  const d = await server.deploys.record({ service: 'checkout', version: '0.9.0', environment: 'prod', commit: 'abc1234', actor: 'ci' });
  await server.deploys.markFinished(d.id);
  await eventually(async () => {
    await fetch(`${server!.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: errorSpans(30) });
    const r = await api<{ incidents: Array<{ id: string }> }>('GET', '/api/incidents?status=open');
    return r.body.incidents[0];
  }, 30_000);
}, 90_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  await server?.close();
  await target?.drop();
  await upstream?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describePg('tightloop state migrate', () => {
  it('refuses while the server has the data dir, then copies every row exactly, and tightloop up --state serves it', async () => {
    const busy = await cli('state', 'migrate', '--to', target.connectionString, '--data-dir', dataDir);
    expect(busy.code, busy.out).toBe(2);
    expect(busy.out).toContain('is in use: stop the tightloop process');
    await server!.close();
    server = undefined;

    // A table this version does not know: refused by name, nothing written.
    const file = join(dataDir, 'state.db');
    const lite = new Database(file);
    lite.exec('create table later_feature (id text primary key)');
    lite.close();
    const unknown = await cli('state', 'migrate', '--to', target.connectionString, '--data-dir', dataDir);
    expect(unknown.code, unknown.out).toBe(2);
    expect(unknown.out).toContain('no table later_feature');
    const lite2 = new Database(file);
    lite2.exec('drop table later_feature');
    lite2.close();

    // An edited audit record: the chain check on the target fails and the copy is rolled back.
    const edit = new Database(file);
    const before = edit.prepare('select actor from gateway_audit where seq = 2').get() as { actor: string | null };
    edit.prepare(`update gateway_audit set actor = 'mallory' where seq = 2`).run();
    edit.close();
    const broken = await cli('state', 'migrate', '--to', target.connectionString, '--data-dir', dataDir);
    const restore = new Database(file);
    restore.prepare('update gateway_audit set actor = ? where seq = 2').run(before.actor);
    restore.close();
    expect(broken.code, broken.out).toBe(1);
    expect(broken.out).toMatch(/audit chain BROKEN on the target at record 2 .*rolled back/);
    const check = new pg.Client({ connectionString: target.connectionString });
    await check.connect();
    expect((await check.query<{ n: number }>('select count(*)::int as n from users')).rows[0].n).toBe(0);
    await check.end();

    const ok = await cli('state', 'migrate', '--to', target.connectionString, '--data-dir', dataDir);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/audit chain OK on the target: \d+ records/);

    // Value by value: every table of the SQLite file equals its copy.
    const src = new Database(file, { readonly: true });
    src.defaultSafeIntegers(true);
    const tables = (src.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'tightloop_migration%'`).all() as Array<{ name: string }>).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['users', 'api_tokens', 'gateway_audit', 'gateway_grants', 'incidents', 'deploys', 'errors_events']));
    expect((src.prepare('select count(*) as n from errors_events').get() as { n: bigint }).n).toBe(1n);
    const pgc = new pg.Client({ connectionString: target.connectionString, types: { getTypeParser: (oid: number) => (oid === 17 ? (v: string) => Buffer.from(v.slice(2), 'hex') : (v: string) => v) } });
    await pgc.connect();
    try {
      let rows = 0;
      for (const t of tables) {
        const a = sortedRows(src.prepare(`select * from "${t}"`).all() as Array<Record<string, unknown>>);
        const b = sortedRows((await pgc.query(`select * from "${t}"`)).rows as Array<Record<string, unknown>>);
        // pg gives text for every non-bytea type here: compare the values, not JS types.
        const strip = (s: string[]) => s.map((x) => x.replace(/=(n|string|bigint):/g, '='));
        expect(strip(b), t).toEqual(strip(a));
        rows += a.length;
      }
      expect(rows).toBeGreaterThan(20);
    } finally {
      await pgc.end();
      src.close();
    }

    // The target now holds tightloop rows: a second run is refused.
    const again = await cli('state', 'migrate', '--to', target.connectionString, '--data-dir', dataDir);
    expect(again.code, again.out).toBe(2);
    expect(again.out).toMatch(/already holds tightloop data \(.*users: 2 rows/);

    // tightloop up on the copy: same tokens, the incident, a whole audit chain.
    const port = await freePort();
    child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--state', target.connectionString, '--port', String(port), '--gateway-port', String(await freePort()), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const url = `http://127.0.0.1:${port}`;
    await eventually(async () => {
      if (child!.exitCode !== null) throw new Error(`server exited: ${stderr}`);
      return (await fetch(`${url}/api/health`).catch(() => undefined))?.ok === true ? true : undefined;
    }, 30_000);
    expect((await callApi(url, token, 'GET', '/api/users')).status).toBe(200);
    expect((await callApi(url, bobToken, 'GET', '/api/incidents')).status).toBe(200);
    const incidents = await callApi<{ incidents: Array<{ service: string }> }>(url, token, 'GET', '/api/incidents');
    expect(incidents.body.incidents.map((i) => i.service)).toContain('checkout');
    const verify = await cli('audit', 'verify', '--url', url, '--token', token);
    expect(verify.code, verify.out).toBe(0);
    expect(verify.out).toContain('audit chain OK');
  }, 120_000);
});
