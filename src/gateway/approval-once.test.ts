import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/server.js';
import { grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { testStateDialect } from '../state/dialects.conformance.js';
import { queryMessage } from './wire/encode.js';
import { startGateway, type Gateway } from './index.js';

/**
 * An approved statement runs exactly once across nodes (issue 15, docs/cluster.md): two gateway
 * nodes on one state store each load the approval (reload), and both clients send the statement
 * at once. Consuming is a claim in the state store (`approved → used`, approvals.ts): one runs,
 * the other is held again. Also two sessions of one node. Real PostgreSQL upstream; the state
 * store is SQLite or PostgreSQL by vitest project.
 */

let upstream: Upstream;
let h: GatewayHarness;
let nodeB: Gateway | undefined;
const TWO_NODES = testStateDialect() === 'postgres';
const sys = { userId: '', userName: 'admin', role: 'admin' };
// Whole-table UPDATE: `unsafe-write`, held for approval under this policy.
const POLICY = { guardrails: { rules: { 'unsafe-write': 'approve' } } };

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ ssl: false }));
  sys.userId = h.admin.id;
  await shopResource(h, upstream, 'reviewed', POLICY);
  await grantAccess(h, h.users.alice, 'reviewed', 'write');
  await upstreamSql(upstream, 'CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)');
  // A second node on the same state store and data dir (its keys), as in a cluster: PostgreSQL
  // state only (docs/cluster.md; two nodes' audit writers cannot share one SQLite file).
  if (TWO_NODES) nodeB = await startGateway({
    db: h.state.db, dataDir: h.dataDir, log: pino({ level: 'silent' }), port: 0, sweepIntervalMs: 200,
    credentialEnv: ['TIGHTLOOP_TEST_PG_SCRAM', 'TIGHTLOOP_TEST_PG_MD5'],
  });
});
afterAll(async () => {
  await nodeB?.close();
  await stopGatewayTest(h, upstream);
});

type PgError = Error & { code?: string };

async function client(port: number): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: `postgres://alice:${h.users.alice.token}@127.0.0.1:${port}/reviewed` });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function counter(): Promise<number> {
  const a = await upstream.admin();
  try {
    return (await a.query<{ n: number }>('SELECT n FROM counter')).rows[0].n;
  } finally {
    await a.end();
  }
}

/** Holds `sql` on a session of node A, approves the request, and has every node re-read the book. */
async function approved(sql: string): Promise<void> {
  const c = await client(h.gateway.port ?? 0);
  try {
    const held = await c.query(sql).then(() => null, (e: PgError) => e);
    expect(held?.code).toBe('42501');
    const id = /request (\w+)/.exec(held?.message ?? '')?.[1] ?? '';
    expect(id).not.toBe('');
    // The request row is written behind the hold: approve once it is stored.
    await eventually(() => h.gateway.access.approve(sys, id).then(() => true, () => undefined));
    await Promise.all([h.gateway.recheck(), nodeB?.recheck()]);
  } finally {
    await c.end();
  }
}

/** Runs `sql` on each client at once; the outcomes, in client order. */
async function race(clients: pg.Client[], sql: string): Promise<string[]> {
  return Promise.all(clients.map((c) => c.query(sql).then(() => 'ran', (e: PgError) => `${e.code ?? ''} ${e.message}`)));
}

describe('an approved statement runs exactly once', () => {
  it.skipIf(!TWO_NODES)('two nodes race to run it: one runs, the other is held again', async () => {
    if (nodeB === undefined) return;
    const sql = 'UPDATE counter SET n = n + 1';
    await approved(sql);
    const before = await counter();
    const a = await client(h.gateway.port ?? 0);
    const b = await client(nodeB.port ?? 0);
    try {
      const outcomes = await race([a, b], sql);
      expect(outcomes.filter((o) => o === 'ran')).toHaveLength(1);
      expect(outcomes.find((o) => o !== 'ran')).toMatch(/^42501 statement held for approval by guardrail "unsafe-write"/);
      expect(await counter()).toBe(before + 1);
      // Both sessions go on.
      for (const c of [a, b]) expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('two sessions of one node race to run it: one runs, the other is held again', async () => {
    const sql = 'UPDATE counter SET n = n + 10';
    await approved(sql);
    const before = await counter();
    const clients = [await client(h.gateway.port ?? 0), await client(h.gateway.port ?? 0)];
    try {
      const outcomes = await race(clients, sql);
      expect(outcomes.filter((o) => o === 'ran')).toHaveLength(1);
      expect(outcomes.find((o) => o !== 'ran')).toMatch(/^42501 statement held for approval/);
      expect(await counter()).toBe(before + 10);
    } finally {
      for (const c of clients) await c.end();
    }
  });

  it('statements behind the claimed one in the same pipeline keep their order', async () => {
    const sql = 'UPDATE counter SET n = n * 2';
    await approved(sql);
    await upstreamSql(upstream, 'UPDATE counter SET n = 3');
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'reviewed');
    try {
      // One write, three Query messages: the second and third wait behind the claim of the first.
      raw.send(queryMessage(sql), queryMessage('UPDATE counter SET n = n + 1 WHERE n > 0'), queryMessage('SELECT n FROM counter'));
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(...(await raw.until('Z')).map((m) => m.type));
      expect(got.filter((t) => t === 'E')).toEqual([]);
      expect(await counter()).toBe(7);
    } finally {
      raw.close();
    }
  });
});
