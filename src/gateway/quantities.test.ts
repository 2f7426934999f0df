import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, startUpstream, type GatewayHarness, type Upstream } from './harness.conformance.js';

/**
 * Attack round 3 #1 and #10: a masked value turned into a quantity — how many rows a
 * set-returning function, a LIMIT or a recursive CTE produce, how a window numbers rows, what
 * EXPLAIN ANALYZE counts, what the session's statistics counters count — returns the value as a
 * plain number. Under masking these are refused (`masking-bypass`, lineage-quantities.ts);
 * predicates (WHERE/ON/HAVING) and quantities of unmasked values still run. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  upstream = await startUpstream();
  h = await startHarness(upstream);
  await h.gateway.resources.create({
    name: 'shop-q', host: '127.0.0.1', port: upstream.port, database: 'shop', user: 'app_scram',
    credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' },
    policy: { masking: { columns: [{ name: 'name', mode: 'hash' }, { name: 'email', mode: 'partial' }, { name: 'card', mode: 'full' }] } },
  });
  const sys = { userId: h.admin.id, userName: 'admin', role: 'admin' };
  await h.gateway.access.grant(sys, { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop-q', mode: 'read' });
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

const failure = (p: Promise<unknown>): Promise<(Error & { code?: string }) | null> => p.then(() => null, (e: Error & { code?: string }) => e);

async function bob<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.url(h.users.bob, 'shop-q') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('masked values may not act as quantities (attack round 3 #1, #10)', () => {
  it('row counts, LIMIT, recursion, window numbering and EXPLAIN ANALYZE of masked values are refused', async () => {
    await bob(async (c) => {
      const refused = [
        'SELECT (SELECT count(*) FROM generate_series(1, ascii(substr(email, i, 1)))) FROM customers, generate_series(1, 5) i WHERE id = 1',
        'SELECT c.id, string_agg((SELECT count(*) FROM generate_series(1, ascii(substr(c.email, i, 1))))::text, \',\' ORDER BY i) FROM customers c CROSS JOIN generate_series(1, 32) i GROUP BY c.id',
        'SELECT count(*), sum(1) FROM customers c, generate_series(1, ascii(c.email)) g',
        'SELECT count(*) FROM (SELECT 1 FROM generate_series(1, 1000) LIMIT (SELECT ascii(name) FROM customers WHERE id = 1)) s',
        'SELECT count(*) FROM (SELECT 1 FROM generate_series(1, 1000) OFFSET (SELECT ascii(card) FROM customers WHERE id = 1)) s',
        'SELECT (SELECT count(*) FROM unnest(array_fill(1, array[ascii(email)]))) FROM customers',
        "SELECT count(*) FROM (SELECT regexp_split_to_table(email, '') FROM customers WHERE id = 1) s",
        'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT ascii(email) FROM customers WHERE id = 1)) SELECT max(n) FROM r',
        "SELECT x.k, rank() OVER (ORDER BY x.v) FROM (SELECT 'e' AS k, email AS v FROM customers WHERE id = 1 UNION ALL SELECT chr(g), chr(g) FROM generate_series(97, 122) g) x",
        'SELECT id, row_number() OVER w FROM customers WINDOW w AS (ORDER BY name)',
        // How many keys the row has depends on which are null: a function in FROM over whole rows.
        'SELECT j.value AS v FROM customers c, json_each_text(row_to_json(c)) j',
        'WITH RECURSIVE r(v, n) AS (SELECT email, 1 FROM customers UNION ALL SELECT v, n + 1 FROM r WHERE n < ascii(v)) SELECT max(n) FROM r',
        'EXPLAIN (ANALYZE) SELECT 1 FROM customers WHERE ascii(email) > 100',
        'EXPLAIN ANALYZE SELECT email FROM customers',
        // #10: the LIMIT drives pg_stat_xact_* counters, read back by the next statement.
        'SELECT 1 FROM customers WHERE id = 1 AND (SELECT count(*) FROM (SELECT 1 FROM orders LIMIT ascii(substr(email, 2, 1))) s) >= 0',
      ];
      for (const sql of refused) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, rule: e?.message.includes('"masking-bypass"') }).toEqual({ sql, code: '42501', rule: true });
      }
      // The session's own statistics counters (#10) are refused by name.
      for (const sql of ["SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'orders'", 'SELECT * FROM pg_stat_user_tables', "SELECT pg_stat_get_xact_tuples_returned('orders'::regclass)", "SELECT (('orders'::regclass)).pg_stat_get_xact_numscans"]) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, rule: e?.message.includes('"masking-bypass"') }).toEqual({ sql, code: '42501', rule: true });
      }
    });
  });

  it('predicates on masked values and quantities of unmasked values still run', async () => {
    await bob(async (c) => {
      const a = await upstream.admin();
      const email = (await a.query('SELECT email FROM customers WHERE id = 1')).rows[0].email as string;
      await a.end();
      expect((await c.query('SELECT id FROM customers WHERE email = $1', [email])).rows).toEqual([{ id: 1 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM customers WHERE ascii(email) > 0')).rows[0].n).toBeGreaterThan(0);
      expect((await c.query('SELECT id, row_number() OVER (ORDER BY id) AS r FROM customers ORDER BY id LIMIT 1')).rows).toEqual([{ id: 1, r: '1' }]);
      expect((await c.query('SELECT count(*)::int AS n FROM customers c, generate_series(1, c.id) g')).rows[0].n).toBeGreaterThan(0);
      expect((await c.query('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT max(n) AS m FROM r')).rows).toEqual([{ m: 5 }]);
      // Lineage per column through the recursion: `n` does not derive from `v`.
      expect((await c.query('WITH RECURSIVE r(v, n) AS (SELECT email, 1 FROM customers UNION ALL SELECT reverse(v), n + 1 FROM r WHERE n < 2) SELECT max(n) AS m FROM r')).rows).toEqual([{ m: 2 }]);
      expect((await c.query('SELECT id FROM customers ORDER BY id LIMIT (SELECT count(*) FROM orders) + 1')).rows.length).toBeGreaterThan(0);
      expect((await c.query('EXPLAIN SELECT email FROM customers')).rows.length).toBeGreaterThan(0);
    });
  });

  it('a value derived from a hash-ruled column is the fixed token, not a keyed hash (attack round 3 #3)', async () => {
    await bob(async (c) => {
      const parts = await c.query('SELECT c.id, i, substr(c.name, i, 1) AS v, upper(c.name) AS u FROM customers c, generate_series(1, 3) i WHERE c.id = 1 ORDER BY i');
      expect(parts.rows.map((r: { v: string; u: string }) => [r.v, r.u])).toEqual([['********', '********'], ['********', '********'], ['********', '********']]);
      // A plain reference keeps the rule's mode: the keyed hash (an equality oracle, documented).
      const plain = await c.query('SELECT name FROM customers WHERE id = 1');
      expect(plain.rows[0].name).toMatch(/^h_[0-9a-f]+$/);
    });
  });
});
