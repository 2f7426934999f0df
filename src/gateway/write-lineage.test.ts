import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Guardrails, loadParser } from './guardrails/index.js';
import { decodeErrorFields } from './wire/decode.js';
import { queryMessage } from './wire/encode.js';
import { rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Write-grant laundering (attack round 2, #6): a masked value written into a column that is not
 * masked as strictly is read back unmasked — in RETURNING, by a later SELECT of the same
 * transaction, or by anyone after commit. Under masking such writes are refused
 * (`masking-bypass`), and RETURNING follows the values written. Real PostgreSQL, real psql.
 */

const run = promisify(execFile);
let upstream: Upstream;
let h: GatewayHarness;

const NAMES = ['Alice', 'Bob'];
const EMAILS = ['alice@example.com', 'bob@example.org'];

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await shopResource(h, upstream, 'shop-w', {
      guardrails: { rules: { ddl: 'allow', 'modifying-cte': 'allow' } },
      masking: { columns: [{ name: 'name', mode: 'hash' }, { name: 'email', mode: 'partial' }, { name: 'card', mode: 'partial' }, { name: 'vault', mode: 'full' }] },
    });
  await upstreamSql(upstream, `CREATE TABLE loyalty (customer_id int PRIMARY KEY, tier text, vault text);
      INSERT INTO loyalty VALUES (1, 'gold', NULL), (2, 'silver', NULL);
      CREATE TABLE contacts (id serial PRIMARY KEY, email text, label text)`);
  await grantAccess(h, h.users.alice, 'shop-w', 'write');
});
afterAll(() => stopGatewayTest(h, upstream));

async function alice<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.url(h.users.alice, 'shop-w') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const LAUNDERING = [
  // The attack's statement, and its cross-statement twin.
  'UPDATE loyalty SET tier = (SELECT name FROM customers WHERE id = 1) WHERE customer_id = (SELECT min(customer_id) FROM loyalty) RETURNING tier',
  'UPDATE loyalty SET tier = c.name FROM customers c WHERE c.id = loyalty.customer_id',
  'UPDATE loyalty l SET (tier, vault) = (SELECT email, name FROM customers c WHERE c.id = l.customer_id) WHERE customer_id = 1',
  "UPDATE customers SET email = translate(email, 'abcdefghijklmnopqrstuvwxyz', '!\"#$%&()*+,-/:;<=>?[]^_{|}') WHERE id = 1",
  'UPDATE customers SET email = name WHERE id = 1',
  'INSERT INTO contacts (label) SELECT email FROM customers',
  'INSERT INTO contacts (label) VALUES ((SELECT reverse(card) FROM customers LIMIT 1))',
  'INSERT INTO contacts SELECT id, email, name FROM customers',
  'INSERT INTO contacts (id, label) SELECT id, row_to_json(c)::text FROM customers c',
  "INSERT INTO loyalty (customer_id, tier) SELECT id, 'x' || email FROM customers ON CONFLICT (customer_id) DO UPDATE SET tier = excluded.tier",
  'INSERT INTO loyalty (customer_id, tier) VALUES (1, NULL) ON CONFLICT (customer_id) DO UPDATE SET tier = (SELECT name FROM customers WHERE id = 1)',
  'MERGE INTO loyalty l USING customers c ON l.customer_id = c.id WHEN MATCHED THEN UPDATE SET tier = c.name',
  'MERGE INTO loyalty l USING customers c ON l.customer_id = c.id + 10 WHEN NOT MATCHED THEN INSERT (customer_id, tier) VALUES (c.id + 10, c.email)',
  'WITH src AS (SELECT name AS n FROM customers) UPDATE loyalty SET tier = src.n FROM src WHERE customer_id = 1',
  'WITH u AS (UPDATE loyalty SET tier = (SELECT email FROM customers LIMIT 1) WHERE customer_id = 1 RETURNING customer_id) SELECT * FROM u',
  'CREATE TABLE leak1 AS SELECT reverse(email) AS e FROM customers',
  'SELECT upper(name) AS n INTO leak2 FROM customers',
  'CREATE VIEW leak3 AS SELECT lower(name) AS n FROM customers',
  'PREPARE w AS UPDATE loyalty SET tier = (SELECT name FROM customers WHERE id = 1) WHERE customer_id = 1',
  'EXPLAIN ANALYZE UPDATE loyalty SET tier = (SELECT name FROM customers WHERE id = 1) WHERE customer_id = 1',
];

