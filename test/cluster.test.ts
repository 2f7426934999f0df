import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { checkRoles, startNode, type RunningNode } from '../src/http/cluster.js';
import { run } from '../src/cli/main.js';
import { spawn } from 'node:child_process';
import { BIN, freePort, upChild } from './helpers/child-server.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer } from '../src/http/server.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { ClusterNode, type ClusterView } from '../src/state/cluster.js';
import { openStateStore, type StateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { callApi, eventually } from './helpers/server.js';
import { anyOf, thrownBy } from './helpers/match.js';

/**
 * Several nodes on one PostgreSQL state database (src/state/cluster.ts, src/http/cluster.ts),
 * on the run's real test PostgreSQL: the `active` lease (takeover, fencing, the old holder
 * stopping before the new one starts), the standby's answers, and GET /api/cluster.
 */

const FAST = { heartbeatMs: 150, leaseMs: 900, marginMs: 200 };
/** Servers in one process share its event loop: a start may block it for a second or more. */
const NODE_TIMING = { heartbeatMs: 300, leaseMs: 5_000, marginMs: 500 };
const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function database(): Promise<TestDatabase> {
  const d = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  cleanups.push(() => d.drop());
  return d;
}

async function store(d: TestDatabase): Promise<StateStore> {
  const s = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false });
  cleanups.push(() => s.close());
  return s;
}

interface Events { acquired: Array<{ at: number; token: number }>; lost: Array<{ at: number; reason: string }> }

async function member(s: StateStore, name: string, stopWork: () => Promise<void> = () => Promise.resolve(), timing = FAST): Promise<{ node: ClusterNode; ev: Events }> {
  const ev: Events = { acquired: [], lost: [] };
  const node = new ClusterNode({ db: s.db, roles: ['api', 'ingest', 'gateway', 'worker'], host: name, timing });
  await node.join();
  await node.want('active', {
    onAcquired: (token) => { ev.acquired.push({ at: performance.now(), token }); },
    onLost: (reason) => { ev.lost.push({ at: performance.now(), reason }); return stopWork(); },
  });
  cleanups.push(() => node.leave());
  return { node, ev };
}

const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;

describePg('the active lease on PostgreSQL', () => {
  it('one holder at a time; a clean leave hands it over with a higher fencing token', async () => {
    const d = await database();
    const a = await member(await store(d), 'a');
    const b = await member(await store(d), 'b');
    expect(a.node.holds('active')).toBe(true);
    expect(a.node.fence('active')).toBe(1);
    // b competes at every heartbeat and never gets it while a renews.
    await new Promise((r) => setTimeout(r, FAST.leaseMs * 2));
    expect(b.node.holds('active')).toBe(false);
    expect(b.ev.acquired).toEqual([]);
    expect(a.ev.lost).toEqual([]);
    await a.node.leave();
    await eventually(() => (b.node.holds('active') ? true : undefined), 5_000);
    expect(b.node.fence('active')).toBe(2);
  });

  it('a holder that cannot reach PostgreSQL stops believing before another node takes over', async () => {
    const d = await database();
    const sa = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false, connectTimeoutMs: 200 });
    const a = await member(sa, 'a');
    const b = await member(await store(d), 'b');
    expect(a.node.holds('active')).toBe(true);
    await sa.close(); // a's heartbeats and renewals fail from now on; nothing is released
    await eventually(() => (b.ev.acquired.length > 0 ? true : undefined), 5_000);
    expect(a.ev.lost).toHaveLength(1);
    expect(a.ev.lost[0].at).toBeLessThan(b.ev.acquired[0].at);
    expect(a.node.holds('active')).toBe(false);
    expect(b.ev.acquired[0].token).toBe(2);
  });

  it('a standby takes a dead holder\'s lease when it expires, not at its own next heartbeat', async () => {
    const d = await database();
    const sa = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false, connectTimeoutMs: 200 });
    const a = await member(sa, 'a');
    // b's heartbeat is a minute away: only a try aimed at a's expiry can take the lease in time.
    const b = await member(await store(d), 'b', undefined, { heartbeatMs: 60_000, leaseMs: 180_000, marginMs: 1_000 });
    expect(a.node.holds('active')).toBe(true);
    // a live holder keeps it while b aims at each of its expiries
    await new Promise((r) => setTimeout(r, FAST.leaseMs * 3));
    expect(b.ev.acquired).toEqual([]);
    expect(a.ev.lost).toEqual([]);
    await sa.close(); // a dies: nothing is released, its lease runs out
    await eventually(() => (b.ev.acquired.length > 0 ? true : undefined), 20_000);
    expect(a.ev.lost).toHaveLength(1);
    expect(a.ev.lost[0].at).toBeLessThan(b.ev.acquired[0].at);
    expect(b.ev.acquired[0].token).toBe(2);
  });

  it('a holder that stalled past its expiry and finds another holder stops, and competes again only once its work stopped', async () => {
    const d = await database();
    const s = await store(d);
    let workStopped!: () => void;
    const stopping = new Promise<void>((r) => { workStopped = r; });
    const a = await member(s, 'a', () => stopping);
    // Another node took the lease while a was paused: as PostgreSQL sees it after the takeover.
    await sql`update cluster_leases set holder = 'someone-else', token = token + 1, expires_ms = expires_ms + 60000 where name = 'active'`.execute(s.db);
    await eventually(() => (a.ev.lost.length > 0 ? true : undefined), 5_000);
    expect(a.ev.lost[0].reason).toMatch(/another node holds the lease/);
    expect(a.node.holds('active')).toBe(false);
    // Free again, but a's work has not stopped yet: it does not compete.
    await sql`update cluster_leases set holder = null, expires_ms = 0 where name = 'active'`.execute(s.db);
    await new Promise((r) => setTimeout(r, FAST.heartbeatMs * 4));
    expect(a.ev.acquired).toHaveLength(1);
    // Its work stopped: it takes the lease again, as a new holding (a new fencing token).
    workStopped();
    await eventually(() => (a.ev.acquired.length > 1 ? true : undefined), 5_000);
    expect(a.ev.acquired[1].token).toBe(3);
    expect(a.node.fence('active')).toBe(3);
  });

  it('a holder whose work could not be stopped never competes again', async () => {
    const d = await database();
    const s = await store(d);
    const a = await member(s, 'a', () => Promise.reject(new Error('close failed')));
    await sql`update cluster_leases set holder = 'someone-else', token = token + 1, expires_ms = expires_ms + 60000 where name = 'active'`.execute(s.db);
    await eventually(() => (a.ev.lost.length > 0 ? true : undefined), 5_000);
    await sql`update cluster_leases set holder = null, expires_ms = 0 where name = 'active'`.execute(s.db);
    await new Promise((r) => setTimeout(r, FAST.heartbeatMs * 6));
    expect(a.ev.acquired).toHaveLength(1);
  });
});

