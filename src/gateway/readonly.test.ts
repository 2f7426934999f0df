import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, type GatewayHarness, type TestUser, type Upstream } from './harness.conformance.js';
import { decodeErrorFields } from './wire/decode.js';
import { queryMessage } from './wire/encode.js';
import { failure, grantAccess, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Issue 15, classes 7–9 through the gateway against real PostgreSQL: a read grant cannot get
 * back to read-write or call functions with side effects, SQL given as text never runs, and a
 * cached decision never stands in for a statement with other options.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await grantAccess(h, h.users.bob, 'shop', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

async function client(user: TestUser): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(user, 'shop') });
  await c.connect();
  return c;
}

async function sideEffects(): Promise<{ seq: string; objects: number }> {
  const a = await upstream.admin();
  try {
    const seq = (await a.query<{ v: string; is_called: boolean }>('SELECT last_value::text AS v, is_called FROM orders_id_seq')).rows[0];
    const objects = (await a.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_largeobject_metadata')).rows[0];
    return { seq: `${seq.v}/${String(seq.is_called)}`, objects: objects.n };
  } finally {
    await a.end();
  }
}

describe('a read grant stays read-only (class 7)', () => {
  it('the reported transaction is refused and changes nothing; the connection stays usable', async () => {
    const before = await sideEffects();
    const c = await client(h.users.bob);
    try {
      const e = await failure(c.query("BEGIN; RESET transaction_read_only; SELECT nextval('orders_id_seq'); SELECT lo_create(0); COMMIT"));
      expect(e?.code).toBe('42501');
      expect(e?.message).toContain('"read-only"');
      // One statement at a time, in a transaction, in both protocols.
      for (const sql of [
        'RESET transaction_read_only', 'RESET default_transaction_read_only', 'RESET ALL', 'DISCARD ALL',
        'SET transaction_read_only = off', 'SET LOCAL transaction_read_only = off',
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', "SELECT set_config('transaction_read_only', 'off', true)",
        "SELECT nextval('orders_id_seq')", "SELECT setval('orders_id_seq', 1)", 'SELECT lo_create(0)', 'SELECT pg_advisory_lock(1)',
      ]) {
        await c.query('BEGIN');
        expect((await failure(c.query(sql)))?.code, sql).toBe('42501');
        await c.query('ROLLBACK');
        expect((await failure(c.query({ text: sql, name: `p${sql.length}` })))?.code, sql).toBe('42501');
        for (const bad of ['BEGIN READ WRITE', 'START TRANSACTION READ WRITE']) {
          expect((await failure(c.query(bad)))?.code, bad).toBe('42501');
        }
      }
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
    expect(await sideEffects()).toEqual(before);
  });
});

describe('functions outside the catalog allow-list (class 8)', () => {
  it('ts_stat cannot run SQL from text: another session survives', async () => {
    const victim = await upstream.admin();
    const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const c = await client(h.users.bob);
    try {
      const e = await failure(c.query(`SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(${pid})::text)')`));
      expect(e?.code).toBe('42501');
      expect(e?.message).toContain('"dangerous-function"');
      expect((await victim.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
      // Under a read grant an unknown or volatile function waits for a reviewer.
      const held = await failure(c.query('SELECT pg_sleep(0)'));
      expect(held?.code).toBe('42501');
      expect(held?.message).toMatch(/held for approval by guardrail "unlisted-function": function pg_sleep/);
      // Ordinary reads, with stable/immutable built-ins and explicitly allowed volatile ones, run.
      const r = await c.query("SELECT lower(name) AS n, now() IS NOT NULL AS t, random() < 2 AS r, pg_total_relation_size('orders') > 0 AS s FROM customers WHERE name BETWEEN 'A' AND 'Z' ORDER BY 1");
      expect(r.rows[0]).toMatchObject({ t: true, r: true, s: true });
      expect(r.rows.length).toBe(2);
    } finally {
      await c.end();
      await victim.end();
    }
  });
});

describe('function calls written as field selection (attack round 3 #2)', () => {
  it('(expr).f and alias.f on scalars get every function rule; the victim session survives', async () => {
    const victim = await upstream.admin();
    const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const c = await client(h.users.bob);
    try {
      const refused: [string, string][] = [
        ["SELECT ('SELECT to_tsvector(''simple'', name) FROM customers'::text).ts_stat", 'dangerous-function'],
        ["SELECT s.ts_stat FROM unnest(array['SELECT to_tsvector(''simple'', name) FROM customers']) s", 'dangerous-function'],
        [`SELECT s.pg_terminate_backend FROM unnest(array[${pid}]) s`, 'dangerous-function'],
        [`SELECT (${pid}).pg_terminate_backend`, 'dangerous-function'],
        ['SELECT ((SELECT 0)).pg_cancel_backend', 'dangerous-function'],
        ['SELECT (array[0])[1].pg_cancel_backend', 'dangerous-function'],
        ['SELECT (0)."pg_cancel_backend"', 'dangerous-function'],
        ['SELECT count(*) FILTER (WHERE (0).pg_cancel_backend) FROM customers', 'dangerous-function'],
        ['SELECT g.pg_stat_get_backend_activity FROM pg_stat_get_backend_idset() g', 'masking-bypass'],
        ['SELECT (42::bigint).pg_advisory_lock', 'read-only'],
        ['SELECT (1::bigint).pg_try_advisory_lock_shared', 'read-only'],
        ["SELECT ('orders_id_seq'::regclass).nextval", 'read-only'],
        ['SELECT (0.01).pg_sleep', 'unlisted-function'],
        ['SELECT (1::float8).setseed', 'unlisted-function'],
        // A value of a type the gateway cannot name: any function could answer to the field.
        ["SELECT ('x'::text).anything_at_all", 'unlisted-function'],
      ];
      for (const [sql, rule] of refused) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, rule: e?.message.includes(`"${rule}"`) }).toEqual({ sql, code: '42501', rule: true });
      }
      expect((await victim.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
      const locks = await victim.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
      expect(locks.rows[0].n).toBe(0);
      // Field selection of a real column, and a safe built-in in attribute form, still run
      // (`(c).id` is masked as the whole row it may be: lineage's over-masking, not a refusal).
      const ok = await c.query('SELECT (c).id, c.id AS j, (c.id).int8 AS k FROM customers c ORDER BY 2 LIMIT 1');
      expect(ok.rows[0]).toMatchObject({ j: 1, k: '1' });
    } finally {
      await c.end();
      await victim.end();
    }
  });
});

describe('deep nesting (attack round 3 #7)', () => {
  it('a statement nested deeper than the gateway can walk is refused with 54001; the session goes on', async () => {
    const c = await client(h.users.bob);
    try {
      const n = 3000;
      for (const sql of [
        `SELECT ${'abs('.repeat(n)}1${')'.repeat(n)}`,
        `SELECT ${'(SELECT '.repeat(n)}1${')'.repeat(n)}`,
        `SELECT ${'CASE WHEN true THEN '.repeat(n)}1${' END'.repeat(n)}`,
        `SELECT (${'abs('.repeat(n)}0${')'.repeat(n)}).pg_cancel_backend`,
      ]) {
        const e = await failure(c.query(sql));
        expect({ start: sql.slice(0, 20), code: e?.code }).toEqual({ start: sql.slice(0, 20), code: '54001' });
      }
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('the decision cache (class 9)', () => {
  it('COPY with FORMAT text and then binary (string literals) get two decisions', async () => {
    const c = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop');
    try {
      c.send(queryMessage("COPY customers TO STDOUT (FORMAT 'text')"));
      expect((await c.until('Z')).map((m) => m.type)).toContain('H');
      c.send(queryMessage("COPY customers TO STDOUT (FORMAT 'binary')"));
      const msgs = await c.until('Z');
      const err = msgs.find((m) => m.type === 'E');
      expect(err).toBeDefined();
      expect(decodeErrorFields(err?.body ?? Buffer.alloc(0)).get('M')).toContain('"masking-bypass"');
      expect(msgs.map((m) => m.type)).not.toContain('H');
      c.send(queryMessage('SELECT 1'));
      expect((await c.until('Z')).map((m) => m.type)).toContain('D');
    } finally {
      c.close();
    }
  });
});
