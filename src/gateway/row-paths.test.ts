import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { bit, decode, grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Attack round 9: a table read through k FROM items tells k bits of one row. Each item's own
 * test of a masked value is allowed on its own (one bit per row: docs/gateway.md, "What masking
 * does not promise"), but a statement that reads customer 1 through k items — a self join, k
 * references of one CTE, k LATERAL derived tables, k UNION ALL branches counted by weight, a view
 * beside its table — tests k different bits of the same e-mail and spells them in one statement.
 * Masking now lets a statement's row-choosing tests read a table's masked values through one row
 * path (masking/test-paths.ts). Each form is run as an attacker would and what comes back is
 * decoded: before the rule each spelt k = 14 bits (two characters); now each is refused
 * (`masking-bypass`, 42501), and the same form through one item tells at most one bit. Real
 * PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await upstreamSql(upstream, 'CREATE VIEW cust_mail AS SELECT id, email FROM customers');
  await shopResource(h, upstream, 'shop-rp', { masking: { columns: [{ name: 'email', mode: 'partial' }, { name: 'card', mode: 'full' }] } });
  await grantAccess(h, h.users.bob, 'shop-rp', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
type Rows = Record<string, unknown>[];
type Attack = (col: string, k: number) => { sql: string; read: (rows: Rows) => Set<number> };

/** Bit i is set where the i-th item kept customer 1 (its minimum id is 1, else only customer 2 passed). */
const minima = (rows: Rows, k: number): Set<number> => new Set(range(k).filter((i) => rows[0]?.[`b${i}`] === 1));
/** Item i keeps customer 2 always, customer 1 where bit i is set. */
const keep = (alias: string, col: string, i: number): string => `(${alias}.id = 2 OR ${alias}.id = 1 AND ${bit(`${alias}.${col}`, i)})`;

/** Each form reads customer 1 through k FROM items, each testing one bit of `col`. */
const ATTACKS: Record<string, Attack> = {
  'a self join, one top-level minimum per item': (col, k) => ({
    sql: `SELECT ${range(k).map((i) => `min(a${i}.id) AS b${i}`).join(', ')} FROM ${range(k).map((i) => `customers a${i}`).join(', ')} WHERE ${range(k).map((i) => keep(`a${i}`, col, i)).join(' AND ')}`,
    read: (rows) => minima(rows, k),
  }),
  'one CTE referenced k times': (col, k) => ({
    sql: `WITH m AS (SELECT id, email, card FROM customers) SELECT ${range(k).map((i) => `min(m${i}.id) AS b${i}`).join(', ')} FROM ${range(k).map((i) => `m m${i}`).join(', ')} WHERE ${range(k).map((i) => keep(`m${i}`, col, i)).join(' AND ')}`,
    read: (rows) => minima(rows, k),
  }),
  'k LATERAL derived tables': (col, k) => ({
    sql: `SELECT ${range(k).map((i) => `min(d${i}.id) AS b${i}`).join(', ')} FROM (SELECT 1) x, ${range(k).map((i) => `LATERAL (SELECT c.id, c.email, c.card FROM customers c) d${i}`).join(', ')} WHERE ${range(k).map((i) => keep(`d${i}`, col, i)).join(' AND ')}`,
    read: (rows) => minima(rows, k),
  }),
  'k UNION ALL branches, counted by weight': (col, k) => ({
    sql: `SELECT count(*)::int AS n FROM (${range(k).map((i) => `SELECT 1 FROM customers c, generate_series(1, ${2 ** i}) s WHERE c.id = 1 AND ${bit(`c.${col}`, i)}`).join(' UNION ALL ')}) d`,
    read: (rows) => new Set(range(k).filter((i) => (Number(rows[0]?.n ?? 0) & (1 << i)) !== 0)),
  }),
  'k EXISTS, one per row of orders': (col, k) => ({
    sql: `SELECT o.id FROM orders o WHERE ${range(k).map((i) => `(o.id = ${i + 1} AND EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND ${bit(`c.${col}`, i)}))`).join(' OR ')}`,
    read: (rows) => new Set(rows.map((r) => Number(r.id) - 1)),
  }),
};

/** Runs one form: refused, or the bits it told. */
async function run(c: pg.Client, sql: string, read: (rows: Rows) => Set<number>): Promise<{ refused: true } | { refused: false; bits: Set<number> }> {
  const r = await c.query(sql).then((x) => x.rows as Rows, (e: Error & { code?: string }) => e);
  if (r instanceof Error) {
    expect({ code: r.code, rule: r.message.includes('"masking-bypass"') }, r.message).toEqual({ code: '42501', rule: true });
    return { refused: true };
  }
  return { refused: false, bits: read(r) };
}

describe('one row path per table: k FROM items cannot test k bits of one row (attack round 9)', () => {
  it('no form reads a masked value through several FROM items: refused before anything runs', async () => {
    await asUser(h, h.users.bob, 'shop-rp', async (c) => {
      const k = 14;
      const got: { name: string; col: string; refused: boolean; learned?: string }[] = [];
      for (const col of ['email', 'card']) {
        for (const [name, attack] of Object.entries(ATTACKS)) {
          const { sql, read } = attack(col, k);
          const r = await run(c, sql, read);
          got.push(r.refused ? { name, col, refused: true } : { name, col, refused: false, learned: decode(r.bits, k) });
        }
      }
      // One comparison of every form: where it fails, it shows what each spelt ('al', '41').
      expect(got).toEqual(got.map(({ name, col }) => ({ name, col, refused: true })));
      // A view is the table it reads: a self join through it is two items of customers.
      const view = await run(c, `SELECT min(a.id) AS b0, min(v.id) AS b1 FROM customers a, cust_mail v WHERE ${keep('a', 'email', 0)} AND ${keep('v', 'email', 1)}`, (rows) => minima(rows, 2));
      expect(view).toEqual({ refused: true });
      // The session goes on.
      expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 2 }]);
    });
  });

  it('through one item, the same forms run and tell at most one bit of the row', async () => {
    await asUser(h, h.users.bob, 'shop-rp', async (c) => {
      for (const [name, attack] of Object.entries(ATTACKS)) {
        const { sql, read } = attack('email', 1);
        const r = await run(c, sql, read);
        expect({ name, refused: r.refused, bits: r.refused ? 0 : r.bits.size }).toEqual({ name, refused: false, bits: 1 });
      }
      // Tests of one row through one item, also in several places of the statement, and tests of
      // two different tables: each row tells its own bit.
      const q = async (sql: string): Promise<unknown[]> => (await c.query<Record<string, unknown>>(sql)).rows;
      expect(await q("SELECT c.id FROM customers c WHERE c.email LIKE 'a%' AND c.card LIKE '4%' AND EXISTS (SELECT 1 FROM orders o WHERE o.customer = c.id)")).toEqual([{ id: 1 }]);
      expect(await q("SELECT count(*)::int AS n FROM (SELECT id, email FROM customers WHERE email LIKE '%.com') d WHERE d.email LIKE 'a%'")).toEqual([{ n: 1 }]);
      expect(await q("SELECT a.id FROM customers a JOIN customers b ON b.id = a.id + 1 WHERE a.email LIKE 'a%'")).toEqual([{ id: 1 }]);
      // A join on a masked key tells equality of whole values, not a bit per item.
      expect(await q('SELECT count(*)::int AS n FROM customers a JOIN customers b ON a.email = b.email')).toEqual([{ n: 2 }]);
    });
  });

  it('ordinary analyst queries run, an OR of one masked test with another table’s tests among them; two masked tests chosen so are refused', async () => {
    await asUser(h, h.users.bob, 'shop-rp', async (c) => {
      const count = async (sql: string): Promise<number> => {
        const r = await c.query(sql).then((x) => x.rows as Rows, (e: Error) => e);
        expect(r instanceof Error ? r.message : 'ran', sql).toBe('ran');
        return (r as Rows).length;
      };
      // Customer 1 (alice@example.com) has the even orders, customer 2 (bob@example.org) the odd; order i totals i.
      const runs: [string, number][] = [
        ['SELECT c.id, c.email FROM customers c JOIN orders o ON o.customer = c.id WHERE o.total > 95', 5],
        ['SELECT c.email, count(*) AS n FROM customers c JOIN orders o ON o.customer = c.id GROUP BY c.email HAVING count(*) > 10', 2],
        ['SELECT c.id, count(o.id) AS n FROM customers c LEFT JOIN orders o ON o.customer = c.id GROUP BY c.id HAVING count(o.id) > 10', 2],
        ['SELECT o.id, sum(o.total) OVER (PARTITION BY o.customer ORDER BY o.id) AS s FROM orders o WHERE o.total > 95', 5],
        ['SELECT c.email, o.total, rank() OVER (PARTITION BY o.customer ORDER BY o.total DESC) AS r FROM orders o JOIN customers c ON c.id = o.customer WHERE o.total > 95', 5],
        ['SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer = c.id AND o.total > 1000)', 2],
        ['WITH big AS (SELECT customer, sum(total) AS s FROM orders GROUP BY customer) SELECT c.email, b.s FROM customers c JOIN big b ON b.customer = c.id WHERE b.s > 100 ORDER BY b.s DESC', 2],
        ['SELECT c.email, o.total FROM customers c JOIN LATERAL (SELECT total FROM orders WHERE customer = c.id ORDER BY total DESC LIMIT 1) o ON true', 2],
        ["SELECT c.id, c.email, (SELECT count(*) FROM orders o WHERE o.customer = c.id) AS n FROM customers c WHERE c.email LIKE '%@example.com'", 1],
        ['SELECT c.email FROM customers c LEFT JOIN orders o ON o.customer = c.id AND o.total > 99 WHERE o.id IS NULL', 1],
        ["SELECT c.id, o.total FROM customers c JOIN orders o ON o.customer = c.id WHERE c.email LIKE '%.com' AND o.total BETWEEN 10 AND 20 ORDER BY o.total", 6],
        ["SELECT o.id, o.total, lag(o.total) OVER (ORDER BY o.id) AS prev FROM orders o WHERE o.customer = (SELECT id FROM customers WHERE email = 'alice@example.com') ORDER BY o.id LIMIT 5", 5],
        ["SELECT count(DISTINCT o.customer) AS n FROM orders o WHERE o.total > 10 AND o.customer IN (SELECT c.id FROM customers c WHERE c.email LIKE '%.com' OR c.id = 2)", 1],
        // One masked test beside another table's: the other table decides whether the row's one answer counts.
        ["SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer WHERE c.email LIKE '%.com' OR o.total > 90", 55],
        ["SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer WHERE o.total > 90 OR (c.email LIKE 'a%' AND c.card LIKE '4%')", 55],
      ];
      for (const [sql, n] of runs) expect(await count(sql), sql).toBe(n);
      // Two masked tests that another table's values choose between: refused (42501).
      for (const sql of [
        `SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer WHERE c.id = 1 AND ((o.id = 2 AND ${bit('c.email', 0)}) OR (o.id = 4 AND ${bit('c.email', 1)}))`,
        `SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer WHERE o.total > 90 OR ${bit('c.email', 0)} AND o.id = 2 OR ${bit('c.email', 1)} AND o.id = 4`,
      ]) expect(await run(c, sql, () => new Set()), sql).toEqual({ refused: true });
    });
  });
});
