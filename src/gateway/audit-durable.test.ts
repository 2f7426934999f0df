import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { provablyReadOnly } from './effect.js';
import { loadParser } from './guardrails/index.js';
import type { GatewayHarness, Upstream } from './harness.conformance.js';
import { startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Audit before effect, in process: a statement that may write reaches the server only after
 * its `statement.start` record is committed; reads do not wait; a failed commit ends the session
 * with nothing sent; concurrent sessions share commits. (The kill -9 proof is in
 * test/gateway-audit-crash.test.ts.)
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await upstreamSql(upstream, 'CREATE TABLE effects (k text PRIMARY KEY, n int)');
});
afterAll(() => stopGatewayTest(h, upstream));

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(h.users.alice, 'shop') });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function upstreamRows(k: string): Promise<number> {
  const a = await upstream.admin();
  try {
    return (await a.query<{ n: number }>('SELECT count(*)::int AS n FROM effects WHERE k = $1', [k])).rows[0].n;
  } finally {
    await a.end();
  }
}

type Spied = { writeBatch(batch: readonly { kind: string }[]): Promise<void> };

describe('audit before effect', () => {
  it('holds a write until its start record is committed; a read meanwhile does not wait', async () => {
    const c = await client();
    const reader = await client();
    const chain = h.gateway.audit as unknown as Spied;
    const original = chain.writeBatch.bind(chain);
    let seenBeforeCommit: number | undefined;
    let readDuringHold: number | undefined;
    const spy = vi.spyOn(chain, 'writeBatch').mockImplementation(async (batch) => {
      if (batch.some((r) => r.kind === 'statement.start') && seenBeforeCommit === undefined) {
        // The commit is slow: meanwhile the statement must not have reached the server, and a
        // plain read on another session is answered.
        readDuringHold = (await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM customers')).rows[0].n;
        await new Promise((r) => setTimeout(r, 700));
        seenBeforeCommit = await upstreamRows('ordered');
      }
      return original(batch);
    });
    try {
      await c.query("INSERT INTO effects VALUES ('ordered', 1)");
      expect(seenBeforeCommit).toBe(0);
      expect(readDuringHold).toBe(2);
      expect(await upstreamRows('ordered')).toBe(1);
      const starts = await h.gateway.audit.query({ kind: 'statement.start', actor: 'alice', limit: 100 });
      expect(starts.some((r) => String(r.data.sql).startsWith('INSERT INTO effects'))).toBe(true);
    } finally {
      spy.mockRestore();
      await c.end();
      await reader.end();
    }
  });

  it('never lets the server see more writes than committed start records (extended, pipelined, nextval)', async () => {
    const c = await client();
    const chain = h.gateway.audit as unknown as Spied;
    const original = chain.writeBatch.bind(chain);
    let committed = 0;
    const violations: string[] = [];
    const spy = vi.spyOn(chain, 'writeBatch').mockImplementation(async (batch) => {
      const starts = batch.filter((r) => r.kind === 'statement.start').length;
      if (starts > 0) {
        await new Promise((r) => setTimeout(r, 100));
        const a = await upstream.admin();
        const seen = (await a.query<{ n: number }>("SELECT count(*)::int AS n FROM effects WHERE k LIKE 'p-%'")).rows[0].n;
        await a.end();
        if (seen > committed) violations.push(`${seen} rows, ${committed} start records committed`);
      }
      await original(batch);
      committed += starts;
    });
    try {
      await c.query('INSERT INTO effects VALUES ($1, $2)', ['p-ext', 1]);
      await Promise.all(Array.from({ length: 5 }, (_, i) => c.query(`INSERT INTO effects VALUES ('p-pipe-${i}', ${i})`)));
      const before = (await h.gateway.audit.query({ kind: 'statement.start', limit: 5000 })).length;
      await c.query("SELECT nextval('orders_id_seq')");
      const after = await h.gateway.audit.query({ kind: 'statement.start', limit: 5000 });
      expect(after.length).toBe(before + 1);
      expect(after[after.length - 1].data.sql).toContain('nextval');
    } finally {
      spy.mockRestore();
      await c.end();
    }
    expect(violations).toEqual([]);
    expect(committed).toBeGreaterThanOrEqual(7);
  });

  it('fails closed: when the record cannot be stored the statement never runs and the session ends', async () => {
    const c = await client();
    const chain = h.gateway.audit as unknown as Spied;
    const spy = vi.spyOn(chain, 'writeBatch').mockRejectedValue(new Error('disk full'));
    try {
      await expect(c.query("INSERT INTO effects VALUES ('refused', 1)")).rejects.toThrow();
    } finally {
      spy.mockRestore();
    }
    await h.gateway.audit.flush();
    expect(await upstreamRows('refused')).toBe(0);
    // The records that failed stayed queued and were written later: the chain is whole.
    expect((await h.gateway.audit.verify()).ok).toBe(true);
  });

  it('concurrent sessions share commits (group commit)', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => client()));
    const before = { ...h.gateway.audit.stats };
    try {
      await Promise.all(clients.map(async (c, i) => {
        for (let n = 0; n < 40; n++) await c.query(`INSERT INTO effects VALUES ('g${i}-${n}', ${n})`);
      }));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const waits = h.gateway.audit.stats.durableWaits - before.durableWaits;
    const commits = h.gateway.audit.stats.commits - before.commits;
    expect(waits).toBe(320);
    expect(commits).toBeLessThan(waits);
  });
});

describe('which statements may write', () => {
  beforeAll(() => loadParser());
  it('reads need no wait; anything that may write does', () => {
    for (const q of ['SELECT 1', 'SELECT id, lower(email) FROM customers WHERE id = $1', 'SHOW search_path', 'BEGIN', 'COMMIT',
      'SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer', 'WITH x AS (SELECT 1) SELECT * FROM x', '']) {
      expect(provablyReadOnly(q), q).toBe(true);
    }
    for (const q of ['INSERT INTO t VALUES (1)', 'UPDATE t SET a = 1 WHERE id = 2', 'DELETE FROM t WHERE id = 1', "SELECT nextval('s')",
      'SELECT lo_create(0)', "SELECT set_config('a', 'b', false)", 'SELECT my_func()', 'SELECT public.lower(a) FROM t', 'SELECT * INTO t2 FROM t',
      'SELECT * FROM t FOR UPDATE', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'COPY t FROM STDIN', 'CREATE TABLE x (a int)',
      'SET work_mem = 1', 'CALL p()', 'EXPLAIN ANALYZE DELETE FROM t', 'SELECT 1; DELETE FROM t', 'SELECT "Lower"(a) FROM t', 'not sql at all']) {
      expect(provablyReadOnly(q), q).toBe(false);
    }
  });
});
