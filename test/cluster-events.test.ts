import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../src/http/cluster.js';
import { registerWriteEvents, WRITE_TOPICS } from '../src/http/cluster-events.js';
import { serverConfigSchema } from '../src/http/config.js';
import { ROUTE_ROLES } from '../src/http/roles.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { LocalBus, NOTIFY_CHANNEL, PostgresBus, type BusEvent } from '../src/state/bus.js';
import { openStateStore, type StateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { callApi, eventually } from './helpers/server.js';
import { tcpCut } from './helpers/tcp-cut.js';
import { anyOf } from './helpers/match.js';

/**
 * Events between nodes through PostgreSQL (src/state/bus.ts): the outbox with LISTEN/NOTIFY,
 * catch-up after a reconnect, ids committed out of order; API writes published by topic
 * (src/http/cluster-events.ts); a token revoked through one node refused by another at once.
 * Real PostgreSQL (the run's test server). Polling is switched off (pollMs: 10 minutes) where a
 * test checks that the notification or the reconnect delivers.
 */

const NO_POLL = 600_000;
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

async function store(url: string): Promise<StateStore> {
  const s = await openStateStore({ dialect: 'postgres', connectionString: url, migrate: false, connectTimeoutMs: 1_000 });
  cleanups.push(() => s.close());
  return s;
}

async function bus(url: string, node: string, opts: { pollMs?: number; gapMs?: number } = {}): Promise<{ bus: PostgresBus; got: BusEvent[] }> {
  const s = await store(url);
  const b = new PostgresBus({ db: s.db, connectionString: url, node, pollMs: opts.pollMs ?? NO_POLL, gapMs: opts.gapMs, connectTimeoutMs: 1_000 });
  const got: BusEvent[] = [];
  b.on('rules.changed', (e) => got.push(e));
  b.on('auth.changed', (e) => got.push(e));
  await b.start();
  cleanups.push(() => b.close());
  await eventually(() => (b.isListening ? true : undefined), 5_000);
  return { bus: b, got };
}

describePg('the event bus on PostgreSQL', () => {
  it('delivers a published event to the other node by notification, once, and in process to the publisher', async () => {
    const d = await database();
    const a = await bus(d.connectionString, 'a');
    const b = await bus(d.connectionString, 'b');
    await a.bus.publish('rules.changed', { route: '/api/rules' });
    await eventually(() => (b.got.length > 0 ? true : undefined), 5_000);
    expect(b.got).toEqual([{ topic: 'rules.changed', data: { route: '/api/rules' }, node: 'a', id: anyOf(Number) }]);
    expect(a.got).toEqual([{ topic: 'rules.changed', data: { route: '/api/rules' }, node: 'a' }]);
    // Another notification (b's own publish) does not hand b a's event again.
    await b.bus.publish('auth.changed', {});
    await eventually(() => (a.got.length > 1 ? true : undefined), 5_000);
    expect(b.got.map((e) => e.topic)).toEqual(['rules.changed', 'auth.changed']);
    expect(a.got.map((e) => `${e.topic}@${e.node}`)).toEqual(['rules.changed@a', 'auth.changed@b']);
  });

  it('a node cut off from PostgreSQL catches up from its last id when it reconnects, in order, once', async () => {
    const d = await database();
    const u = new URL(d.connectionString);
    const cut = await tcpCut(u.hostname, Number(u.port));
    cleanups.push(() => cut.close());
    u.port = String(cut.port);
    const a = await bus(d.connectionString, 'a');
    const b = await bus(u.toString(), 'b');
    await a.bus.publish('rules.changed', { n: 0 });
    await eventually(() => (b.got.length === 1 ? true : undefined), 5_000);

    await cut.cut();
    await eventually(() => (b.bus.isListening ? undefined : true), 5_000);
    for (const n of [1, 2, 3]) await a.bus.publish('rules.changed', { n });
    await new Promise((r) => setTimeout(r, 300));
    expect(b.got).toHaveLength(1);
    await cut.restore();
    await eventually(() => (b.got.length >= 4 ? true : undefined), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.got.map((e) => e.data.n)).toEqual([0, 1, 2, 3]);
  });

  it('an event whose id commits after a higher one is still delivered', async () => {
    const d = await database();
    const a = await bus(d.connectionString, 'a');
    const b = await bus(d.connectionString, 'b');
    const s = await store(d.connectionString);
    let commit!: () => void;
    const held = new Promise<void>((r) => { commit = r; });
    // A publisher whose statement took its id first and commits last.
    const slow = s.db.transaction().execute(async (trx) => {
      await sql`insert into cluster_events (topic, data, node, created_ms) values ('rules.changed', '{"n":"slow"}', 'c', 0)`.execute(trx);
      await sql`select pg_notify(${NOTIFY_CHANNEL}, '')`.execute(trx);
      await held;
    });
    await new Promise((r) => setTimeout(r, 200));
    await a.bus.publish('rules.changed', { n: 'fast' });
    await eventually(() => (b.got.length === 1 ? true : undefined), 5_000);
    commit();
    await slow;
    await eventually(() => (b.got.length === 2 ? true : undefined), 5_000);
    expect(b.got.map((e) => e.data.n)).toEqual(['fast', 'slow']);
    expect(b.got[1].id).toBeLessThan(b.got[0].id ?? 0);
  });
});

describe('API writes and their topics', () => {
  it('every write route of the role table has a topic (or is ingest), and an unlisted write route stops the start', async () => {
    const writes = Object.keys(ROUTE_ROLES).filter((k) => !/^(GET|HEAD|OPTIONS) /.test(k));
    expect(writes.filter((k) => !(k in WRITE_TOPICS))).toEqual([]);
    const app = Fastify();
    registerWriteEvents(app, new LocalBus('x'), silent);
    expect(() => app.post('/api/somewhere-new', () => ({}))).toThrow(/POST \/api\/somewhere-new writes but has no event topic/);
    await app.close();
  });

  it('a successful write publishes its topic with the route and parameters; a refused one publishes nothing', async () => {
    const b = new LocalBus('x');
    const got: BusEvent[] = [];
    b.on('rules.changed', (e) => got.push(e));
    const app = Fastify();
    registerWriteEvents(app, b, silent);
    app.put('/api/rules/:id', async (req, reply) => ((req.params as { id: string }).id === 'bad' ? reply.code(400).send({}) : {}));
    await app.inject({ method: 'PUT', url: '/api/rules/r1' });
    await app.inject({ method: 'PUT', url: '/api/rules/bad' });
    expect(got.map((e) => e.data)).toEqual([{ method: 'PUT', route: '/api/rules/:id', params: { id: 'r1' } }]);
    await app.close();
  });
});

describePg('nodes learn of writes made through another node', () => {
  const NODE_TIMING = { heartbeatMs: 300, leaseMs: 5_000, marginMs: 500 };
  async function node(stateUrl: string): Promise<RunningNode> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-events-'));
    const n = await startNode(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl }), silent, { timing: NODE_TIMING });
    cleanups.push(async () => { await n.close(); rmSync(dataDir, { recursive: true, force: true }); });
    return n;
  }

  it('a token revoked through one node is refused by another before its verification cache would expire', async () => {
    const d = await database();
    const a = await node(d.connectionString);
    const b = await node(d.connectionString);
    const admin = a.active()?.adminToken ?? '';
    expect(b.active()).toBeUndefined();
    const issued = await callApi<{ id: string; token: string }>(a.url, admin, 'POST', '/api/tokens', { name: 'soon revoked' });
    expect(issued.status).toBe(201);
    // Verified (and cached, auth/verification-cache.ts: 10 s) on b.
    expect((await callApi(b.url, issued.body.token, 'GET', '/api/cluster')).status).toBe(200);
    expect((await callApi(a.url, admin, 'DELETE', `/api/tokens/${issued.body.id}`)).status).toBe(200);
    // Refused on b well within the cache's 10 s: the revocation crossed nodes.
    await eventually(async () => ((await callApi(b.url, issued.body.token, 'GET', '/api/cluster')).status === 401 ? true : undefined), 5_000);
    expect((await callApi(a.url, issued.body.token, 'GET', '/api/services')).status).toBe(401);
  });

  it('a rule created, changed or removed through another node is applied by the active node (rules.changed)', async () => {
    const d = await database();
    const a = await node(d.connectionString);
    const admin = a.active()?.adminToken ?? '';
    // Node b's API write, as it reaches PostgreSQL: the row, then its event.
    const other = await bus(d.connectionString, 'b');
    const s = await store(d.connectionString);
    const spec = (threshold: number) => JSON.stringify({ name: 'from-b', type: 'threshold', signal: 'error_rate', select: { service: 'shop' }, threshold, window: '1m', min_count: 5 });
    const at = new Date().toISOString();
    await sql`insert into detect_rules (id, name, spec, created_at, updated_at) values ('01RULEFROMB0000000000000000', 'from-b', ${spec(0.5)}, ${at}, ${at})`.execute(s.db);
    await other.bus.publish('rules.changed', { method: 'POST', route: '/api/rules' });
    const rule = async () => callApi<{ spec?: { threshold: number } }>(a.url, admin, 'GET', '/api/rules/01RULEFROMB0000000000000000');
    await eventually(async () => ((await rule()).status === 200 ? true : undefined), 5_000);
    expect((await rule()).body.spec?.threshold).toBe(0.5);
    await sql`update detect_rules set spec = ${spec(0.9)} where id = '01RULEFROMB0000000000000000'`.execute(s.db);
    await other.bus.publish('rules.changed', { method: 'PUT', route: '/api/rules/:id' });
    await eventually(async () => ((await rule()).body.spec?.threshold === 0.9 ? true : undefined), 5_000);
    await sql`delete from detect_rules where id = '01RULEFROMB0000000000000000'`.execute(s.db);
    await other.bus.publish('rules.changed', { method: 'DELETE', route: '/api/rules/:id' });
    await eventually(async () => ((await rule()).status === 404 ? true : undefined), 5_000);
  });
});
