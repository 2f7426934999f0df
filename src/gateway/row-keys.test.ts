import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, startApi, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { expectRefused, grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Attack round 5 #5: rows with known values in the masked table itself (inserted by this session
 * in a transaction it rolls back, or by anyone), then GROUP BY / ORDER BY / DISTINCT keyed on a
 * value derived from the masked column: each row groups or sorts next to the known row that
 * shares its key, and the known rows' ids spell the value. Refused under masking
 * (`masking-bypass`, lineage-keys.ts); grouping by a plain masked column (whole values), and
 * keys of unmasked values, still run. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  // A table whose one PII value the classification sample misses (attack round 4 #7's control).
  await upstreamSql(upstream, "CREATE TABLE memos (id int, memo text); INSERT INTO memos SELECT g, 'call back later' FROM generate_series(1, 20000) g; UPDATE memos SET memo = 'ssn 078-05-1120' WHERE id = 19999");
  await shopResource(h, upstream, 'shop-k', { masking: { columns: [{ name: 'name', mode: 'hash' }, { name: 'email', mode: 'partial' }, { name: 'card', mode: 'full' }] } });
  await grantAccess(h, h.users.alice, 'shop-k', 'write');
  await grantAccess(h, h.users.bob, 'shop-k', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

const refused = (c: pg.Client, sql: string): Promise<void> => expectRefused(c, [sql]);

const PLANT = "INSERT INTO customers (id, name, email, card) SELECT 1000 + g, 'dict', 'x' || chr(g), '' FROM generate_series(32, 126) g";

describe('row keys over masked values with known rows planted (attack round 5 #5)', () => {
  it('GROUP BY / ORDER BY / DISTINCT keyed on a masked value are refused, planted rows or not', async () => {
    await asUser(h, h.users.alice, 'shop-k', async (c) => {
      await c.query('BEGIN');
      await c.query(PLANT);
      const decoders = [
        // grp.sql, ord.sql, grp2.sql (two positions suffice for the shape).
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM customers GROUP BY substr(email, 2, 1) HAVING count(*) > 1 AND min(id) <= 50",
        'SELECT id FROM customers WHERE id <= 3 OR id >= 1000 ORDER BY substr(email, 2, 1), id',
        "SELECT grouping(substr(email, 1, 1), substr(email, 2, 1))::bigint AS gbits, string_agg(id::text, ',' ORDER BY id) FROM customers GROUP BY GROUPING SETS ((substr(email, 1, 1)), (substr(email, 2, 1))) HAVING min(id) <= 50 AND max(id) > 1000",
        "SELECT string_agg(id::text, ',') FROM customers GROUP BY ROLLUP (substr(email, 2, 1))",
        // The key by position, by output name, through a derived table, a CTE, a cast, a collation.
        "SELECT substr(email, 2, 1), string_agg(id::text, ',') FROM customers GROUP BY 1",
        "SELECT substr(email, 2, 1) AS k, string_agg(id::text, ',') FROM customers GROUP BY k",
        "SELECT k, string_agg(id::text, ',') FROM (SELECT id, substr(email, 2, 1) AS k FROM customers) s GROUP BY k",
        "WITH s AS (SELECT id, email::varchar(2) AS k FROM customers) SELECT string_agg(id::text, ',') FROM s GROUP BY k",
        "SELECT string_agg(id::text, ',') FROM customers GROUP BY email::varchar(2)",
        'SELECT string_agg(id::text, \',\') FROM customers GROUP BY email COLLATE "C"',
        "SELECT string_agg(id::text, ',') FROM customers GROUP BY name > 'M'",
        // ORDER BY: even a plain masked column sorts each row among the known ones.
        'SELECT id FROM customers ORDER BY email',
        'SELECT id, email AS e FROM customers ORDER BY e',
        'SELECT id, email FROM customers ORDER BY 2',
        'SELECT id FROM (SELECT id, email FROM customers ORDER BY email LIMIT 200) s',
        'SELECT array_agg(id) FROM (SELECT id FROM customers ORDER BY card DESC) s',
        // DISTINCT ON and DISTINCT of derived values.
        'SELECT DISTINCT ON (substr(email, 2, 1)) id FROM customers',
        // DISTINCT ON sorts by its key: the ids come back in the e-mails' order (round 9 H1).
        'SELECT DISTINCT ON (email) id FROM customers',
        'SELECT DISTINCT ON (c.name, c.id) c.id FROM customers c',
        'SELECT count(*) FROM (SELECT DISTINCT substr(email, 2, 1), id > 999 FROM customers) s',
      ];
      for (const sql of decoders) {
        await c.query('SAVEPOINT k');
        await refused(c, sql);
        await c.query('ROLLBACK TO SAVEPOINT k');
      }
      await c.query('ROLLBACK');
    });
  });

  it('a read grant meets the same rule (rows with known values may exist already)', async () => {
    await asUser(h, h.users.bob, 'shop-k', async (c) => {
      await refused(c, "SELECT string_agg(id::text, ',') FROM customers GROUP BY substr(email, 2, 1)");
      await refused(c, 'SELECT id FROM customers ORDER BY name LIMIT 3');
    });
  });

  it('grouping by a plain masked column, and keys of unmasked values, still run', async () => {
    await asUser(h, h.users.bob, 'shop-k', async (c) => {
      const ids = async (sql: string): Promise<unknown[]> => (await c.query(sql)).rows.map((r: { id: unknown }) => r.id);
      expect(await ids('SELECT id FROM customers ORDER BY id')).toEqual([1, 2]);
      expect((await c.query('SELECT name, count(*)::int AS n FROM customers GROUP BY name HAVING count(*) > 1')).rows).toEqual([]);
      const grouped = await c.query('SELECT email, count(*)::int AS n FROM customers GROUP BY email ORDER BY 2, min(id)');
      expect(grouped.rows.map((r: { n: number }) => r.n)).toEqual([1, 1]);
      expect(grouped.rows.map((r: { email: string }) => r.email)).not.toContain('alice@example.com');
      expect((await c.query('SELECT count(*)::int AS n FROM (SELECT DISTINCT email FROM customers) u')).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM (SELECT DISTINCT c.* FROM customers c JOIN orders o ON o.customer = c.id) u')).rows).toEqual([{ n: 2 }]);
      expect((await c.query('SELECT c.email, count(o.id)::int AS n FROM customers c JOIN orders o ON o.customer = c.id GROUP BY c.email, c.id ORDER BY c.id')).rows.map((r: { n: number }) => r.n)).toEqual([50, 50]);
      expect((await c.query('SELECT customer AS id, sum(total)::int AS s FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 1')).rows).toEqual([{ id: 1, s: 2550 }]);
      expect((await c.query<{ n: number }>("SELECT date_trunc('day', created) AS d, count(*)::int AS n FROM orders GROUP BY 1 ORDER BY 1 DESC LIMIT 1")).rows[0].n).toBe(100);
      expect((await c.query('SELECT count(*)::int AS n FROM customers WHERE email LIKE $1', ['%@example.com'])).rows).toEqual([{ n: 1 }]);
    });
  });
});

describe('calls with observable effects whose running depends on a masked value (attack round 5 #4)', () => {
  const branches = Array.from({ length: 20 }, (_, i) => `WHEN ascii(substr(name, 2, 1)) = ${100 + i} THEN pg_advisory_lock(${100 + i})`).join(' ');
  it('a lock, notification, setting or sequence call in a statement that reads masked data is refused', async () => {
    await asUser(h, h.users.alice, 'shop-k', async (c) => {
      const channels = [
        `SELECT CASE ${branches} END FROM customers WHERE id = 1`,
        'SELECT pg_try_advisory_xact_lock(7) FROM customers WHERE id = 1 AND ascii(substr(name, 2, 1)) = 108',
        'SELECT pg_advisory_unlock(108) FROM customers WHERE ascii(substr(name, 2, 1)) = 108',
        "SELECT coalesce(nullif(ascii(email), 97)::text, pg_notify('ch', 'x')::text) FROM customers WHERE id = 1",
        "SELECT CASE WHEN ascii(email) > 100 THEN set_config('application_name', 'big', false) END FROM customers WHERE id = 1",
        "SELECT CASE WHEN ascii(email) = 97 THEN nextval('orders_id_seq') END FROM customers WHERE id = 1",
        "SELECT setval('orders_id_seq', 1000 + ascii(email)) FROM customers WHERE id = 1",
        "SELECT 1 FROM customers c WHERE row_to_json(c)::text LIKE '%lice%' AND pg_advisory_lock(3) IS NOT NULL",
        "SELECT pg_advisory_lock(5) FROM (SELECT * FROM customers) s WHERE s.x LIKE 'A%'",
        "SELECT pg_advisory_lock(6) WHERE EXISTS (SELECT 1 FROM customers WHERE card LIKE '4%')",
        "UPDATE orders SET total = total WHERE id = 1 AND (SELECT ascii(name) FROM customers WHERE id = 1) = 65 AND pg_advisory_xact_lock(8) IS NOT NULL",
        // Row locks: the rows a masked value chooses get an xmax other sessions read (round 6 #3).
        'SELECT 1 FROM orders WHERE id = (SELECT CASE WHEN ascii(substr(name, 2, 1)) & 1 > 0 THEN 1 ELSE 2 END FROM customers WHERE id = 1) FOR UPDATE',
        'SELECT id FROM customers WHERE id = 1 AND ascii(email) > 100 FOR SHARE',
      ];
      for (const sql of channels) await refused(c, sql);
      // Nothing was taken: no advisory lock is held by this session.
      expect((await c.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).rows).toEqual([{ n: 0 }]);
    });
  });

  it('the same calls in statements that read nothing masked still run', async () => {
    await asUser(h, h.users.alice, 'shop-k', async (c) => {
      await c.query('SELECT pg_advisory_lock(42)');
      await c.query("SELECT pg_try_advisory_lock(hashtext('job'))");
      await c.query('SELECT pg_advisory_lock(43) FROM orders WHERE total > 10 LIMIT 1');
      expect((await c.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")).rows).toEqual([{ n: 3 }]);
      await c.query('SELECT pg_advisory_unlock_all()');
      await c.query('BEGIN');
      expect((await c.query('SELECT total::int AS t FROM orders WHERE id = 1 FOR UPDATE')).rows.length).toBe(1);
      expect((await c.query("INSERT INTO orders (id, customer, total) VALUES (nextval('orders_id_seq'), 1, 5) RETURNING total::int AS t")).rows).toEqual([{ t: 5 }]);
      expect((await c.query("INSERT INTO customers (id, name, email) VALUES (nextval('orders_id_seq') + 5000, 'N', 'n@example.com') RETURNING id > 5000 AS ok")).rows).toEqual([{ ok: true }]);
      await c.query('ROLLBACK');
      await c.query("SELECT set_config('application_name', 'report', false)");
      await c.query('SELECT pg_advisory_unlock_all()');
    });
  });
});

describe('seen classification only from stored user tables (attack round 4 #7)', () => {
  it('text a client puts in a system view (pg_settings, pg_cursors) classifies no column name', async () => {
    await asUser(h, h.users.bob, 'shop-k', async (c) => {
      await c.query("SET application_name = '078-05-1120'");
      const s = await c.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'application_name'");
      expect(s.rows[0].setting).not.toBe('078-05-1120');
      await c.query('DECLARE "078-05-1120" CURSOR WITH HOLD FOR SELECT 1');
      await c.query('SELECT name, statement FROM pg_cursors');
      await c.query('CLOSE ALL');
      expect((await c.query<{ memo: string }>('SELECT memo FROM memos WHERE id = 19999')).rows[0].memo).not.toContain('078-05-1120');
    });
    const api = await startApi(h);
    try {
      const res = await fetch(`${api.url}/api/resources/shop-k`, { headers: { authorization: `Bearer ${h.admin.token}` } });
      const body = await res.json() as { classification: { columns: { column: string; source: string }[] } };
      const seen = body.classification.columns.filter((x) => x.source === 'seen').map((x) => x.column);
      expect(seen.filter((col) => ['setting', 'statement', 'name'].includes(col))).toEqual([]);
      // A user table's column still learns from what the detectors find in it.
      expect(seen).toContain('memo');
    } finally {
      await api.close();
    }
  });
});
