import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { grantAccess, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { matching } from '../../test/helpers/match.js';

/**
 * `s.f` over a function in FROM (`unnest(array[...]) s`) is the call `f(s)` when `f` is no result
 * column of it — for user-defined functions too, which no list of built-ins names. Every
 * function rule judges it as that call: a read grant waits for approval (`unlisted-function`),
 * and under a write grant it counts as a possible write (audit before effect). Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await upstreamSql(upstream, `CREATE TABLE bumps (n int); CREATE FUNCTION public.bump(int) RETURNS int LANGUAGE sql AS 'select $1 + 1'`);
  await grantAccess(h, h.users.bob, 'shop', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

const as = <T>(user: 'alice' | 'bob', fn: (c: pg.Client) => Promise<T>): Promise<T> => asUser(h, h.users[user], 'shop', fn);

describe('user functions in attribute form over a function in FROM (item 3)', () => {
  it('are judged as the call f(s): a read grant waits for approval', async () => {
    await as('bob', async (c) => {
      for (const sql of [
        'SELECT s.bump FROM unnest(array[1]) s',
        'SELECT s.bump FROM unnest(array[1]) AS s(v)',
        'SELECT x FROM unnest(array[1]) s, LATERAL (SELECT s.bump AS x) l',
        'SELECT unnest.bump FROM unnest(array[1])',
        'SELECT 1 FROM generate_series(1, 2) g WHERE g.bump > 0',
      ]) {
        const e = await c.query(sql).then(() => null, (err: Error & { code?: string }) => err);
        expect({ sql, code: e?.code, msg: e?.message }).toEqual({ sql, code: '42501', msg: matching(/held for approval by guardrail "unlisted-function": function bump/) });
      }
      // Result columns still run: the alias of a scalar function, named columns, ordinality, built-ins' fields.
      expect((await c.query('SELECT s.s FROM unnest(array[7]) s')).rows).toEqual([{ s: 7 }]);
      expect((await c.query('SELECT t.v, t.n FROM unnest(array[7]) WITH ORDINALITY t(v, n)')).rows).toEqual([{ v: 7, n: '1' }]);
      expect((await c.query('SELECT t.ordinality FROM unnest(array[7]) WITH ORDINALITY t')).rows).toEqual([{ ordinality: '1' }]);
      expect((await c.query(`SELECT j.key, j.value FROM json_each_text('{"a":"b"}') j`)).rows).toEqual([{ key: 'a', value: 'b' }]);
      expect((await c.query('SELECT g.g FROM generate_series(1, 1) g')).rows).toEqual([{ g: 1 }]);
      expect((await c.query('SELECT s.abs FROM unnest(array[-3]) s')).rows).toEqual([{ abs: 3 }]);
    });
  });

  it('under a write grant such a call is a possible write: its start record is durable before it runs', async () => {
    await as('alice', async (c) => {
      expect((await c.query('SELECT s.bump AS b FROM unnest(array[41]) s')).rows).toEqual([{ b: 42 }]);
    });
    await h.gateway.audit.flush();
    const starts = await h.gateway.audit.query({ kind: 'statement.start', actor: 'alice', limit: 100 });
    expect(starts.some((r) => String((r.data as { text?: string }).text).includes('s.bump'))).toBe(true);
  });
});

describe('advisory lock keys computed from rows (attack round 4 #3)', () => {
  it('are masking-bypass while masking applies; keys from the client still lock', async () => {
    await as('alice', async (c) => {
      for (const sql of [
        'SELECT pg_advisory_lock(ascii(name)) FROM customers WHERE id = 1',
        "SELECT pg_advisory_lock(g, ('x' || encode(convert_to(rpad(substr(name, 1 + 3 * g, 3), 3), 'UTF8'), 'hex'))::bit(24)::int) FROM customers, generate_series(0, 4) g WHERE id = 1",
        'SELECT pg_try_advisory_xact_lock_shared((SELECT length(email) FROM customers WHERE id = 1))',
        'SELECT (ascii(name)::bigint).pg_advisory_lock FROM customers WHERE id = 1',
      ]) {
        const e = await c.query(sql).then(() => null, (err: Error & { code?: string }) => err);
        expect({ sql, code: e?.code, rule: e?.message.includes('"masking-bypass"') }).toEqual({ sql, code: '42501', rule: true });
      }
      await c.query("SELECT pg_advisory_lock(hashtext('job'))");
      await c.query('SELECT pg_try_advisory_lock($1::bigint)', [7]);
      const a = await upstream.admin();
      try {
        const keys = await a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
        expect(keys.rows[0].n).toBe(2);
      } finally {
        await a.end();
      }
    });
  });
});
