import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../src/http/cluster.js';
import { serverConfigSchema } from '../src/http/config.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import type { ClusterView } from '../src/state/cluster.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { isConnectionError, openStateStore } from '../src/state/index.js';
import { sql } from 'kysely';
import { callApi, eventually } from './helpers/server.js';
import { tcpCut, type TcpCut } from './helpers/tcp-cut.js';

/**
 * A node that loses its PostgreSQL state database (src/http/cluster.ts): it stops its work
 * before the lease can lapse, answers 503 `state_unavailable` with Retry-After meanwhile, stays
 * up, and serves again by itself when PostgreSQL is back (as a standby, or by taking the lease).
 * PostgreSQL is the run's real test server; the node reaches it through a TCP forwarder that
 * the test cuts (every connection reset, new ones refused) and restores.
 */

const NODE_TIMING = { heartbeatMs: 300, leaseMs: 5_000, marginMs: 500 };
const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;

async function database(): Promise<TestDatabase> {
  const d = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  cleanups.push(() => d.drop());
  return d;
}

async function cutBetween(d: TestDatabase): Promise<{ cut: TcpCut; url: string }> {
  const u = new URL(d.connectionString);
  const cut = await tcpCut(u.hostname, Number(u.port));
  cleanups.push(() => cut.close());
  u.port = String(cut.port);
  return { cut, url: u.toString() };
}

async function node(stateUrl: string): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-recover-'));
  const n = await startNode(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl }), silent, { timing: NODE_TIMING });
  cleanups.push(async () => { await n.close(); rmSync(dataDir, { recursive: true, force: true }); });
  return n;
}

/** The node's answer; status 0 while nothing listens (the moment its server and its standby listener swap). */
async function answer(url: string, token: string, path = '/api/services'): Promise<{ status: number; code?: string; retryAfter: string | null }> {
  let r: Response;
  try {
    r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  } catch {
    return { status: 0, retryAfter: null };
  }
  const body = (await r.json().catch(() => ({}))) as { error?: { code: string } };
  return { status: r.status, code: body.error?.code, retryAfter: r.headers.get('retry-after') };
}

describePg('a node that loses PostgreSQL', () => {
  it('answers 503 state_unavailable with Retry-After, stays up, and serves again by itself when PostgreSQL is back', async () => {
    const d = await database();
    const { cut, url } = await cutBetween(d);
    const a = await node(url);
    const server = a.active();
    expect(server).toBeDefined();
    const token = server?.adminToken ?? '';
    expect((await answer(a.url, token)).status).toBe(200);

    await cut.cut();
    // Within the lease time it stops every pillar (the full server is gone) and answers 503.
    const down = await eventually(async () => {
      const r = await answer(a.url, token);
      return a.active() === undefined && r.code === 'state_unavailable' ? r : undefined;
    }, 20_000);
    expect(down).toMatchObject({ status: 503, retryAfter: '2' });
    const health = await fetch(`${a.url}/api/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'state_unavailable' });
    expect(health.headers.get('retry-after')).toBe('2');
    expect((await answer(a.url, '', '/v1/traces')).status).toBe(503);

    await cut.restore();
    // Alone on its database, it takes the lease again (a new fencing token) and serves everything.
    await eventually(async () => ((await answer(a.url, token)).status === 200 ? true : undefined), 30_000);
    expect(a.active()).toBeDefined();
    const view = await callApi<ClusterView>(a.url, token, 'GET', '/api/cluster');
    expect(view.body.leases).toEqual([expect.objectContaining({ name: 'active', holder: a.cluster?.id, token: 2 })]);
  }, 120_000);

  it('another node takes over; the cut node rejoins as a standby and takes the lease back when that node stops', async () => {
    const d = await database();
    const { cut, url } = await cutBetween(d);
    const a = await node(url);
    const token = a.active()?.adminToken ?? '';
    const b = await node(d.connectionString);
    expect(b.active()).toBeUndefined();

    await cut.cut();
    const took = await b.whenActive;
    expect((await answer(took.url, token)).status).toBe(200);
    // The old holder stopped its work before b could take the lease (src/state/cluster.ts).
    expect(a.active()).toBeUndefined();
    expect(await answer(a.url, token)).toMatchObject({ status: 503, code: 'state_unavailable', retryAfter: '2' });

    await cut.restore();
    // Back on PostgreSQL: not the holder (its load-balancer check 503), its API forwarded to b's,
    // alive in the cluster view.
    await eventually(async () => ((await answer(a.url, token)).status === 200 ? true : undefined), 20_000);
    expect((await fetch(`${a.url}/api/health`)).status).toBe(200);
    expect((await fetch(`${a.url}/api/health/active`)).status).toBe(503);
    const view = await callApi<ClusterView>(a.url, token, 'GET', '/api/cluster');
    expect(view.body.nodes.find((n) => n.id === a.cluster?.id)).toMatchObject({ alive: true, leases: [] });
    expect(view.body.leases[0]).toMatchObject({ holder: b.cluster?.id, token: 2 });

    await b.close();
    await eventually(async () => ((await answer(a.url, token, '/api/health/active')).status === 200 ? true : undefined), 30_000);
    const after = await callApi<ClusterView>(a.url, token, 'GET', '/api/cluster');
    expect(after.body.leases[0]).toMatchObject({ holder: a.cluster?.id, token: 3 });
  }, 120_000);

  it('tells a state database that went away from a statement it refused (503 and retry, or the error)', async () => {
    const d = await database();
    const { cut, url } = await cutBetween(d);
    const s = await openStateStore({ dialect: 'postgres', connectionString: url, migrate: false, connectTimeoutMs: 1_000 });
    cleanups.push(() => s.close());
    const refused = await sql`select nonsense from nowhere`.execute(s.db).catch((e: unknown) => e);
    expect(isConnectionError(refused)).toBe(false);
    // A server-side end of the session (57P01, as on a PostgreSQL shutdown or failover).
    const killed = await s.db.connection().execute(async (c) => {
      const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(c)).rows[0].pid;
      const admin = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false });
      await sql`select pg_terminate_backend(${pid})`.execute(admin.db);
      await admin.close();
      return await sql`select 1`.execute(c).catch((e: unknown) => e);
    });
    expect(isConnectionError(killed)).toBe(true);
    await cut.cut();
    const gone = await sql`select 1`.execute(s.db).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(Error);
    expect(isConnectionError(gone)).toBe(true);
  });
});
