import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { bit, decode, startMaskedShop, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Attack round 8: the statement's top level may test masked values — its WHERE chooses which
 * rows come back, one bit per row of the masked table (docs/gateway.md). A predicate in which a
 * value of *another* row source chooses which masked test a row answers broke that bound: over
 * `generate_series(0, n - 1) g`, `WHERE CASE WHEN g = 0 THEN <bit 0 of the e-mail> WHEN g = 1
 * THEN <bit 1> … END` returns (or sums, in a top-level `sum(power(2, g))`) every bit of one
 * customer's e-mail in one statement; a subquery's filter does the same (`o.id IN (SELECT 1 …
 * WHERE <bit 0> UNION ALL SELECT 2 …)`, OR of correlated EXISTS, a chain of NOT EXISTS), and so
 * do the columns of outer-joined tables whose ON tests a masked value per joined row. Each form
 * below is run as an attacker would, decoding what comes back: it must be refused
 * (`masking-bypass`) or tell nothing. Before the fix each spelled the whole value (119 bits of
 * the e-mail, 133 of the card) in one statement. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startMaskedShop('shop-pc'));
});
afterAll(() => stopGatewayTest(h, upstream));

type Attack = (col: string, n: number) => { sql: string; read: (rows: Record<string, unknown>[]) => Set<number> };

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const ids = (rows: Record<string, unknown>[], k: string, shift = 0): Set<number> => new Set(rows.map((r) => Number(r[k]) - shift));

