import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { expectRefused, failure, startMaskedShop, stopGatewayTest, upstreamRows } from '../../test/helpers/gateway.js';

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
  ({ upstream, h } = await startMaskedShop('shop-q'));
});
afterAll(() => stopGatewayTest(h, upstream));

const bob = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => asUser(h, h.users.bob, 'shop-q', fn);

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
      await expectRefused(c, refused);
      // The session's own statistics counters (#10) are refused by name.
      await expectRefused(c, ["SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'orders'", 'SELECT * FROM pg_stat_user_tables', "SELECT pg_stat_get_xact_tuples_returned('orders'::regclass)", "SELECT (('orders'::regclass)).pg_stat_get_xact_numscans"]);
    });
  });

  it('predicates on masked values and quantities of unmasked values still run', async () => {
    await bob(async (c) => {
      const [{ email }] = await upstreamRows<{ email: string }>(upstream, 'SELECT email FROM customers WHERE id = 1');
      expect((await c.query('SELECT id FROM customers WHERE email = $1', [email])).rows).toEqual([{ id: 1 }]);
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM customers WHERE ascii(email) > 0')).rows[0].n).toBeGreaterThan(0);
      expect((await c.query('SELECT id, row_number() OVER (ORDER BY id) AS r FROM customers ORDER BY id LIMIT 1')).rows).toEqual([{ id: 1, r: '1' }]);
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM customers c, generate_series(1, c.id) g')).rows[0].n).toBeGreaterThan(0);
      expect((await c.query('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT max(n) AS m FROM r')).rows).toEqual([{ m: 5 }]);
      // Lineage per column through the recursion: `n` does not derive from `v`.
      expect((await c.query('WITH RECURSIVE r(v, n) AS (SELECT email, 1 FROM customers UNION ALL SELECT reverse(v), n + 1 FROM r WHERE n < 2) SELECT max(n) AS m FROM r')).rows).toEqual([{ m: 2 }]);
      expect((await c.query('SELECT id FROM customers ORDER BY id LIMIT (SELECT count(*) FROM orders) + 1')).rows.length).toBeGreaterThan(0);
      expect((await c.query('EXPLAIN SELECT email FROM customers')).rows.length).toBeGreaterThan(0);
    });
  });

  it('a value derived from a hash-ruled column is the fixed token, not a keyed hash (attack round 3 #3)', async () => {
    await bob(async (c) => {
      // Positions from another row source (`generate_series(1, 3) i`) are refused since attack round 5 #1.
      const parts = await c.query<{ v: string; u: string }>('SELECT c.id, substr(c.name, 1, 1) AS v, upper(c.name) AS u FROM customers c UNION ALL SELECT c.id, substr(c.name, 2, 1), lower(c.name) FROM customers c WHERE c.id = 1');
      expect(parts.rows.map((r) => [r.v, r.u])).toEqual([['********', '********'], ['********', '********'], ['********', '********']]);
      // A plain reference keeps the rule's mode: the keyed hash (an equality oracle, documented).
      const plain = await c.query<{ name: string }>('SELECT name FROM customers WHERE id = 1');
      expect(plain.rows[0].name).toMatch(/^h_[0-9a-f]+$/);
    });
  });
});

/**
 * Attack round 4 #1 and #2: a value not derived from a masked column, selected, ranked, grouped
 * or sampled by a comparison of the masked value with values of another row source (a dictionary
 * join, a correlated subquery, VALUES, a derived table, the other side of a set operation), or a
 * masked value used as a frame offset, a sample size or under EXPLAIN ANALYZE EXECUTE. Refused
 * as `masking-bypass` (lineage-mixing.ts); tests against constants, parameters and the row's own
 * values still run.
 */
