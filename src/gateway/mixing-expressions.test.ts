import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { expectRefused, failure, grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Attack round 5 #1: a masked value combined with a value of another row source anywhere in an
 * expression — the select list, CASE, function arguments, scalar subqueries, VALUES, LATERAL,
 * window and aggregate arguments, SET and RETURNING — changes what the client observes besides
 * the masked cell: `1/(ascii(substr(c.name, 1, 1)) - g)` raises division by zero at the matching
 * row of `generate_series`, so the rows before the error spell the name; so does a statement
 * timeout, or the time between rows. Refused (`masking-bypass`, lineage-control.ts) before
 * anything runs. And §3 of the same run: control-only tests of a masked value against constants
 * (`count(*) FILTER (WHERE …)`, `sum(CASE WHEN … THEN 1 ELSE 0 END)`) return plain counts, and
 * psql's `\d` runs. Real PostgreSQL, real psql.
 */

const run = promisify(execFile);
let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await shopResource(h, upstream, 'shop-x', { masking: { columns: [{ name: 'name', mode: 'hash' }, { name: 'email', mode: 'partial' }, { name: 'phone', mode: 'partial' }, { name: 'card', mode: 'full' }] } });
  await upstreamSql(upstream, `CREATE TABLE loyalty (customer_id int PRIMARY KEY REFERENCES customers (id), tier text, discount_pct int);
      INSERT INTO loyalty VALUES (1, 'gold', 5), (2, 'silver', 2)`);
  await grantAccess(h, h.users.bob, 'shop-x', 'read');
  await grantAccess(h, h.users.alice, 'shop-x', 'write');
});
afterAll(() => stopGatewayTest(h, upstream));

/** The error-position, timeout and timing decoders of the attack, and the same class elsewhere in an expression. */
const DECODERS = [
  // The attack's three forms (dec.js, the 57014 variant, tim.js).
  'SELECT g, 1/(ascii(substr(c.name, 1, 1)) - g) FROM customers c, generate_series(31, 127) g WHERE c.id = 1',
  'SELECT g, CASE WHEN ascii(substr(c.email, 2, 1)) = g THEN 1/(g - g) END x FROM customers c, generate_series(31, 127) g WHERE c.id = 1',
  'SELECT g, CASE WHEN ascii(substr(c.name, 1, 1)) = g THEN (SELECT count(*) FROM generate_series(1, 20000000 + g - g)) END FROM customers c, generate_series(31, 127) g WHERE c.id = 1',
  "SELECT g, repeat('x', 9000) pad, CASE WHEN ascii(substr(c.name, 1, 1)) = g THEN (SELECT count(*) FROM generate_series(1, 3000000 + g - g)) END x FROM customers c, generate_series(31, 127) g WHERE c.id = 1",
  // Simple CASE, scalar and correlated subqueries, VALUES, LATERAL.
  'SELECT g, CASE ascii(substr(c.name, 1, 1)) WHEN g THEN 1/0 END FROM customers c, generate_series(31, 127) g',
  'SELECT g, (SELECT 1/(ascii(substr(c.name, 1, 1)) - g) FROM customers c WHERE c.id = 1) FROM generate_series(31, 127) g',
  'SELECT g, 1/((SELECT ascii(name) FROM customers WHERE id = 1) - g) FROM generate_series(31, 127) g',
  'SELECT v.x, 1/(ascii(c.email) - v.x) FROM customers c, (VALUES (97), (98)) v(x)',
  'SELECT g, x FROM generate_series(31, 127) g, LATERAL (VALUES (1/(ascii((SELECT email FROM customers WHERE id = 1)) - g))) v(x)',
  'SELECT s.g, s.y FROM customers c, LATERAL (SELECT g, 1/(ascii(c.email) - g) y FROM generate_series(32, 126) g) s',
  'WITH RECURSIVE d(g) AS (SELECT 32 UNION ALL SELECT g + 1 FROM d WHERE g < 126) SELECT g, 1/(ascii(c.email) - g) FROM d, customers c',
  // Function and operator arguments, casts, subscripts, GREATEST, IN lists, ANY, sublinks.
  'SELECT g, substr(c.email, g, 1)::int FROM customers c, generate_series(1, 30) g',
  "SELECT g, substr(c.name, 1, g - ascii(c.name)) FROM customers c, generate_series(31, 127) g",
  'SELECT g, greatest(ascii(c.name), g) FROM customers c, generate_series(31, 127) g',
  'SELECT g, (array[1, 2, 3])[ascii(c.name) - g] FROM customers c, generate_series(31, 127) g',
  'SELECT g, ascii(c.email) IN (g, g + 1) FROM customers c, generate_series(31, 127) g',
  'SELECT g, ascii(c.email) = ANY (array[g]) FROM customers c, generate_series(31, 127) g',
  'SELECT g, ascii(c.email) IN (SELECT g) FROM customers c, generate_series(31, 127) g',
  'SELECT g, (ascii(c.name) - g)::text FROM customers c, generate_series(31, 127) g',
  "SELECT g, json_build_object(substr(c.email, 1, 1), 1, chr(g), 2)::text FROM customers c, generate_series(32, 126) g",
  'SELECT o.id, 1/(ascii(c.email) - o.id) FROM customers c, orders o',
  // Aggregate and window arguments, FILTER, grouped values.
  'SELECT count(*) FILTER (WHERE ascii(email) = g) FROM customers, generate_series(1, 127) g',
  'SELECT bool_or(ascii(email) = g) FROM customers, generate_series(1, 127) g',
  'SELECT count(nullif(ascii(email), g)) FROM customers, generate_series(1, 127) g',
  'SELECT g, sum(1/(ascii(c.name) - g)) OVER () FROM customers c, generate_series(31, 127) g',
  'SELECT g, 1/(ascii(min(c.name)) - g) FROM customers c, generate_series(31, 127) g GROUP BY g',
  "SELECT string_agg(chr(g), ',' ORDER BY substr(c.email, g, 1)) FROM customers c, generate_series(1, 30) g",
  // INTERSECT ALL and EXCEPT ALL match rows as their forms without ALL do.
  'SELECT count(*) FROM (SELECT chr(g) FROM generate_series(32, 126) g EXCEPT ALL SELECT substr(email, 1, 1) FROM customers WHERE id = 1) s',
  'SELECT count(*) FROM (SELECT chr(g) FROM generate_series(32, 126) g INTERSECT ALL SELECT substr(email, 1, 1) FROM customers WHERE id = 1) s',
  // A CASE condition is control-only, but still decides a recursive CTE's rounds.
  'WITH RECURSIVE r(v, n, f) AS (SELECT email, 1, 0 FROM customers WHERE id = 1 UNION ALL SELECT v, n + 1, CASE WHEN ascii(v) > n THEN 0 ELSE 1 END FROM r WHERE f = 0) SELECT max(n) FROM r',
  'SELECT count(*) FROM generate_series(1, (SELECT count(*) FILTER (WHERE ascii(email) > 100) FROM customers))',
  // With constants only: a masked value as the amount of work (read back by timing, no predicate spelled out).
  "SELECT length(repeat('x', ascii(email) * 1000000)) FROM customers WHERE id = 1",
  "SELECT length(lpad('', ascii(substr(name, 2, 1)) * 100000, 'x')) FROM customers",
  'SELECT array_length(array_fill(1, array[ascii(email) * 1000]), 1) FROM customers',
  // Past the per-statement budget of judged leaves, the rest is judged as one (fail closed).
  `SELECT ${Array.from({ length: 150 }, () => '(SELECT o.id FROM orders o LIMIT 1)').join(' + ')} + 1/(ascii(c.email) - 97) FROM customers c`,
];

