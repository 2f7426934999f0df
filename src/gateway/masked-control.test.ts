import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { failure, startMaskedShop, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { bind, errorsOf, execute, parseMessage, queryMessage, rowValues, roundTrip, SYNC } from './wire-client.conformance.js';

/**
 * Attack round 7 #1: a value chosen by a test of a masked value — through NULL-ness, EXISTS, a
 * scalar or IN subquery, a LATERAL or outer-joined derived table, a set operation's branch, a
 * nested HAVING, and on the cursor, EXECUTE, COPY and write paths — came back in the clear, one
 * bit per row and test, so one statement spelled every row. Control flows like data
 * (lineage.ts rowControl): such values are masked, NULL included, or refused where a masked value
 * is. Real PostgreSQL.
 *
 * The seed: customer 1's e-mail starts with 'a' (97, bit 0 set), customer 2's with 'b' (98).
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startMaskedShop('shop-c', { aliceWrites: true }));
  await upstreamSql(upstream, `CREATE TABLE loyalty (customer_id int PRIMARY KEY REFERENCES customers (id), tier text, discount_pct int);
      INSERT INTO loyalty VALUES (1, 'gold', 5), (2, 'silver', 2)`);
});
afterAll(() => stopGatewayTest(h, upstream));

const BIT = (col: string): string => `ascii(substr(${col}, 1, 1)) & 1 > 0`;

/** Every probe column (all but `id`) tells nothing: the same masked value (or NULL) in every row. */
function expectMaskedProbes(sql: string, rows: Record<string, unknown>[]): void {
  expect(rows.length, sql).toBeGreaterThan(1);
  for (const k of Object.keys(rows[0]).filter((x) => x !== 'id')) {
    const values = rows.map((r) => r[k]);
    for (const v of values) expect(v === null || (typeof v === 'string' && /^\*+$|^"\*+"$/.test(v)), `${sql}: ${k}=${JSON.stringify(v)}`).toBe(true);
    expect(new Set(values.map((v) => JSON.stringify(v))).size, `${sql}: ${k} differs between rows`).toBe(1);
  }
}

async function refused(c: pg.Client, sql: string): Promise<void> {
  const e = await failure(c.query(sql));
  expect({ sql, code: e?.code, rule: e?.message.includes('"masking-bypass"') }, e?.message).toEqual({ sql, code: '42501', rule: true });
}

const EXISTS = (col = 'c2.email'): string => `exists(SELECT 1 FROM customers c2 WHERE c2.id = c.id AND ${BIT(col)})`;

/** Forms 1–5 of the attack, and the set operation, nested HAVING and LATERAL VALUES forms: masked. */
const PROBES = [
  // 1. NULL-ness of a value computed from, or chosen by, a masked value.
  `SELECT id, CASE WHEN ${BIT('email')} THEN 'x' END AS p FROM customers ORDER BY id`,
  `SELECT id, nullif(substr(email, 1, 1), 'a') AS p, (array['y'])[ascii(email) & 1] AS q, greatest(CASE WHEN email LIKE 'a%' THEN 'z' END) AS r FROM customers ORDER BY id`,
  `SELECT id, jsonb_path_query_first(to_jsonb(email), '$ ? (@ like_regex "^a")') AS p FROM customers ORDER BY id`,
  // 2. Correlated EXISTS. (One subquery per statement: tests of one table through several FROM
  // items are refused, one row path per table: row-paths.test.ts.)
  `SELECT c.id, ${EXISTS()} AS p FROM customers c ORDER BY c.id`,
  `SELECT c.id, ${EXISTS('c2.name')} AS q FROM customers c ORDER BY c.id`,
  `SELECT c.id, exists(SELECT FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')}) AS p FROM customers c ORDER BY c.id`,
  `SELECT c.id, ${EXISTS()}::int * 2 AS p FROM customers c ORDER BY c.id`,
  `SELECT c.id, chr(65 + ${EXISTS()}::int) AS q FROM customers c ORDER BY c.id`,
  // 3. Correlated scalar subqueries: a value, a count, an array.
  `SELECT c.id, (SELECT 1 FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')}) AS p FROM customers c ORDER BY c.id`,
  `SELECT c.id, (SELECT count(*) FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')}) AS q FROM customers c ORDER BY c.id`,
  `SELECT c.id, (SELECT array_agg(id) FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')})::text AS r FROM customers c ORDER BY c.id`,
  `SELECT c.id, ARRAY(SELECT 'k' FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')})::text AS p FROM customers c ORDER BY c.id`,
  // 4. IN / ANY against a subquery that tests a masked value.
  `SELECT c.id, c.id IN (SELECT c2.id FROM customers c2 WHERE ${BIT('c2.email')}) AS p FROM customers c ORDER BY c.id`,
  `SELECT c.id, c.id = ANY (SELECT c2.id FROM customers c2 WHERE ${BIT('c2.email')}) AS q FROM customers c ORDER BY c.id`,
  // 5. LATERAL (and outer-joined) derived tables whose rows a masked test chooses.
  `SELECT c.id, l.x AS p FROM customers c LEFT JOIN LATERAL (SELECT 1 AS x WHERE ${BIT('c.email')}) l ON true ORDER BY c.id`,
  `SELECT c.id, d.id AS p FROM customers c LEFT JOIN (SELECT id FROM customers WHERE ${BIT('email')}) d ON d.id = c.id ORDER BY c.id`,
  `WITH m AS (SELECT id FROM customers WHERE ${BIT('email')}) SELECT c.id, m.id AS p FROM customers c LEFT JOIN m ON m.id = c.id ORDER BY c.id`,
  `SELECT c.id, (SELECT count(*) FROM (SELECT 1 FROM customers c2 WHERE c2.id = c.id AND ${BIT('c2.email')}) z) AS p FROM customers c ORDER BY c.id`,
  // Nested HAVING chooses which groups a subquery yields.
  `SELECT c.id, exists(SELECT 1 FROM customers c2 WHERE c2.id = c.id GROUP BY c2.id HAVING bool_or(${BIT('c2.email')})) AS p FROM customers c ORDER BY c.id`,
  // LATERAL VALUES of such a value.
  `SELECT c.id, v.x AS p FROM customers c, LATERAL (VALUES (${EXISTS()})) v(x) ORDER BY c.id`,
];

describe('a value chosen by a test of a masked value is masked (attack round 7 #1)', () => {
  it('forms 1–5, nested HAVING and LATERAL VALUES come back masked, NULL included', async () => {
    await asUser(h, h.users.bob, 'shop-c', async (c) => {
      for (const sql of PROBES) expectMaskedProbes(sql, (await c.query(sql)).rows as Record<string, unknown>[]);
      // Aggregates over the rows a masked test chose, weighted per joined row (a number of many
      // bits), at the top level too: masked, or refused by the mixing rule.
      const weighted = [
        `SELECT c.id, count(*) AS p, sum(o.total)::text AS q FROM customers c JOIN orders o ON o.customer = c.id WHERE CASE WHEN o.id <= 2 THEN ${BIT('c.email')} WHEN o.id <= 6 THEN ascii(substr(c.email, 1, 1)) & 2 > 0 END GROUP BY c.id ORDER BY c.id`,
        `SELECT c.id, count(*) OVER (PARTITION BY c.id) AS p FROM customers c JOIN orders o ON o.customer = c.id WHERE CASE WHEN o.id <= 2 THEN ${BIT('c.email')} ELSE o.id > 96 END ORDER BY c.id`,
        `SELECT c.id, count(*) AS p FROM customers c JOIN orders o ON o.customer = c.id WHERE (o.id <= 2 AND ${BIT('c.email')}) OR (o.id > 2 AND o.id <= 6 AND ascii(substr(c.email, 1, 1)) & 2 > 0) GROUP BY c.id ORDER BY c.id`,
      ];
      for (const sql of weighted) {
        const r = await c.query(sql).then((x) => x.rows as Record<string, unknown>[], (e: Error & { code?: string }) => e);
        if (r instanceof Error) expect({ sql, code: r.code, rule: r.message.includes('"masking-bypass"') }).toEqual({ sql, code: '42501', rule: true });
        else expectMaskedProbes(sql, r.filter((x, i) => r.findIndex((y) => y.id === x.id) === i));
      }
      // Branches of a set operation tagged with constants: the tag (and what the branch returns) is masked.
      const tagged = (await c.query(`SELECT id, 'odd' AS p FROM customers WHERE ${BIT('email')} UNION ALL SELECT id, 'even' FROM orders WHERE id = 1`)).rows as Record<string, unknown>[];
      expect(tagged).toEqual([{ id: null, p: '********' }, { id: null, p: '********' }]);
      // Two bits of a row in one column, through two subqueries over the table: refused (one row
      // path per table), as are two branches over the table each testing it.
      await refused(c, `SELECT c.id, ${EXISTS()}::int * 1 + ${EXISTS('c2.name')}::int * 2 AS p FROM customers c ORDER BY c.id`);
      await refused(c, `SELECT id, 'odd' AS p FROM customers WHERE ${BIT('email')} UNION ALL SELECT id, 'even' FROM customers WHERE NOT ${BIT('email')}`);
    });
  });

  it('in binary result format too, and through SQL cursors and EXECUTE', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-c');
    try {
      // Both tests read customers through the one FROM item c (one row path per table).
      const sql = `SELECT c.id, exists(SELECT 1 WHERE ${BIT('c.email')}) AS p, CASE WHEN ${BIT('c.email')} THEN 'x' END AS q FROM customers c ORDER BY c.id`;
      const r = await roundTrip(raw, [parseMessage('', sql), bind('', '', [], [1]), execute(''), SYNC], 'b1');
      const rows = r.messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body, true));
      expect(rows.slice(0, 2).map((x) => x.slice(1))).toEqual([[null, Buffer.from('********').toString('hex')], [null, Buffer.from('********').toString('hex')]]);
      const q = await roundTrip(raw, [queryMessage(`BEGIN; DECLARE cc CURSOR FOR SELECT id, CASE WHEN ${BIT('email')} THEN 'x' END AS b FROM customers ORDER BY id; FETCH 2 FROM cc; COMMIT`)], 'b2');
      expect(errorsOf(q.messages)).toEqual([]);
      const fetched = q.messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body)).filter((v) => v[0] !== 'b2');
      expect(fetched).toEqual([[null, '********'], [null, '********']]);
      const e = await roundTrip(raw, [queryMessage(`PREPARE pp AS SELECT id, CASE WHEN ${BIT('email')} THEN 'x' END AS b FROM customers ORDER BY id; EXECUTE pp`)], 'b3');
      expect(errorsOf(e.messages)).toEqual([]);
      expect(e.messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body)).filter((v) => v[0] !== 'b3')).toEqual([[null, '********'], [null, '********']]);
      // COPY of such a value: refused (COPY has no per-column masking).
      const copy = await roundTrip(raw, [queryMessage(`COPY (SELECT c.id, ${EXISTS()} FROM customers c ORDER BY id) TO STDOUT`)], 'b4');
      expect(errorsOf(copy.messages).map((f) => [f.get('C'), f.get('M')?.includes('"masking-bypass"')])).toEqual([['42501', true]]);
      expect(copy.messages.some((m) => m.type === 'd')).toBe(false);
    } finally {
      raw.close();
    }
  });

  it('as a row key, a window key or LIMIT it is refused like a masked value', async () => {
    await asUser(h, h.users.bob, 'shop-c', async (c) => {
      await refused(c, `SELECT id FROM customers c ORDER BY ${EXISTS()} DESC, id`);
      await refused(c, `SELECT ${EXISTS()} AS k, string_agg(id::text, ',') FROM customers c GROUP BY 1`);
      await refused(c, `SELECT id, row_number() OVER (ORDER BY ${EXISTS()} DESC, id) FROM customers c`);
      await refused(c, "SELECT g FROM generate_series(1, 100) g LIMIT (SELECT count(*) FROM customers WHERE email LIKE 'a%')");
      await refused(c, `SELECT id FROM (SELECT id, 'odd' AS t FROM customers WHERE ${BIT('email')} UNION ALL SELECT id, 'even' FROM customers WHERE NOT ${BIT('email')}) s ORDER BY t, id`);
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it('a write grant cannot write such a value into an unmasked column', async () => {
    await asUser(h, h.users.alice, 'shop-c', async (c) => {
      await refused(c, `UPDATE loyalty l SET tier = chr(64 + exists(SELECT 1 FROM customers c WHERE c.id = l.customer_id AND ${BIT('c.name')})::int) WHERE customer_id = 1`);
      await refused(c, `UPDATE loyalty l SET discount_pct = (SELECT count(*) FROM customers c WHERE c.id = l.customer_id AND ${BIT('c.email')}) WHERE customer_id = 1`);
      await refused(c, `INSERT INTO loyalty (customer_id, tier) SELECT 100 + id, 'odd' FROM customers WHERE ${BIT('email')} UNION ALL SELECT 200 + id, 'even' FROM customers WHERE NOT ${BIT('email')}`);
      expect((await c.query('SELECT tier FROM loyalty ORDER BY customer_id')).rows).toEqual([{ tier: 'gold' }, { tier: 'silver' }]);
    });
  });

  it('a write grant\'s row choice over masked data leaves no readable mark: xmax, xmin and ctid are masked (attack round 7 #8)', async () => {
    await asUser(h, h.users.alice, 'shop-c', async (c) => {
      await c.query('BEGIN');
      await c.query(`UPDATE loyalty SET discount_pct = discount_pct WHERE customer_id IN (SELECT id FROM customers WHERE ${BIT('name')})`);
      await c.query('ROLLBACK');
    });
    await asUser(h, h.users.bob, 'shop-c', async (c) => {
      const sql = 'SELECT customer_id AS id, xmax::text AS p, xmin::text AS q, ctid::text AS r, l.xmax AS s FROM loyalty l ORDER BY customer_id';
      expectMaskedProbes(sql, (await c.query(sql)).rows as Record<string, unknown>[]);
      expect((await c.query('SELECT customer_id, tier FROM loyalty ORDER BY 1')).rows).toEqual([{ customer_id: 1, tier: 'gold' }, { customer_id: 2, tier: 'silver' }]);
    });
  });

  it('legitimate neighbours stay plain: tests of unmasked values, lookups, top-level row choice', async () => {
    await asUser(h, h.users.bob, 'shop-c', async (c) => {
      const rows = async (sql: string, values?: unknown[]): Promise<unknown[]> => (await c.query<Record<string, unknown>>(sql, values)).rows;
      expect(await rows('SELECT c.id, exists(SELECT 1 FROM orders o WHERE o.customer = c.id) AS p FROM customers c ORDER BY c.id')).toEqual([{ id: 1, p: true }, { id: 2, p: true }]);
      expect(await rows('SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer = c.id AND o.total > 50)::int AS n FROM customers c ORDER BY c.id')).toEqual([{ id: 1, n: 25 }, { id: 2, n: 25 }]);
      expect(await rows('SELECT c.id, c.id IN (SELECT customer FROM orders WHERE total = 100) AS p FROM customers c ORDER BY c.id')).toEqual([{ id: 1, p: true }, { id: 2, p: false }]);
      expect(await rows('SELECT c.id, l.tier FROM customers c LEFT JOIN LATERAL (SELECT tier FROM loyalty WHERE customer_id = c.id AND discount_pct > 3) l ON true ORDER BY c.id')).toEqual([{ id: 1, tier: 'gold' }, { id: 2, tier: null }]);
      expect(await rows('SELECT id FROM customers WHERE email = $1', ['bob@example.org'])).toEqual([{ id: 2 }]);
      // Top-level row choice: one bit per row per predicate, documented (docs/gateway.md).
      expect(await rows(`SELECT id FROM customers WHERE ${BIT('email')}`)).toEqual([{ id: 1 }]);
      expect(await rows(`SELECT id FROM customers GROUP BY id HAVING bool_or(${BIT('email')})`)).toEqual([{ id: 1 }]);
      expect(await rows(`SELECT c.id FROM customers c WHERE ${EXISTS()}`)).toEqual([{ id: 1 }]);
      // The plain masked column keeps its rule's mode through a filtered subquery.
      expect(await rows('SELECT x.email FROM (SELECT email FROM customers WHERE id = 2) x')).toEqual([{ email: '***@******e.org' }]);
    });
  });
});