describePg('nodes of tightloop on one PostgreSQL', () => {
  function config(dataDir: string, stateUrl: string) {
    return serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl });
  }
  function dir(): string {
    const d = mkdtempSync(join(tmpdir(), 'tightloop-cluster-'));
    cleanups.push(() => Promise.resolve(rmSync(d, { recursive: true, force: true })));
    return d;
  }

  it('a second startServer on the same state is refused; startNode makes it a standby that takes over', async () => {
    const d = await database();
    const first = await startNode(config(dir(), d.connectionString), silent, { timing: NODE_TIMING });
    cleanups.push(() => first.close());
    const active = first.active();
    expect(active).toBeDefined();
    const token = active?.adminToken ?? '';

    await expect(startServer(config(dir(), d.connectionString), silent)).rejects.toMatchObject({ code: 'state_in_use' });

    const second: RunningNode = await startNode(config(dir(), d.connectionString), silent, { timing: NODE_TIMING });
    cleanups.push(() => second.close());
    expect(second.active()).toBeUndefined();
    // The node without the lease: health yes, load-balancer check for the holder no; the rest is
    // forwarded to the holder and answered by it (docs/cluster.md), ingest too.
    expect((await fetch(`${second.url}/api/health`)).status).toBe(200);
    expect((await fetch(`${second.url}/api/health/active`)).status).toBe(503);
    expect((await fetch(`${first.url}/api/health/active`)).status).toBe(200);
    expect((await fetch(`${second.url}/api/services`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${second.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    // A request forwarded once is never forwarded again: 503 with Retry-After, not a loop.
    const refused = await fetch(`${second.url}/api/services`, { headers: { authorization: `Bearer ${token}`, 'x-tightloop-forwarded-by': 'another-node' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('node_standby');

    // GET /api/cluster, from either node: both nodes, alive, the holder and its lease.
    for (const url of [first.url, second.url]) {
      expect((await fetch(`${url}/api/cluster`)).status).toBe(401);
      const view = await callApi<ClusterView>(url, token, 'GET', '/api/cluster');
      expect(view.status).toBe(200);
      expect(view.body.mode).toBe('cluster');
      // The refused start left a stopped node behind (nodes seen in the last hour are listed).
      expect(view.body.nodes.filter((n) => n.stoppedAt !== null)).toHaveLength(1);
      const running = view.body.nodes.filter((n) => n.stoppedAt === null);
      expect(running.map((n) => n.id).sort()).toEqual([first.cluster?.id, second.cluster?.id].sort());
      for (const n of running) {
        expect(n.alive).toBe(true);
        expect(n.roles).toEqual(['api', 'ingest', 'gateway', 'worker']);
        expect(Date.parse(n.lastHeartbeatAt)).toBeGreaterThan(Date.now() - 60_000);
      }
      expect(view.body.leases).toEqual([expect.objectContaining({ name: 'active', holder: first.cluster?.id, token: 1, expired: false })]);
      expect(view.body.nodes.find((n) => n.id === first.cluster?.id)?.leases.map((l) => l.name)).toEqual(['active']);
      expect(view.body.nodes.find((n) => n.id === second.cluster?.id)?.leases).toEqual([]);
    }

    // The active node stops: the standby takes over on the same port and serves everything.
    await first.close();
    const took = await second.whenActive;
    expect(took.url).toBe(second.url);
    expect((await callApi(second.url, token, 'GET', '/api/services')).status).toBe(200);
    expect((await fetch(`${second.url}/api/health/active`)).status).toBe(200);
    const after = await callApi<ClusterView>(second.url, token, 'GET', '/api/cluster');
    expect(after.body.leases[0]).toMatchObject({ holder: second.cluster?.id, token: 2 });
    expect(after.body.nodes.find((n) => n.id === first.cluster?.id)).toMatchObject({ alive: false, stoppedAt: anyOf(String) });
  });

  it('a node alone on SQLite answers GET /api/cluster as a single node holding every lease', async () => {
    const node = await startNode(serverConfigSchema.parse({ dataDir: dir(), port: 0, logLevel: 'silent' }), silent);
    cleanups.push(() => node.close());
    expect(node.cluster).toBeUndefined();
    const view = await callApi<ClusterView>(node.url, node.active()?.adminToken ?? '', 'GET', '/api/cluster');
    expect(view.body).toMatchObject({ mode: 'single', leases: [{ name: 'active', expired: false }] });
    expect(view.body.nodes).toHaveLength(1);
  });
});

describe('--role', () => {
  it('api, ingest and worker go together while telemetry is per node; the gateway is optional', () => {
    expect(checkRoles(['worker', 'api', 'gateway', 'ingest', 'api'])).toEqual(['api', 'ingest', 'gateway', 'worker']);
    expect(checkRoles(['api', 'ingest', 'worker'])).toEqual(['api', 'ingest', 'worker']);
    for (const split of [['ingest'], ['api'], ['worker'], ['api', 'gateway'], ['ingest', 'gateway'], ['api', 'ingest'], ['ingest', 'worker', 'gateway']]) {
      expect(thrownBy(() => checkRoles(split))).toMatchObject({ code: 'roles_split_telemetry' });
    }
    expect(thrownBy(() => checkRoles(['gateway']))).toMatchObject({ code: 'roles_incoherent' });
    expect(thrownBy(() => checkRoles(['api', 'ingest', 'worker', 'detect']))).toMatchObject({ code: 'role_invalid' });
  });

  it('tightloop up refuses a split with exit 2 before starting anything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-role-'));
    cleanups.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    let err = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((c: string) => ((err += c), true));
    try {
      expect(await run(['node', 'tightloop', 'up', '--data-dir', dataDir, '--port', '0', '--role', 'ingest,gateway'])).toBe(2);
      expect(await run(['node', 'tightloop', 'up', '--data-dir', dataDir, '--port', '0', '--role', 'api,ingest,worker,detect'])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(err).toMatch(/api, ingest and worker go together .*missing: api, worker/);
    expect(err).toMatch(/unknown role 'detect'/);
  });

  it('a node without the gateway role opens no gateway listener and says its roles', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-role-'));
    cleanups.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    const node = await startNode(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', roles: ['api', 'ingest', 'worker'] }), silent, { gatewayPort: 0 });
    cleanups.push(() => node.close());
    expect(node.active()?.gatewayPort).toBeUndefined();
    const view = await callApi<ClusterView>(node.url, node.active()?.adminToken ?? '', 'GET', '/api/cluster');
    expect(view.body.nodes[0].roles).toEqual(['api', 'ingest', 'worker']);
  });

  it.runIf(process.env.TIGHTLOOP_TEST_PG !== '0')('every node of one cluster runs the same roles', async () => {
    const d = await database();
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'tightloop-role-')));
    cleanups.push(() => { for (const x of dirs) rmSync(x, { recursive: true, force: true }); return Promise.resolve(); });
    const first = await startNode(serverConfigSchema.parse({ dataDir: dirs[0], port: 0, logLevel: 'silent', stateUrl: d.connectionString }), silent, { timing: NODE_TIMING });
    cleanups.push(() => first.close());
    await expect(startNode(serverConfigSchema.parse({ dataDir: dirs[1], port: 0, logLevel: 'silent', stateUrl: d.connectionString, roles: ['api', 'ingest', 'worker'] }), silent, { timing: NODE_TIMING }))
      .rejects.toMatchObject({ code: 'roles_mismatch' });
  });
});

describe('SQLite stays one node', () => {
  it('a second tightloop up on the same data directory is refused and exits 2 (nothing left listening)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-sqlite-two-'));
    const first = await upChild(dataDir, await freePort());
    cleanups.push(async () => {
      first.kill('SIGTERM');
      if (first.exitCode === null) await new Promise((r) => first.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    });
    const second = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(await freePort()), '--gateway-port', String(await freePort()), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => { second.kill('SIGKILL'); resolve(null); }, 60_000);
      second.once('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    expect(err).toMatch(/cannot start: .*lock/i);
    expect(code).toBe(2);
  });
});
