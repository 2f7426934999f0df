import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditAnchor } from '../src/gateway/audit-anchor.js';
import { startNode, type RunningNode } from '../src/http/cluster.js';
import { serverConfigSchema } from '../src/http/config.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { PostgresBus } from '../src/state/bus.js';
import { openStateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { callApi, eventually } from './helpers/server.js';

/**
 * Several nodes serving at once on one PostgreSQL (docs/cluster.md): every node answers the API
 * (the node without the `active` lease forwards to the holder) and serves the gateway, while
 * the singleton work runs on the lease holder and moves when it goes. Real PostgreSQL (the
 * run's test server), in-process nodes with a short lease; the nodes share the audit key.
 */

const NODE_TIMING = { heartbeatMs: 300, leaseMs: 5_000, marginMs: 500 };
const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;

async function cluster(): Promise<{ db: TestDatabase; node: () => Promise<RunningNode> }> {
  const db = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  cleanups.push(() => db.drop());
  // One audit key and a copy of its anchor for every node (the audit_key_mismatch guard).
  const keyDir = mkdtempSync(join(tmpdir(), 'tightloop-serve-key-'));
  const anchor = new AuditAnchor(join(keyDir, 'gateway-audit.anchor'), join(keyDir, 'gateway-audit.key'), silent);
  await anchor.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
  await anchor.close();
  cleanups.push(() => Promise.resolve(rmSync(keyDir, { recursive: true, force: true })));
  const node = async (): Promise<RunningNode> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-serve-'));
    for (const f of ['gateway-audit.key', 'gateway-audit.anchor', 'gateway-mask.key']) {
      try { copyFileSync(join(keyDir, f), join(dataDir, f)); } catch { /* the mask key exists once a node made it */ }
    }
    const n = await startNode(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl: db.connectionString }), silent, { timing: NODE_TIMING, gatewayPort: 0 });
    cleanups.push(async () => { await n.close(); rmSync(dataDir, { recursive: true, force: true }); });
    return n;
  };
  return { db, node };
}

/**
 * A gateway resource `statedb` on the cluster's own state database, created through `url`: the
 * database every test has at hand (its password handed over in TIGHTLOOP_CRED_SERVE_TEST).
 */
function stateDbResource(db: TestDatabase, url: string, admin: string): Promise<{ status: number; body: unknown }> {
  const u = new URL(db.connectionString);
  process.env.TIGHTLOOP_CRED_SERVE_TEST = decodeURIComponent(u.password);
  return callApi(url, admin, 'POST', '/api/resources', {
    name: 'statedb', host: u.hostname, port: Number(u.port), database: u.pathname.slice(1), user: decodeURIComponent(u.username),
    credential: 'env:TIGHTLOOP_CRED_SERVE_TEST', tls: { mode: 'disable' }, allowInsecurePassword: true,
  });
}

/** The gateway port a node listens on (the same before and after it takes the lease). */
function gatewayPort(n: RunningNode): number {
  const p = n.gatewayPort;
  if (p === undefined) throw new Error('node has no gateway listener');
  return p;
}