describe('masked values combined with other row sources in expressions (attack round 5 #1)', () => {
  it('the error-position, timeout and timing decoders are refused wherever the expression stands', async () => {
    await asUser(h, h.users.bob, 'shop-x', async (c) => {
      await expectRefused(c, DECODERS);
      // In the extended protocol too (refused at Parse), and the session carries on.
      const e = await failure(c.query({ text: 'SELECT g, 1/(ascii(substr(c.name, $1, 1)) - g) FROM customers c, generate_series(31, 127) g WHERE c.id = 1', values: [1] }));
      expect({ code: e?.code, rule: e?.message.includes('"masking-bypass"') }).toEqual({ code: '42501', rule: true });
      await c.query("SET statement_timeout = '300ms'");
      await expectRefused(c, [DECODERS[2]]);
      await c.query('RESET statement_timeout');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it('a write grant cannot run the decoder in SET, RETURNING or a write\'s FROM either', async () => {
    await asUser(h, h.users.alice, 'shop-x', async (c) => {
      await expectRefused(c, [
        'UPDATE loyalty l SET discount_pct = l.discount_pct + 0 * (1/(ascii(c.name) - g)) FROM customers c, generate_series(31, 127) g WHERE c.id = l.customer_id AND l.customer_id = 1',
        'UPDATE loyalty l SET discount_pct = discount_pct WHERE customer_id = 1 RETURNING (SELECT max(1/(ascii(c.name) - g)) FROM customers c, generate_series(31, 127) g WHERE c.id = 1)',
        'INSERT INTO loyalty (customer_id, tier, discount_pct) SELECT 1000 + g, \'x\', 1/(ascii(c.name) - g) FROM customers c, generate_series(31, 127) g WHERE c.id = 1',
      ]);
      expect((await c.query('SELECT sum(discount_pct)::int AS s FROM loyalty')).rows).toEqual([{ s: 7 }]);
    });
  });

  it('tests against constants, the row\'s own values and masked keys, and analyst shapes, still run', async () => {
    await asUser(h, h.users.bob, 'shop-x', async (c) => {
      const rows = async (sql: string): Promise<unknown[]> => (await c.query<Record<string, unknown>>(sql)).rows;
      // A value chosen by a CASE WHEN or FILTER test of a masked value is masked like a value
      // computed from it: one such column per bit spells every row (attack round 6 #1:
      // `CASE WHEN ascii(substr(email, i, 1)) & 2^b > 0 THEN 1 ELSE 0 END` per bit).
      const plain = [
        "SELECT count(*) FILTER (WHERE c.phone LIKE '+1 415%')::int AS n FROM customers c",
        "SELECT sum(CASE WHEN email LIKE 'a%' THEN 1 ELSE 0 END)::int AS n FROM customers",
        "SELECT c.id AS n, CASE WHEN c.email LIKE 'a%' THEN 'a' ELSE 'other' END AS k FROM customers c ORDER BY 1",
        'SELECT id AS n, CASE WHEN ascii(substr(email, 1, 1)) & 1 > 0 THEN 1 ELSE 0 END AS b0, CASE WHEN ascii(substr(email, 1, 1)) & 2 > 0 THEN 1 ELSE 0 END AS b1 FROM customers ORDER BY id',
        'SELECT id AS n, count(*) FILTER (WHERE ascii(substr(email, 1, 1)) & 1 > 0) AS b0 FROM customers GROUP BY id ORDER BY id',
      ];
      for (const sql of plain) {
        const got = (await rows(sql)) as Record<string, unknown>[];
        expect(got.length, sql).toBeGreaterThan(0);
        for (const r of got) {
          for (const [k, v] of Object.entries(r)) {
            if (k === 'n' && sql.includes(' AS n,')) continue; // the unmasked id beside the tests
            if (k === 'n' && !sql.includes(' AS n,')) expect(v, sql).not.toEqual(expect.any(Number));
            if (k !== 'n') expect(v === null || (typeof v === 'string' && /^\*+$|^h_/.test(v)), `${sql}: ${k}=${String(v)}`).toBe(true);
          }
        }
      }
      // A test against constants may raise an error: one bit per row per test spelled out (documented).
      expect((await failure(c.query('SELECT id, 1/(ascii(email) - 97) FROM customers ORDER BY id')))?.code).toBe('22012');
      // Joins, groups, subqueries and LATERAL over masked tables, masked columns masked.
      expect(await rows('SELECT c.id, count(o.id)::int AS n, max(o.total)::int AS m FROM customers c LEFT JOIN orders o ON o.customer = c.id GROUP BY c.id ORDER BY 1')).toEqual([{ id: 1, n: 50, m: 100 }, { id: 2, n: 50, m: 99 }]);
      expect(await rows('SELECT c.id, (SELECT max(o.total) FROM orders o WHERE o.customer = c.id)::int AS m FROM customers c ORDER BY 1')).toEqual([{ id: 1, m: 100 }, { id: 2, m: 99 }]);
      expect(await rows('SELECT c.id, o.total::int AS t FROM customers c JOIN LATERAL (SELECT total FROM orders o WHERE o.customer = c.id ORDER BY id DESC LIMIT 1) o ON true ORDER BY 1')).toEqual([{ id: 1, t: 100 }, { id: 2, t: 99 }]);
      expect(await rows("SELECT coalesce(l.tier, 'none') AS tier, count(*)::int AS n FROM customers c LEFT JOIN loyalty l ON l.customer_id = c.id GROUP BY 1 ORDER BY 1")).toEqual([{ tier: 'gold', n: 1 }, { tier: 'silver', n: 1 }]);
      const masked = await c.query('SELECT o.id, upper(c.email) AS u, c.email, o.total FROM orders o JOIN customers c ON c.id = o.customer ORDER BY o.id LIMIT 2');
      expect(masked.rows.length).toBe(2);
      for (const r of masked.rows as { u: string; email: string }[]) {
        expect(r.u).not.toMatch(/ALICE|BOB/);
        expect(r.email).not.toMatch(/^(alice|bob)@/);
      }
      // One value at a time from several masked sources (UNION ALL branches, a recursive CTE).
      expect((await rows('SELECT reverse(x) AS v FROM (SELECT email x FROM customers UNION ALL SELECT email FROM customers) s')).length).toBe(4);
      expect(await rows("SELECT coalesce(c.phone, c.email) <> '' AS p FROM customers c WHERE c.id = 1")).toHaveLength(1);
      // Sizes that are constants or unmasked values run.
      expect(await rows("SELECT lpad(id::text, 4, '0') AS p, rpad('x', id, '*') AS r, lpad(email, 30, '*') <> '' AS e FROM customers ORDER BY id")).toEqual([{ p: '0001', r: 'x', e: null }, { p: '0002', r: 'x*', e: null }]);
    });
  });

  it('psql \\d, \\d+ and \\dt run under masking (attack round 5 §3)', async () => {
    const url = `host=127.0.0.1 port=${h.gateway.port} user=bob dbname=shop-x`;
    const r = await run('psql', [url, '-X', '-c', '\\d loyalty', '-c', '\\d+ customers', '-c', '\\dt'], { env: { ...process.env, PGPASSWORD: h.users.bob.token } }).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stderr).not.toContain('masking-bypass');
    expect(r.stdout).toContain('discount_pct');
    expect(r.stdout).toContain('loyalty_customer_id_fkey');
    expect(r.stdout).toContain('Referenced by');
  });
});