/** Each form spells n bits of customer 1's `col` in one statement unless the gateway stops it. */
const ATTACKS: Record<string, Attack> = {
  // A total aggregate at the top level: one number of n bits.
  'CASE in WHERE, top-level sum(power(2, g))': (col, n) => ({
    sql: `SELECT sum(power(2::numeric, g))::text AS s FROM customers c, generate_series(0, ${n - 1}) g WHERE c.id = 1 AND CASE ${range(n).map((i) => `WHEN g = ${i} THEN ${bit(`c.${col}`, i)}`).join(' ')} END`,
    read: (rows) => {
      let v = BigInt(String(rows[0]?.s ?? '0').split('.')[0] || '0');
      const out = new Set<number>();
      for (let i = 0; v > 0n; i++, v >>= 1n) if ((v & 1n) === 1n) out.add(i);
      return out;
    },
  }),
  'CASE in WHERE, the rows themselves': (col, n) => ({
    sql: `SELECT g FROM customers c, generate_series(0, ${n - 1}) g WHERE c.id = 1 AND CASE ${range(n).map((i) => `WHEN g = ${i} THEN ${bit(`c.${col}`, i)}`).join(' ')} END`,
    read: (rows) => ids(rows, 'g'),
  }),
  'CASE in an inner join ON': (col, n) => ({
    sql: `SELECT o.id FROM customers c JOIN orders o ON CASE ${range(n).map((i) => `WHEN o.id = ${i + 1} THEN ${bit(`c.${col}`, i)}`).join(' ')} END WHERE c.id = 1`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  'IN over tagged UNION ALL branches': (col, n) => ({
    sql: `SELECT o.id FROM orders o WHERE o.id IN (${range(n).map((i) => `SELECT ${i + 1} FROM customers WHERE id = 1 AND ${bit(col, i)}`).join(' UNION ALL ')})`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  'OR of correlated EXISTS': (col, n) => ({
    sql: `SELECT o.id FROM orders o WHERE ${range(n).map((i) => `exists(SELECT 1 FROM customers c WHERE c.id = 1 AND o.id = ${i + 1} AND ${bit(`c.${col}`, i)})`).join(' OR ')}`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  'a chain of NOT EXISTS (one conjunct per bit)': (col, n) => ({
    sql: `SELECT o.id FROM orders o WHERE o.id <= ${n} AND ${range(n).map((i) => `NOT exists(SELECT 1 FROM customers c WHERE c.id = 1 AND o.id = ${i + 1} AND NOT ${bit(`c.${col}`, i)})`).join(' AND ')}`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  'a scalar subquery chosen per row by CASE': (col, n) => ({
    sql: `SELECT o.id FROM orders o WHERE CASE ${range(n).map((i) => `WHEN o.id = ${i + 1} THEN (SELECT true FROM customers c WHERE c.id = 1 AND ${bit(`c.${col}`, i)})`).join(' ')} END`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  // Outer joins: each ON chooses, for another row of the kept side, whether the masked row stands beside it.
  'LEFT JOIN chain, the joined columns': (col, n) => ({
    sql: `SELECT ${range(n).map((i) => `c${i}.id AS b${i}`).join(', ')} FROM orders o ${range(n).map((i) => `LEFT JOIN customers c${i} ON c${i}.id = 1 AND ${bit(`c${i}.${col}`, i)}`).join(' ')} WHERE o.id = 1`,
    read: (rows) => new Set(range(n).filter((i) => rows[0]?.[`b${i}`] === 1)),
  }),
  'LEFT JOIN chain, IS NULL OR <test> in WHERE': (col, n) => ({
    sql: `SELECT o.id FROM orders o ${range(n).map((i) => `LEFT JOIN customers c${i} ON o.id = ${i + 1} AND c${i}.id = 1`).join(' ')} WHERE o.id <= ${n} AND ${range(n).map((i) => `(c${i}.id IS NULL OR ${bit(`c${i}.${col}`, i)})`).join(' AND ')}`,
    read: (rows) => ids(rows, 'id', 1),
  }),
  // Errors and work chosen per row: the rows streamed before the error (or the time between rows) spell the bits.
  'an error chosen per row by CASE (select list)': (col, n) => ({
    sql: `SELECT g, 1 / CASE ${range(n).map((i) => `WHEN g = ${i} THEN CASE WHEN ${bit(`c.${col}`, i)} THEN 1 ELSE 0 END`).join(' ')} END AS x FROM customers c, generate_series(0, ${n - 1}) g WHERE c.id = 1`,
    read: (rows) => ids(rows, 'g'),
  }),
  'an error chosen per row by AND/OR (select list)': (col, n) => ({
    sql: `SELECT g, ${range(n).map((i) => `(g = ${i} AND 1 / CASE WHEN ${bit(`c.${col}`, i)} THEN 1 ELSE 0 END = 1)`).join(' OR ')} AS x FROM customers c, generate_series(0, ${n - 1}) g WHERE c.id = 1`,
    read: (rows) => ids(rows, 'g'),
  }),
  'work chosen per row by CASE (select list)': (col, n) => ({
    sql: `SELECT g, CASE ${range(n).map((i) => `WHEN g = ${i} THEN CASE WHEN ${bit(`c.${col}`, i)} THEN (SELECT count(*) FROM generate_series(1, 10)) END`).join(' ')} END AS x FROM customers c, generate_series(0, ${n - 1}) g WHERE c.id = 1`,
    read: () => new Set<number>(),
  }),
};

/** Forms with one joined table per bit: PostgreSQL plans a few dozen joins, not a hundred. */
const PER_JOIN = new Set(['LEFT JOIN chain, the joined columns', 'LEFT JOIN chain, IS NULL OR <test> in WHERE']);

/** Runs one attack: refused, or the bits it read (none, when what came back is masked). */
async function run(c: pg.Client, attack: Attack, col: string, n: number): Promise<{ refused: boolean; learned?: string }> {
  const { sql, read } = attack(col, n);
  const r = await c.query(sql).then((x) => x.rows as Record<string, unknown>[], (e: Error & { code?: string }) => e);
  if (r instanceof Error) {
    expect({ code: r.code, rule: r.message.includes('"masking-bypass"') }, r.message).toEqual({ code: '42501', rule: true });
    return { refused: true };
  }
  const bits = read(r);
  return bits.size === 0 ? { refused: true } : { refused: false, learned: decode(bits, n) };
}

describe('a predicate cannot let another row source choose which masked test a row answers (attack round 8)', () => {
  it('no form spells a masked value: refused before anything runs, or masked', async () => {
    await asUser(h, h.users.bob, 'shop-pc', async (c) => {
      const secrets = { email: 'alice@example.com', card: '4111 1111 1111 1111' };
      // Orders 1..100 are the joined rows the row-per-bit forms need: 98 bits, 14 characters.
      const got: { name: string; col: string; refused: boolean; learned?: string }[] = [];
      for (const [col, secret] of Object.entries(secrets)) {
        for (const [name, attack] of Object.entries(ATTACKS)) {
          const n = 7 * Math.min(secret.length, PER_JOIN.has(name) ? 2 : 14);
          got.push({ name, col, ...await run(c, attack, col, n) });
        }
      }
      // One comparison of every form: where it fails, it shows what each form spelt.
      expect(got).toEqual(got.map(({ name, col }) => ({ name, col, refused: true })));
      // The session goes on.
      expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 2 }]);
    });
  });

  it('semi-joins, lookups and tests of a row’s own values still run', async () => {
    await asUser(h, h.users.bob, 'shop-pc', async (c) => {
      const q = async (sql: string): Promise<unknown[]> => (await c.query<Record<string, unknown>>(sql)).rows;
      // Customer 1 (alice@…) has the even orders.
      expect(await q("SELECT count(*)::int AS n FROM orders o WHERE o.customer IN (SELECT id FROM customers WHERE email LIKE 'a%')")).toEqual([{ n: 50 }]);
      expect(await q("SELECT count(*)::int AS n FROM orders o WHERE exists(SELECT 1 FROM customers c WHERE c.id = o.customer AND c.email LIKE 'a%')")).toEqual([{ n: 50 }]);
      expect(await q("SELECT count(*)::int AS n FROM orders o WHERE o.customer = (SELECT id FROM customers WHERE email = 'alice@example.com')")).toEqual([{ n: 50 }]);
      expect(await q("SELECT count(*)::int AS n FROM orders o JOIN customers c ON c.id = o.customer WHERE c.email LIKE 'a%' AND o.total > 10")).toEqual([{ n: 45 }]);
      // Tests of a row's own values, chosen by its own plain columns: one bit per row.
      expect(await q(`SELECT id FROM customers WHERE CASE WHEN id = 1 THEN ${bit('email', 0)} ELSE ${bit('email', 1)} END ORDER BY id`)).toEqual([{ id: 1 }, { id: 2 }]);
      expect(await q(`SELECT sum(power(2, id))::int AS s FROM customers WHERE ${bit('email', 0)}`)).toEqual([{ s: 2 }]);
      // A CASE of one source choosing values of another in the select list: masked, not refused;
      // also where another source chooses a plain masked column, or masked tests choose work
      // over plain values.
      expect(await q("SELECT sum(CASE WHEN c.email LIKE 'a%' AND o.id > 0 THEN o.total END) AS s FROM customers c JOIN orders o ON o.customer = c.id")).toEqual([{ s: null }]);
      expect(await q("SELECT CASE WHEN o.id = 1 THEN c.email END AS e, coalesce(NULL, c.card) AS k FROM orders o JOIN customers c ON c.id = o.customer WHERE o.id = 1")).toEqual([{ e: '********', k: '********' }]);
    });
  });

  it('anti-joins and an OR of a semi-join with another table’s test run; their near variants that choose a test are refused', async () => {
    await asUser(h, h.users.bob, 'shop-pc', async (c) => {
      const q = async (sql: string): Promise<unknown[]> => (await c.query<Record<string, unknown>>(sql)).rows;
      // Customer 1 (alice@…) has the even orders; order i totals i.
      for (const sql of [
        "SELECT count(*)::int AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer AND c.email LIKE 'a%')",
        "SELECT count(*)::int AS n FROM orders o WHERE o.customer NOT IN (SELECT id FROM customers WHERE email LIKE 'a%')",
        "SELECT count(*)::int AS n FROM orders o WHERE o.customer <> ALL (SELECT id FROM customers WHERE email LIKE 'a%')",
      ]) expect(await q(sql), sql).toEqual([{ n: 50 }]);
      for (const sql of [
        "SELECT count(*)::int AS n FROM orders o WHERE o.total > 90 OR EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer AND c.email LIKE 'a%')",
        "SELECT count(*)::int AS n FROM orders o WHERE o.total > 90 OR o.customer IN (SELECT id FROM customers WHERE email LIKE 'a%')",
        "SELECT count(*)::int AS n FROM orders o WHERE o.total <= 90 AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer AND c.email LIKE 'a%') OR o.total > 90",
      ]) expect(await q(sql), sql).toEqual([{ n: 55 }]);
      // Near variants: another source chooses which test the masked row answers, inside the
      // semi-join (the mixing rule at its own level), through a CASE around it, or through two
      // semi-joins over the table (two FROM items: one row path per table, masking/test-paths.ts).
      const refused = async (sql: string): Promise<void> => {
        const e = await c.query(sql).then(() => undefined, (x: Error & { code?: string }) => x);
        expect({ sql, code: e?.code, rule: e?.message.includes('"masking-bypass"') }, e?.message).toEqual({ sql, code: '42501', rule: true });
      };
      await refused(`SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND CASE WHEN o.id = 1 THEN ${bit('c.email', 0)} ELSE ${bit('c.email', 1)} END)`);
      await refused(`SELECT o.id FROM orders o WHERE o.total > 90 OR EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND (o.id = 1 AND ${bit('c.email', 0)} OR o.id = 2 AND ${bit('c.email', 1)}))`);
      await refused(`SELECT o.id FROM orders o WHERE o.total > 90 OR CASE WHEN o.id = 1 THEN EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND ${bit('c.email', 0)}) END`);
      await refused(`SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND o.id = 1 AND NOT ${bit('c.email', 0)}) AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = 1 AND o.id = 2 AND NOT ${bit('c.email', 1)})`);
      await refused(`SELECT o.id FROM orders o WHERE o.id = 1 AND o.customer IN (SELECT id FROM customers WHERE ${bit('email', 0)}) OR o.id = 2 AND o.customer IN (SELECT id FROM customers WHERE ${bit('email', 1)})`);
      // A value computed from a masked column that another table's test chooses stays refused:
      // the chosen value can feed work that fails (per row, a different character divided by).
      await refused("SELECT CASE WHEN o.total > 50 THEN lower(c.email) END AS e FROM orders o JOIN customers c ON c.id = o.customer");
      await refused(`SELECT g, 1 / (ascii(CASE ${range(2).map((i) => `WHEN g = ${i} THEN substr(c.email, ${i + 1}, 1)`).join(' ')} END) & 1) AS x FROM customers c, generate_series(0, 1) g WHERE c.id = 1`);
    });
  });
});