describePg('several nodes serve at once', () => {
  it('both nodes answer the API and ingest; the work happens on the lease holder', async () => {
    const c = await cluster();
    const a = await c.node();
    const b = await c.node();
    expect(a.active()).toBeDefined();
    expect(b.active()).toBeUndefined();
    const admin = a.active()?.adminToken ?? '';
    // A rule written through b is evaluated by a (it is a's API that b forwarded to).
    const rule = { name: 'via-b', type: 'threshold', signal: 'error_rate', select: { service: 'shop' }, threshold: 0.5, window: '1m', min_count: 5 };
    // b may answer 503 (Retry-After) until it has read the holder's URL: clients retry.
    const created = await eventually(async () => {
      const r = await callApi<{ id: string }>(b.url, admin, 'POST', '/api/rules', rule);
      return r.status === 503 ? undefined : r;
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await callApi<{ spec?: { name: string } }>(a.url, admin, 'GET', `/api/rules/${created.body.id}`)).body.spec?.name).toBe('via-b');
    expect((await callApi<{ spec?: { name: string } }>(b.url, admin, 'GET', `/api/rules/${created.body.id}`)).body.spec?.name).toBe('via-b');
    // Refusals travel back as they are.
    expect((await callApi(b.url, 'not-a-token', 'GET', '/api/rules')).status).toBe(401);
    // OTLP through b lands in the one telemetry store (the holder's).
    const logs = { resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'via-b' } }] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: String(Date.now() * 1e6), severityText: 'ERROR', body: { stringValue: 'through node b' } }] }] }] };
    const ingest = await fetch(`${b.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(logs) });
    expect(ingest.status).toBe(200);
    await eventually(async () => {
      const s = await callApi<{ logs?: Array<{ body: string }> }>(b.url, admin, 'GET', '/api/logs?service=via-b&from=now-1h');
      return s.body.logs?.some((x) => x.body === 'through node b') === true ? true : undefined;
    }, 10_000);
    // Both nodes listen for the gateway.
    expect(gatewayPort(a)).toBeGreaterThan(0);
    expect(gatewayPort(b)).toBeGreaterThan(0);
  });

  it('a gateway session through node b ends within a second of its grant being revoked through node a', async () => {
    const c = await cluster();
    const a = await c.node();
    const b = await c.node();
    const admin = a.active()?.adminToken ?? '';
    const res = await stateDbResource(c.db, a.url, admin);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const mia = await callApi<{ token: string }>(a.url, admin, 'POST', '/api/users', { name: 'mia', role: 'member' });
    expect(mia.status, JSON.stringify(mia.body)).toBe(201);
    const grant = await callApi<{ id: string }>(a.url, admin, 'POST', '/api/access/grants', { user: 'mia', resource: 'statedb', mode: 'read' });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);

    const client = new pg.Client({ host: '127.0.0.1', port: gatewayPort(b), user: 'mia', password: mia.body.token, database: 'statedb' });
    const ended = new Promise<Error | undefined>((resolve) => {
      client.on('error', (err) => resolve(err));
      client.on('end', () => resolve(undefined));
    });
    await client.connect();
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

    const revoked = await callApi(a.url, admin, 'DELETE', `/api/access/grants/${grant.body.id}`);
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const t0 = performance.now();
    const err = await Promise.race([ended, new Promise<'still open'>((r) => setTimeout(() => r('still open'), 1_000))]);
    expect(err).not.toBe('still open');
    expect(performance.now() - t0).toBeLessThan(1_000);
    await client.end().catch(() => undefined);
    // And b refuses a new session on the revoked grant.
    const again = new pg.Client({ host: '127.0.0.1', port: gatewayPort(b), user: 'mia', password: mia.body.token, database: 'statedb' });
    again.on('error', () => undefined);
    await expect(again.connect()).rejects.toThrow();
    await again.end().catch(() => undefined);
  });

  it('when the lease holder goes, the survivor runs the singleton work and keeps its gateway sessions', async () => {
    const c = await cluster();
    const a = await c.node();
    const b = await c.node();
    const admin = a.active()?.adminToken ?? '';
    // b may answer 503 (Retry-After) until it has read the holder's URL: clients retry.
    const resource = await eventually(async () => {
      const r = await stateDbResource(c.db, b.url, admin);
      return r.status === 503 ? undefined : r;
    });
    expect(resource.status, JSON.stringify(resource.body)).toBe(201);
    expect((await callApi(b.url, admin, 'POST', '/api/access/grants', { user: 'admin', resource: 'statedb', mode: 'read' })).status).toBe(201);
    // The resource and grant were written through a (b forwards the API); b's gateway learns of
    // them from the event bus, a few milliseconds later (longer on a loaded machine).
    const client = await eventually(async () => {
      const attempt = new pg.Client({ host: '127.0.0.1', port: gatewayPort(b), user: 'admin', password: admin, database: 'statedb' });
      attempt.on('error', () => undefined);
      try {
        await attempt.connect();
        return attempt;
      } catch {
        await attempt.end().catch(() => undefined);
        return undefined;
      }
    });
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

    await a.close();
    const server = await b.whenActive;
    expect(b.active()).toBe(server);
    // The survivor holds the lease and evaluates a rule created through it.
    const created = await callApi<{ id: string }>(b.url, admin, 'POST', '/api/rules', { name: 'after', type: 'threshold', signal: 'error_rate', select: { service: 'shop' }, threshold: 0.5, window: '1m', min_count: 5 });
    expect(created.status).toBe(201);
    const view = await callApi<{ leases: Array<{ name: string; holder: string }> }>(b.url, admin, 'GET', '/api/cluster');
    expect(view.body.leases.find((l) => l.name === 'active')?.holder).toBe(b.cluster?.id);
    // The session opened through b before the takeover still works.
    expect((await client.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
    await client.end();
  });

  it('the holder follows silences and deploys another node wrote (silences.changed, deploys.changed)', async () => {
    const c = await cluster();
    const a = await c.node();
    const admin = a.active()?.adminToken ?? '';
    // Another node's writes as they reach PostgreSQL: the rows, then their events.
    const store = await openStateStore({ dialect: 'postgres', connectionString: c.db.connectionString, migrate: false });
    cleanups.push(() => store.close());
    const other = new PostgresBus({ db: store.db, connectionString: c.db.connectionString, node: 'other-node' });
    await other.start();
    cleanups.push(() => other.close());
    const now = Date.now();
    await sql`insert into detect_silences (id, matchers, starts_at, ends_at, comment, created_by, created_at)
      values ('01SILENCEFROMOTHER00000000', ${JSON.stringify([{ name: 'service', value: 'shop', op: '=' }])}, ${new Date(now - 1_000).toISOString()},
        ${new Date(now + 3_600_000).toISOString()}, 'maintenance', 'admin', ${new Date(now).toISOString()})`.execute(store.db);
    await other.publish('silences.changed', { method: 'POST', route: '/api/silences' });
    await eventually(async () => {
      const r = await callApi<{ silences?: Array<{ id: string }> }>(a.url, admin, 'GET', '/api/silences');
      return r.body.silences?.some((x) => x.id === '01SILENCEFROMOTHER00000000') === true ? true : undefined;
    }, 5_000);
    await sql`update detect_silences set ends_at = ${new Date(now - 500).toISOString()} where id = '01SILENCEFROMOTHER00000000'`.execute(store.db);
    await other.publish('silences.changed', { method: 'DELETE', route: '/api/silences/:id' });
    await eventually(async () => {
      const r = await callApi<{ silences?: Array<{ id: string }> }>(a.url, admin, 'GET', '/api/silences');
      return r.body.silences?.some((x) => x.id === '01SILENCEFROMOTHER00000000') === false ? true : undefined;
    }, 5_000);

    const at = new Date().toISOString();
    await sql`insert into deploys (id, service, version, environment, previous_version, status, source, started_at, updated_at)
      values ('01DEPLOYFROMOTHER000000000', 'shop', 'v2', 'production', 'v1', 'verifying', 'api', ${at}, ${at})`.execute(store.db);
    await other.publish('deploys.changed', { method: 'POST', route: '/api/deploys' });
    const verification = await eventually(async () => {
      const r = await sql<{ id: string }>`select id from deploy_verifications where deploy_id = '01DEPLOYFROMOTHER000000000'`.execute(store.db);
      return r.rows[0];
    }, 5_000);
    expect(verification.id).toEqual(expect.any(String));
  });
});
