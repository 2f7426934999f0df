import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, startHarness, startUpstream, type GatewayHarness, type TestUser, type Upstream } from './harness.conformance.js';
import { resourcePolicySchema } from './policy.js';
import { DEMO_POLICY } from '../demo/gateway-tour.js';
import { failure } from '../../test/helpers/gateway.js';

/**
 * Attack round 6 §3, over-blocking: legitimate work that masking refused or masked although no
 * masked value flows into it — and, beside each relief, the nearest decoders (a masked value
 * choosing what comes back in the clear) still masked or refused. Real PostgreSQL, real psql.
 */

const run = promisify(execFile);
let upstream: Upstream;
let h: GatewayHarness;

/** `scoped`: the demo's shape, `name` limited to customers; `all`: a rule `name` without a table. */
const SCOPED = 'shop-scoped';
const ALL = 'shop-all';

beforeAll(async () => {
  upstream = await startUpstream();
  h = await startHarness(upstream);
  const a = await upstream.admin();
  try {
    await a.query(`CREATE TABLE products (id int PRIMARY KEY, name text, price int);
      INSERT INTO products VALUES (1, 'Widget', 10), (2, 'Gadget', 20);
      CREATE VIEW cust_v AS SELECT id, name AS who FROM customers;
      -- A user table with a system view's name: the search path may read it for pg_settings.
      CREATE TABLE public.pg_timezone_names (name text, abbrev text);
      INSERT INTO public.pg_timezone_names SELECT name, 'x' FROM customers;
      CREATE FUNCTION first_email(anyelement) RETURNS text LANGUAGE sql AS $$ SELECT email FROM customers ORDER BY id LIMIT 1 $$;
      CREATE FUNCTION nothing(text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;
      CREATE FUNCTION dyn(text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('SELECT %I FROM orders LIMIT 1', $1); RETURN 1; END $$`);
  } finally {
    await a.end();
  }
  const rules = (name: Record<string, string>) => [name, { name: 'email', mode: 'partial' }, { name: 'phone', mode: 'partial' }, { name: 'card', mode: 'full' }];
  for (const [resource, nameRule] of [[SCOPED, { name: 'name', table: 'customers', mode: 'hash' }], [ALL, { name: 'name', mode: 'hash' }]] as const) {
    await h.gateway.resources.create({
      name: resource, host: '127.0.0.1', port: upstream.port, database: 'shop', user: 'app_scram',
      credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' },
      // DDL allowed, so that masking alone decides the copies below.
      policy: { guardrails: { rules: { ddl: 'allow' } }, masking: { columns: rules(nameRule) } },
    });
    const sys = { userId: h.admin.id, userName: 'admin', role: 'admin' };
    await h.gateway.access.grant(sys, { subjectKind: 'user', subject: h.users.bob.id, resource, mode: 'read' });
    await h.gateway.access.grant(sys, { subjectKind: 'user', subject: h.users.alice.id, resource, mode: 'write' });
  }
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

type Row = Record<string, unknown>;
const hashed = (v: unknown): boolean => typeof v === 'string' && /^h_[0-9a-f]{16}$/.test(v);
/** Masked as a whole: NULL (numbers), the full token, a hash, or a JSON string of one. */
const whole = (v: unknown): boolean => v === null || (typeof v === 'string' && /^("?)(\*+|h_[0-9a-f]{16})\1$/.test(v));

async function rows(user: TestUser, resource: string, sql: string): Promise<Row[]> {
  return asUser(h, user, resource, async (c) => (await c.query(sql)).rows as Row[]);
}

async function refused(c: pg.Client, sql: string): Promise<void> {
  const e = await failure(c.query(sql));
  expect({ sql, code: e?.code, bypass: e?.message.includes('"masking-bypass"') }, e?.message).toEqual({ sql, code: '42501', bypass: true });
}

describe('column rules name user tables: a rule with a table, and the system catalogs (round 6 §3)', () => {
  it('a rule limited to customers leaves products.name in the clear, and still masks every way to the customers\' names', async () => {
    expect(await rows(h.users.bob, SCOPED, 'SELECT id, name FROM products ORDER BY id')).toEqual([{ id: 1, name: 'Widget' }, { id: 2, name: 'Gadget' }]);
    expect(await rows(h.users.bob, SCOPED, 'SELECT p.name, count(o.id)::int AS n FROM products p JOIN orders o ON o.customer = p.id GROUP BY p.name ORDER BY 1')).toEqual([{ name: 'Gadget', n: 50 }, { name: 'Widget', n: 50 }]);
    await asUser(h, h.users.bob, SCOPED, async (c) => {
      const one = async (sql: string): Promise<unknown> => ((await c.query(sql)).rows as { v: unknown }[])[0]?.v;
      for (const sql of ['SELECT name AS v FROM customers ORDER BY id', 'SELECT n AS v FROM (SELECT name AS n FROM customers) s', 'SELECT who AS v FROM cust_v ORDER BY id', 'WITH w AS (SELECT * FROM customers) SELECT name AS v FROM w']) {
        expect(hashed(await one(sql)), sql).toBe(true);
      }
      for (const sql of [
        'SELECT reverse(name) AS v FROM customers',
        'SELECT coalesce(c.name, p.name) AS v FROM customers c JOIN products p ON p.id = c.id',
        'SELECT row_to_json(c)::text AS v FROM customers c',
        'SELECT json_agg(x)::text AS v FROM (SELECT * FROM customers) x',
        // A product name chosen by a test of a customer's name: one bit per column and row.
        'SELECT CASE WHEN ascii(c.name) & 1 > 0 THEN p.name END AS v FROM customers c JOIN products p ON p.id = c.id ORDER BY c.id',
      ]) {
        expect(whole(await one(sql)), `${sql} → ${String(await one(sql))}`).toBe(true);
      }
      // The customers' names meeting the products' rows: the mixing rule as before.
      await refused(c, 'SELECT p.name FROM products p, customers c WHERE ascii(c.name) = ascii(p.name)');
      await refused(c, 'SELECT p.id FROM products p WHERE p.name = (SELECT substr(name, 1, 1) FROM customers WHERE id = 1)');
    });
  });

  it('writes of the customers\' names into columns the scoped rule does not name are refused', async () => {
    await asUser(h, h.users.alice, SCOPED, async (c) => {
      await refused(c, 'UPDATE products SET name = (SELECT name FROM customers WHERE id = 1) WHERE id = 1');
      await refused(c, 'INSERT INTO products (id, name, price) SELECT 100 + id, name, 0 FROM customers');
      // `CREATE TABLE … AS SELECT *` no longer lands in columns the same rules name.
      await refused(c, 'CREATE TABLE cust_copy AS SELECT * FROM customers');
      await c.query('CREATE TEMP TABLE prod_copy AS SELECT * FROM products');
      expect((await c.query('SELECT name FROM prod_copy ORDER BY id')).rows).toEqual([{ name: 'Widget' }, { name: 'Gadget' }]);
      expect((await c.query('SELECT count(*)::int AS n, min(name) AS m FROM products')).rows).toEqual([{ n: 2, m: 'Gadget' }]);
    });
  });

  it('a rule without a table leaves pg_settings and psql\'s \\dt names alone, and masks the user tables\' columns', async () => {
    expect(await rows(h.users.bob, ALL, "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = 'work_mem'")).toEqual([{ name: 'work_mem', setting: expect.any(String) as unknown }]);
    expect(await rows(h.users.bob, ALL, "SELECT c.relname AS \"Name\" FROM pg_class c WHERE c.relname = 'orders'")).toEqual([{ Name: 'orders' }]);
    const url = `host=127.0.0.1 port=${h.gateway.port} user=bob dbname=${ALL}`;
    const r = await run('psql', [url, '-X', '-A', '-c', '\\dt', '-c', '\\d products'], { env: { ...process.env, PGPASSWORD: h.users.bob.token } });
    expect(r.stdout).toContain('public|customers|table|');
    expect(r.stdout).toContain('public|orders|table|');
    expect(r.stdout).toMatch(/^name\|text\|/m);
    await asUser(h, h.users.bob, ALL, async (c) => {
      const one = async (sql: string): Promise<unknown> => ((await c.query(sql)).rows as { v: unknown }[])[0]?.v;
      expect(hashed(await one('SELECT name AS v FROM customers'))).toBe(true);
      expect(hashed(await one('SELECT name AS v FROM products'))).toBe(true);
      // A user table with a system view's name is a user table (the search path can pick it).
      expect(hashed(await one('SELECT name AS v FROM public.pg_timezone_names'))).toBe(true);
      expect(hashed(await one("SELECT name AS v FROM pg_catalog.pg_timezone_names WHERE name = 'UTC'"))).toBe(true);
      expect(whole(await one("SELECT coalesce(c.name, s.name) AS v FROM pg_catalog.pg_settings s, customers c WHERE s.name = 'work_mem'"))).toBe(true);
      expect(whole(await one("SELECT CASE WHEN ascii(c.name) & 1 > 0 THEN s.name END AS v FROM customers c, pg_catalog.pg_settings s WHERE s.name = 'work_mem' AND c.id = 1"))).toBe(true);
      await refused(c, 'SELECT s.name FROM pg_catalog.pg_settings s, customers c WHERE c.id = 1 AND ascii(c.name) = ascii(s.name)');
      // Catalog statistics carry user data: still refused or masked.
      const stats = await failure(c.query("SELECT most_common_vals::text AS v FROM pg_stats WHERE attname = 'name'"));
      if (stats === null) {
        for (const row of (await c.query("SELECT most_common_vals::text AS v FROM pg_stats WHERE attname = 'name'")).rows as Row[]) expect(whole(row.v)).toBe(true);
      } else expect(stats.message).toContain('"masking-bypass"');
    });
    // A temporary table that would shadow pg_settings is no copy target for masked rows.
    await asUser(h, h.users.alice, ALL, (c) => refused(c, 'CREATE TEMP TABLE pg_settings AS SELECT * FROM customers'));
  });

  it('the policy accepts a table on a masking rule, not on a `none` rule', () => {
    expect(resourcePolicySchema.safeParse({ masking: { columns: [{ name: 'name', table: 'customers', mode: 'hash' }] } }).success).toBe(true);
    expect(resourcePolicySchema.safeParse({ masking: { columns: [{ name: 'memo', table: 'notes', mode: 'none' }] } }).success).toBe(false);
    // The demo's policy (docs/gateway.md, docs/demo.md) keeps its rule to the customers' names.
    expect(resourcePolicySchema.parse(DEMO_POLICY).masking.columns[0]).toEqual({ name: 'name', table: 'customers', mode: 'hash' });
  });
});

describe('counts of masked columns (round 6 §3)', () => {
  it('count(DISTINCT email) and count(email) are numbers; counts of derived or chosen values stay masked', async () => {
    expect(await rows(h.users.bob, ALL, 'SELECT count(DISTINCT email)::int AS n, count(email)::int AS m, count(DISTINCT c.phone)::int AS p FROM customers c')).toEqual([{ n: 2, m: 2, p: 2 }]);
    expect(await rows(h.users.bob, ALL, 'SELECT o.customer, count(DISTINCT c.email)::int AS n FROM orders o JOIN customers c ON c.id = o.customer GROUP BY o.customer ORDER BY 1')).toEqual([{ customer: 1, n: 1 }, { customer: 2, n: 1 }]);
    expect(await rows(h.users.bob, ALL, 'SELECT id FROM orders ORDER BY id LIMIT (SELECT count(DISTINCT email) FROM customers)')).toEqual([{ id: 1 }, { id: 2 }]);
    for (const sql of [
      'SELECT count(DISTINCT substr(email, 1, 1)) AS v FROM customers',
      'SELECT count(DISTINCT email::varchar(1)) AS v FROM customers',
      'SELECT count(DISTINCT lower(email)) AS v FROM customers',
      "SELECT count(DISTINCT email) FILTER (WHERE email LIKE 'a%') AS v FROM customers",
      "SELECT count(email) FILTER (WHERE phone LIKE '+1%') AS v FROM customers",
      'SELECT count(DISTINCT x.e) AS v FROM (SELECT substr(email, 1, 1) AS e FROM customers) x',
      'SELECT count(nullif(ascii(email) & 1, 0)) AS v FROM customers',
      // One column per bit of one row: the round-6 #1 decoder through count(DISTINCT CASE …).
      'SELECT id, count(DISTINCT CASE WHEN ascii(email) & 1 > 0 THEN 1 END) AS v FROM customers GROUP BY id ORDER BY id',
      'SELECT id, CASE WHEN ascii(email) & 2 > 0 THEN count(DISTINCT email) END AS v FROM customers GROUP BY id ORDER BY id',
    ]) {
      const got = await rows(h.users.bob, ALL, sql);
      expect(got.length, sql).toBeGreaterThan(0);
      for (const r of got) expect(r.v, sql).toBeNull();
    }
  });
});

describe('whole rows of derived tables over unmasked tables (round 6 §3)', () => {
  it('json_agg, row_to_json and to_jsonb of a derived table or CTE of orders stay JSON objects', async () => {
    const [j] = await rows(h.users.bob, ALL, 'SELECT json_agg(o) AS j FROM (SELECT * FROM orders ORDER BY id LIMIT 2) o');
    expect(j.j).toMatchObject([{ id: 1, customer: 2 }, { id: 2, customer: 1 }]);
    const [r] = await rows(h.users.bob, ALL, 'SELECT row_to_json(o) AS r, to_jsonb(o) AS b FROM (SELECT * FROM orders WHERE id = 1) o');
    expect(r).toMatchObject({ r: { id: 1, customer: 2 }, b: { id: 1, customer: 2 } });
    const [w] = await rows(h.users.bob, ALL, 'WITH x AS (SELECT * FROM orders WHERE id = 3) SELECT to_jsonb(x) AS b FROM x');
    expect(w.b).toMatchObject({ id: 3 });
  });

  it('a derived table carrying a masked column, or a call on its row, is still masked', async () => {
    for (const sql of [
      'SELECT json_agg(x)::text AS v FROM (SELECT * FROM customers) x',
      'SELECT row_to_json(x)::text AS v FROM (SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer LIMIT 1) x',
      'SELECT to_jsonb(x)::text AS v FROM (SELECT o.*, c.phone FROM orders o JOIN customers c ON c.id = o.customer LIMIT 1) x',
      // `x.first_email` is first_email(x): a function the gateway cannot see into.
      'SELECT x.first_email AS v FROM (SELECT * FROM orders LIMIT 1) x',
    ]) {
      const got = await rows(h.users.bob, ALL, sql).catch((e: Error) => [{ v: e.message }]);
      for (const r of got) expect(whole(r.v) || /"(unlisted-function|masking-bypass)"/.test(String(r.v)), `${sql} → ${String(r.v)}`).toBe(true);
    }
  });
});

describe('void results (round 6 §3)', () => {
  it('a void result comes back as it is (empty), also computed from a masked column', async () => {
    expect(await rows(h.users.alice, ALL, 'SELECT pg_sleep(0) AS s')).toEqual([{ s: '' }]);
    expect(await rows(h.users.alice, ALL, 'SELECT nothing(email) AS s FROM customers ORDER BY id')).toEqual([{ s: '' }, { s: '' }]);
    // The same function's neighbours that return text stay masked.
    const [f] = await rows(h.users.alice, ALL, 'SELECT first_email(1) AS v, nothing(email)::text AS t FROM customers LIMIT 1');
    expect(whole(f.v)).toBe(true);
    expect(whole(f.t)).toBe(true);
  });
});

describe('errors that only name what the client wrote (round 6 §3)', () => {
  it('an undefined column, relation or FROM entry and a reused PREPARE name are readable', async () => {
    await asUser(h, h.users.bob, ALL, async (c) => {
      expect((await failure(c.query('SELECT status FROM orders')))?.message).toBe('column "status" does not exist');
      expect((await failure(c.query('SELECT o.status FROM orders o')))?.message).toBe('column o.status does not exist');
      expect((await failure(c.query('SELECT nosuch.id FROM orders')))?.message).toBe('missing FROM-clause entry for table "nosuch"');
      expect((await failure(c.query('SELECT id FROM nosuch_table')))?.message).toBe('relation "nosuch_table" does not exist');
      await c.query('PREPARE u1 AS SELECT 1');
      expect((await failure(c.query('PREPARE u1 AS SELECT 2')))?.message).toBe('prepared statement "u1" already exists');
    });
  });

  it('the same SQLSTATEs carrying a row\'s value, and value errors, stay withheld', async () => {
    const leaks = /alice|bob|example/i;
    for (const [user, sql] of [
      // Lookups that run on values at execution: no position in the statement.
      [h.users.alice, "SELECT has_column_privilege('customers', split_part(email, '@', 1), 'SELECT') FROM customers /* alice bob */"],
      [h.users.alice, "SELECT split_part(email, '@', 1)::regclass FROM customers /* alice bob */"],
      [h.users.alice, "SELECT pg_get_serial_sequence('customers', split_part(email, '@', 1)) FROM customers /* alice bob */"],
      // A statement run inside a function: the context says so.
      [h.users.alice, "SELECT dyn(split_part(email, '@', 1)) FROM customers /* alice bob */"],
      [h.users.bob, 'SELECT email::int FROM customers'],
    ] as const) {
      const e = await asUser(h, user, ALL, (c) => failure(c.query(sql)));
      expect(e, sql).not.toBeNull();
      expect(e?.message ?? '', sql).not.toMatch(leaks);
      expect(e?.message.includes('[withheld by tightloop') === true || e?.message.includes('blocked by guardrail') === true, `${sql} → ${e?.message ?? ''}`).toBe(true);
    }
  });
});