describe('masked values compared with other row sources (attack round 4 #1, #2)', () => {
  const dictionaryDecoders = [
    "SELECT c.id, string_agg(chr(g), '' ORDER BY i) FROM customers c, generate_series(1, 40) i, generate_series(32, 126) g WHERE ascii(substr(c.name, i, 1)) = g GROUP BY c.id",
    'SELECT g FROM generate_series(32, 126) g WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND ascii(c.email) = g)',
    'SELECT g, EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND ascii(c.email) = g) AS hit FROM generate_series(32, 126) g',
    'SELECT (SELECT count(*) FROM generate_series(1, 200) g WHERE g <= ascii(name)) AS n FROM customers',
    "SELECT i FROM customers c, generate_series(1, 30) i WHERE c.id = 1 AND substr(c.email, i, 1) = 'a'",
    "SELECT i FROM customers, generate_series(1, 30) i WHERE id = 1 AND substr(email, i, 1) = 'a'",
    'SELECT x.g FROM (SELECT c.email, g FROM customers c, generate_series(32, 126) g) x WHERE ascii(x.email) = x.g',
    'SELECT x.g FROM (SELECT * FROM customers c, generate_series(32, 126) g) x WHERE ascii(x.email) = x.g',
    'SELECT v.x FROM customers c, (VALUES (97), (98), (99)) v(x) WHERE ascii(c.email) = v.x',
    'SELECT s.g FROM customers c, LATERAL (SELECT g FROM generate_series(32, 126) g WHERE g = ascii(c.email)) s',
    'SELECT c.id, o.id FROM customers c JOIN orders o ON o.id = ascii(c.email)',
    'SELECT g FROM generate_series(1, 200) g WHERE g < (SELECT ascii(email) FROM customers WHERE id = 1)',
    'SELECT x.rn FROM (SELECT c.email, row_number() OVER () AS rn FROM customers c, generate_series(1, 200) g WHERE c.id = 1) x WHERE ascii(x.email) = x.rn',
    'SELECT x.n FROM (SELECT c.email AS e, g, count(*) AS n FROM customers c, generate_series(1, 130) g, generate_series(1, 130) h WHERE h <= g AND c.id = 1 GROUP BY c.email, g) x WHERE ascii(x.e) = x.n',
    'SELECT k, (SELECT count(*) FROM (SELECT g FROM generate_series(32, 126) g WHERE g <= k INTERSECT SELECT ascii(email) FROM customers WHERE id = 1) z) AS n FROM generate_series(32, 126) k',
    // #2 (a): ordering a masked value against a dictionary, the position read back.
    "SELECT string_agg(chr(nx), ',' ORDER BY i) FROM (SELECT i, k, lead(k) OVER (PARTITION BY i) nx FROM (SELECT i, substr(email, i, 1) v, 0 k FROM customers, generate_series(1, 30) i WHERE id = 1 UNION ALL SELECT i, chr(g), g FROM generate_series(1, 30) i, generate_series(32, 126) g ORDER BY i, v, k) s) t WHERE k = 0",
    'SELECT array_position(array(SELECT k FROM (SELECT substr(email, 1, 1) v, 0 k FROM customers WHERE id = 1 UNION ALL SELECT chr(g), g FROM generate_series(32, 126) g) s ORDER BY v, k), 0)',
    'SELECT i FROM customers, generate_series(1, 30) i WHERE id = 1 ORDER BY substr(email, i, 1)',
    'SELECT count(*) FROM (SELECT DISTINCT substr(email, i, 1) FROM customers, generate_series(1, 30) i WHERE id = 1) s',
    // #2 (b), (c), (d): frame offsets, TABLESAMPLE, GROUP BY on a masked test.
    'SELECT max(x) FROM (SELECT count(*) OVER (ROWS BETWEEN (SELECT ascii(email) FROM customers WHERE id = 1) PRECEDING AND CURRENT ROW) x FROM generate_series(1, 300)) s',
    'SELECT max(x) FROM (SELECT count(*) OVER (ORDER BY g RANGE BETWEEN (SELECT ascii(email) FROM customers WHERE id = 1) PRECEDING AND CURRENT ROW) x FROM generate_series(1, 300) g) s',
    'SELECT count(*) FROM orders TABLESAMPLE bernoulli ((SELECT ascii(email) - 90 FROM customers WHERE id = 1)) REPEATABLE (1)',
    'SELECT count(*) FROM generate_series(1, 300) g GROUP BY g > (SELECT ascii(email) FROM customers WHERE id = 1)',
  ];

  it('dictionary joins, correlated tests, orderings, frames, samples and groupings over masked values are refused', async () => {
    await bob(async (c) => {
      await expectRefused(c, dictionaryDecoders);
      // EXPLAIN ANALYZE of a prepared statement: its plan counts the rows of a masked predicate.
      await c.query('PREPARE p_q AS SELECT 1 FROM customers WHERE ascii(email) > 100');
      const e = await failure(c.query('EXPLAIN (ANALYZE) EXECUTE p_q'));
      expect({ code: e?.code, rule: e?.message.includes('"masking-bypass"') }).toEqual({ code: '42501', rule: true });
      // Attack round 4 #8: a 120,000-element list is refused before it is parsed (54000).
      const big = await failure(c.query(`SELECT 1 IN (${Array.from({ length: 120_000 }, () => '1').join(',')})`));
      expect(big?.code).toBe('54000');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it('tests against constants, parameters and the same row, joins on a masked key and groupings of one table by a plain column run', async () => {
    await bob(async (c) => {
      const [{ email }] = await upstreamRows<{ email: string }>(upstream, 'SELECT email FROM customers WHERE id = 1');
      const ids = async (sql: string, params: unknown[] = []): Promise<number[]> => (await c.query<{ id: number }>(sql, params)).rows.map((r) => r.id);
      expect(await ids('SELECT id FROM customers WHERE email = $1', [email])).toEqual([1]);
      expect(await ids("SELECT id FROM customers WHERE lower(email) LIKE 'a%'")).toEqual([1]);
      expect(await ids('SELECT id FROM customers WHERE ascii(email) = id + 96 ORDER BY id')).toEqual([1, 2]);
      expect(await ids('SELECT x.id FROM (SELECT * FROM customers) x WHERE x.email = $1', [email])).toEqual([1]);
      expect(await ids('SELECT c.id FROM customers c, generate_series(1, 2) g WHERE email = $1 AND g = 1', [email])).toEqual([1]);
      expect(await ids('SELECT DISTINCT o.customer AS id FROM orders o JOIN customers c ON c.id = o.customer WHERE c.email = $1', [email])).toEqual([1]);
      expect(await ids('SELECT DISTINCT o.customer AS id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer AND c.email LIKE $1)', ['alice%'])).toEqual([1]);
      expect(await ids('SELECT a.id FROM customers a JOIN customers b ON a.email = b.email ORDER BY a.id')).toEqual([1, 2]);
      expect((await c.query('SELECT count(*)::int AS n FROM customers WHERE email IS NOT NULL')).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM (SELECT email FROM customers UNION SELECT email FROM customers) u')).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM (SELECT DISTINCT email FROM customers) u')).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT c.id, count(o.id)::int AS n FROM customers c JOIN orders o ON o.customer = c.id GROUP BY c.id ORDER BY c.id')).rows).toEqual([{ id: 1, n: 50 }, { id: 2, n: 50 }]);
      const grouped = await c.query<{ email: string; n: number }>('SELECT email, count(*)::int AS n FROM customers GROUP BY email ORDER BY 2');
      // Ordering by a masked value is refused (attack round 5 #5, row-keys.test.ts).
      expect(grouped.rows.length).toBe(2);
      expect(grouped.rows.map((r) => r.email)).not.toContain(email);
      expect((await c.query('SELECT count(*)::int AS n FROM orders TABLESAMPLE bernoulli (100) REPEATABLE (1)')).rows).toEqual([{ n: 100 }]);
      expect((await c.query('SELECT max(x)::int AS m FROM (SELECT count(*) OVER (ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) x FROM generate_series(1, 10)) s')).rows).toEqual([{ m: 3 }]);
      await c.query('PREPARE p_ok AS SELECT 1 FROM orders WHERE total > 10');
      expect((await c.query('EXPLAIN EXECUTE p_ok')).rows.length).toBeGreaterThan(0);
    });
  });
});