describe('writes of masked values under masking (attack round 2, #6)', () => {
  it.each(LAUNDERING)('%s is refused (masking-bypass), in the simple and the extended protocol, and changes nothing', async (sql) => {
    await alice(async (c) => {
      for (const q of [sql, { text: sql, name: 'w1' }]) {
        await c.query('BEGIN');
        const err = await c.query(q).then(() => null, (e: Error & { code?: string }) => e);
        expect(err?.code, sql).toBe('42501');
        expect(err?.message, sql).toMatch(/^blocked by guardrail "masking-bypass": a value computed from .* would be written into/);
        await c.query('ROLLBACK');
      }
      const rows = (await c.query('SELECT tier FROM loyalty ORDER BY customer_id')).rows as { tier: string }[];
      expect(rows.map((r) => r.tier)).toEqual(['gold', 'silver']);
    });
  });

  it('a dictionary decoder that writes its partner values is refused (attack round 4 #1)', async () => {
    await alice(async (c) => {
      for (const sql of [
        "UPDATE loyalty SET tier = (SELECT string_agg(chr(g), '' ORDER BY i) FROM customers c, generate_series(1, 40) i, generate_series(32, 126) g WHERE c.id = 1 AND ascii(substr(c.name, i, 1)) = g) WHERE customer_id = 1 RETURNING tier",
        'UPDATE loyalty SET tier = chr(g) FROM customers c, generate_series(32, 126) g WHERE c.id = loyalty.customer_id AND ascii(c.name) = g',
        'DELETE FROM loyalty USING customers c, generate_series(32, 126) g WHERE c.id = loyalty.customer_id AND ascii(c.name) = g AND g > 70',
      ]) {
        await c.query('BEGIN');
        const err = await c.query(sql).then(() => null, (e: Error & { code?: string }) => e);
        expect({ sql, code: err?.code, rule: err?.message.includes('"masking-bypass"') }).toEqual({ sql, code: '42501', rule: true });
        await c.query('ROLLBACK');
      }
      const rows = (await c.query('SELECT tier FROM loyalty ORDER BY customer_id')).rows as { tier: string }[];
      expect(rows.map((r) => r.tier)).toEqual(['gold', 'silver']);
    });
  });

  it('the attack as psql runs it: nothing of the name comes back, and the session carries on', async () => {
    const url = `host=127.0.0.1 port=${h.gateway.port} user=alice dbname=shop-w`;
    const r = await run('psql', [url, '-X', '-A', '-t', '-c', 'BEGIN', '-c',
      'UPDATE loyalty SET tier=(SELECT name FROM customers WHERE id=1) WHERE customer_id=(SELECT min(customer_id) FROM loyalty) RETURNING tier',
      '-c', 'ROLLBACK', '-c', 'BEGIN', '-c', 'UPDATE loyalty SET tier = c.name FROM customers c WHERE c.id = loyalty.customer_id',
      '-c', 'ROLLBACK', '-c', 'SELECT tier FROM loyalty ORDER BY 1'], { env: { ...process.env, PGPASSWORD: h.users.alice.token } }).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stderr).toMatch(/ERROR:\s+blocked by guardrail "masking-bypass": a value computed from masked column "name" would be written into "loyalty"."tier", which is not masked/);
    for (const v of NAMES) expect(r.stdout + r.stderr).not.toContain(v);
    expect(r.stdout.trim().split('\n').filter((l) => !/^(BEGIN|ROLLBACK)$/.test(l))).toEqual(['gold', 'silver']);
  });

  it('writes that keep masking run: constants, parameters, unmasked columns, copies into columns masked as strictly', async () => {
    await alice(async (c) => {
      await c.query('BEGIN');
      expect((await c.query("UPDATE loyalty SET tier = 'platinum' WHERE customer_id = 1 RETURNING tier")).rows).toEqual([{ tier: 'platinum' }]);
      expect((await c.query({ text: 'UPDATE loyalty SET tier = $1 WHERE customer_id = 2 RETURNING tier', values: ['bronze'] })).rows).toEqual([{ tier: 'bronze' }]);
      expect((await c.query("UPDATE loyalty SET tier = tier || '+' WHERE customer_id = 2 RETURNING tier")).rows).toEqual([{ tier: 'bronze+' }]);
      // Into a column masked in full: allowed, and RETURNING reads it masked.
      const v = (await c.query('UPDATE loyalty l SET vault = c.name FROM customers c WHERE c.id = l.customer_id AND l.customer_id = 1 RETURNING vault')).rows as { vault: string }[];
      expect(v[0].vault).toBe('********');
      // A copy into a column of the same rule, and the column itself.
      const e = (await c.query('INSERT INTO contacts (email) SELECT email FROM customers ORDER BY id RETURNING email')).rows as { email: string }[];
      expect(e.length).toBe(2);
      for (const [i, row] of e.entries()) expect(row.email).not.toBe(EMAILS[i]);
      await c.query('UPDATE customers SET email = email WHERE id = 1');
      // A sequence default and nextval() come from no row.
      expect((await c.query("INSERT INTO orders (customer, total) VALUES (1, 5), (nextval('orders_id_seq')::int, 6) RETURNING total")).rows.length).toBe(2);
      await c.query('CREATE TABLE copy1 AS SELECT * FROM customers');
      await c.query('CREATE TABLE copy2 AS SELECT id, email FROM customers');
      await c.query('ROLLBACK');
    });
  });

  it('RETURNING follows the values written (lineage of the target column)', async () => {
    await loadParser();
    const g = new Guardrails();
    const cols = (sql: string): string[] => (g.analyze(sql).lineage?.columns ?? []).flatMap((c) => c.lin.cols);
    expect(cols('UPDATE loyalty SET tier = (SELECT name FROM customers) RETURNING tier')).toEqual(expect.arrayContaining(['tier', 'name']));
    expect(cols('UPDATE loyalty SET tier = c.email FROM customers c RETURNING loyalty.tier')).toEqual(expect.arrayContaining(['tier', 'email']));
    expect(cols('INSERT INTO t (a) SELECT card FROM customers RETURNING a')).toEqual(expect.arrayContaining(['a', 'card']));
    expect(cols('INSERT INTO t SELECT card FROM customers RETURNING a')).toEqual(expect.arrayContaining(['a', 'card']));
    expect(cols('INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = (SELECT ssn FROM customers) RETURNING b')).toEqual(expect.arrayContaining(['b', 'ssn']));
    expect(cols('MERGE INTO t USING customers s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.email RETURNING a')).toEqual(expect.arrayContaining(['a', 'email']));
    expect(cols('WITH src AS (SELECT name AS n FROM customers) UPDATE t SET a = 1 FROM src RETURNING src.n')).toEqual(['name']);
    expect(g.analyze('UPDATE loyalty SET tier = (SELECT name FROM customers) RETURNING tier').lineage?.columns[0].lin.direct).toBe(false);
  });

  it('a failed write names its constraint, table and column (catalog names only); values stay withheld', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop-w');
    const error = async (sql: string): Promise<Map<string, string>> => {
      raw.send(queryMessage(sql));
      const err = (await raw.until('Z')).find((m) => m.type === 'E');
      return decodeErrorFields(err?.body ?? Buffer.alloc(0));
    };
    try {
      const dup = await error("INSERT INTO loyalty VALUES (1, 'x', NULL)");
      expect(dup.get('C')).toBe('23505');
      expect(dup.get('M')).toBe('duplicate key value violates unique constraint "loyalty_pkey"');
      expect(dup.get('n')).toBe('loyalty_pkey');
      expect(dup.get('t')).toBe('loyalty');
      expect(dup.get('D')).not.toContain('(1)');
      const nul = await error('INSERT INTO loyalty (customer_id) VALUES (NULL)');
      expect(nul.get('M')).toBe('null value in column "customer_id" of relation "loyalty" violates not-null constraint');
      const hint = await error('SELECT l.tierx FROM loyalty l');
      expect(hint.get('C')).toBe('42703');
      expect(hint.get('H')).toBe('Perhaps you meant to reference the column "l.tier".');
      // A value the server prints stays withheld, also in class 23 and 42703.
      const v = await error('SELECT name::regoper FROM customers WHERE id = 1');
      expect(v.get('M')).toMatch(/^\[withheld by tightloop/);
    } finally {
      raw.close();
    }
  });
});
