import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeErrorFields } from './wire/decode.js';
import { cstr, frame, int16, int32, parseMessage, queryMessage, SYNC } from './wire/encode.js';
import { rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { failure, grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { matching } from '../../test/helpers/match.js';

/**
 * The row ceiling (attack round 3 #8): whole-table writes whose predicate looks narrow — `IS NOT
 * NULL`, `IN (SELECT ... FROM same table)`, `> min OR IS NULL`, `DELETE ... USING`, MERGE ...
 * WHEN MATCHED, an upsert rewriting every row — run upstream, but their commit waits for the
 * command tag's row count; above `guardrails.maxWriteRows` they are undone and refused
 * (`row-ceiling`, held for approval by default). Real PostgreSQL; simple and extended protocol,
 * inside and outside a client transaction, RETURNING.
 */

let upstream: Upstream;
let h: GatewayHarness;
const ROWS = 40;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  for (const [name, rules] of [['shop-c', {}], ['shop-cb', { 'row-ceiling': 'block' }], ['shop-cw', { 'row-ceiling': 'warn' }]] as const) {
    await shopResource(h, upstream, name, { guardrails: { rules, maxWriteRows: 5 } });
    await grantAccess(h, h.users.alice, name, 'write');
  }
  await upstreamSql(upstream, `CREATE TABLE loyalty (customer_id int PRIMARY KEY, tier text, points int);
      INSERT INTO loyalty SELECT i, 'silver', i FROM generate_series(1, ${ROWS}) i;
      CREATE TABLE members (id int PRIMARY KEY);
      INSERT INTO members SELECT i FROM generate_series(1, ${ROWS}) i`);
});
afterAll(() => stopGatewayTest(h, upstream));

async function alice<T>(fn: (c: pg.Client) => Promise<T>, resource = 'shop-c'): Promise<T> {
  const c = new pg.Client({ connectionString: h.url(h.users.alice, resource) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The table as the server has it (not through the gateway). */
async function table(): Promise<{ rows: number; silver: number; points: number }> {
  const a = await upstream.admin();
  try {
    const r = await a.query("SELECT count(*)::int AS rows, count(*) FILTER (WHERE tier = 'silver')::int AS silver, sum(points)::int AS points FROM loyalty");
    return r.rows[0] as { rows: number; silver: number; points: number };
  } finally {
    await a.end();
  }
}
const INTACT = { rows: ROWS, silver: ROWS, points: (ROWS * (ROWS + 1)) / 2 };

const WHOLE_TABLE = [
  'DELETE FROM loyalty WHERE customer_id IS NOT NULL',
  'DELETE FROM loyalty WHERE customer_id IN (SELECT customer_id FROM loyalty)',
  "UPDATE loyalty SET tier = 'x' WHERE customer_id > -2147483648 OR customer_id IS NULL",
  'DELETE FROM loyalty USING members m WHERE m.id = loyalty.customer_id',
  'MERGE INTO loyalty l USING members m ON m.id = l.customer_id WHEN MATCHED THEN DELETE',
  "MERGE INTO loyalty l USING members m ON m.id = l.customer_id WHEN MATCHED THEN UPDATE SET tier = 'x'",
  'MERGE INTO loyalty l USING (SELECT 1 AS id WHERE false) m ON m.id = l.customer_id WHEN NOT MATCHED BY SOURCE THEN DELETE',
  "INSERT INTO loyalty (customer_id, tier, points) SELECT id, 'x', 0 FROM members ON CONFLICT (customer_id) DO UPDATE SET tier = 'x'",
  'UPDATE loyalty SET points = points + 1 WHERE points >= 0 RETURNING customer_id, points',
];

describe('row ceiling (attack round 3 #8)', () => {
  it('whole-table writes through narrow-looking predicates are undone and held for approval (simple protocol)', async () => {
    await alice(async (c) => {
      for (const sql of WHOLE_TABLE) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, msg: e?.message }).toEqual({ sql, code: '42501', msg: matching(/held for approval by guardrail "row-ceiling": .* changed 40 rows, over this resource's ceiling of 5/) });
        expect(await table()).toEqual(INTACT);
      }
      // The session is usable, and narrow writes (RETURNING included) commit.
      const ok = await c.query("UPDATE loyalty SET tier = 'gold' WHERE customer_id <= 3 RETURNING customer_id");
      expect(ok.rows.map((r: { customer_id: number }) => r.customer_id).sort()).toEqual([1, 2, 3]);
      expect(ok.rowCount).toBe(3);
      expect((await table()).silver).toBe(ROWS - 3);
      await c.query("UPDATE loyalty SET tier = 'silver' WHERE customer_id <= 3");
      expect((await c.query('DELETE FROM loyalty WHERE customer_id = 999')).rowCount).toBe(0);
    });
  });

  it('an upsert fed by its own table and MERGE with an always-true ON are unsafe-write on their face', async () => {
    await alice(async (c) => {
      for (const sql of [
        "INSERT INTO loyalty (customer_id, tier, points) SELECT customer_id, 'x', 0 FROM loyalty ON CONFLICT (customer_id) DO UPDATE SET tier = 'x'",
        'MERGE INTO loyalty l USING members m ON true WHEN MATCHED THEN DELETE',
      ]) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, rule: e?.message.includes('"unsafe-write"') }).toEqual({ sql, code: '42501', rule: true });
      }
      expect(await table()).toEqual(INTACT);
    });
  });

  it('inside a client transaction the transaction is aborted: neither COMMIT nor an older savepoint keeps the write', async () => {
    await alice(async (c) => {
      await c.query('BEGIN');
      await c.query("UPDATE loyalty SET tier = 'gold' WHERE customer_id = 1");
      expect((await failure(c.query('DELETE FROM loyalty WHERE points > 0')))?.code).toBe('42501');
      expect((await failure(c.query('SELECT 1')))?.code).toBe('25P02');
      await c.query('COMMIT');
      expect(await table()).toEqual(INTACT);

      await c.query('BEGIN');
      await c.query('SAVEPOINT a');
      expect((await failure(c.query('DELETE FROM loyalty WHERE points > 0 RETURNING *')))?.code).toBe('42501');
      await c.query('ROLLBACK TO SAVEPOINT a');
      await c.query("UPDATE loyalty SET tier = 'silver' WHERE customer_id = 2");
      await c.query('COMMIT');
      expect(await table()).toEqual(INTACT);
    });
  });

  it('extended protocol: bound parameters, named statements, and a statement name SQL redefined', async () => {
    await alice(async (c) => {
      expect((await failure(c.query('DELETE FROM loyalty WHERE points >= $1 RETURNING customer_id', [0])))?.code).toBe('42501');
      expect(await table()).toEqual(INTACT);
      expect((await failure(c.query({ name: 'wipe', text: 'UPDATE loyalty SET tier = $1 WHERE points >= 0', values: ['x'] })))?.code).toBe('42501');
      // After SQL PREPARE the gateway no longer follows names; a counted write under a name still counts.
      await c.query('PREPARE harmless AS SELECT 1');
      expect((await failure(c.query({ name: 'wipe', text: 'UPDATE loyalty SET tier = $1 WHERE points >= 0', values: ['x'] })))?.code).toBe('42501');
      expect(await table()).toEqual(INTACT);
      const ok = await c.query('UPDATE loyalty SET points = points WHERE customer_id = ANY($1) RETURNING customer_id', [[4, 5]]);
      expect(ok.rowCount).toBe(2);
      expect(ok.rows).toHaveLength(2);
    });
  });

  it('a pipeline after an over-ceiling Execute is skipped to its Sync, and the Execute gets the refusal', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop-c');
    try {
      const bind = frame('B', cstr(''), cstr(''), int16(0), int16(0), int16(0));
      const exec = frame('E', cstr(''), int32(0));
      raw.send(
        parseMessage('', 'DELETE FROM loyalty WHERE points > 0 RETURNING customer_id'), bind, exec,
        parseMessage('', "INSERT INTO members VALUES (1000)"), bind, exec,
        SYNC,
      );
      const msgs = await raw.until('Z');
      expect(msgs.map((m) => m.type).join('')).toBe('12EZ');
      expect(decodeErrorFields(msgs[2].body).get('M')).toMatch(/row-ceiling/);
      expect(msgs[3].body.toString('latin1')).toBe('I');
      // An Execute with a row limit suspends before its count: refused the same way.
      raw.send(parseMessage('', 'UPDATE loyalty SET points = points WHERE customer_id <= 3 RETURNING customer_id'), bind, frame('E', cstr(''), int32(1)), SYNC);
      const limited = await raw.until('Z');
      expect(limited.map((m) => m.type).join('')).toBe('12EZ');
      raw.send(queryMessage('SELECT count(*) FROM members WHERE id = 1000'));
      const check = await raw.until('Z');
      expect(check.find((m) => m.type === 'D')?.body.subarray(6).toString()).toBe('0');
    } finally {
      raw.close();
    }
    expect(await table()).toEqual(INTACT);
  });

  it('an approval of the refused statement lets that text run once; the refusal is audited', async () => {
    const sql = "UPDATE loyalty SET tier = 'bronze' WHERE points BETWEEN 1 AND 10";
    const e = await alice((c) => failure(c.query(sql)));
    const id = /request (\w+)/.exec(e?.message ?? '')?.[1];
    expect(id).toBeDefined();
    const audit = await h.gateway.audit.query({ kind: 'statement', actor: 'alice', limit: 200 });
    const rec = audit.find((r) => (r.data as { request?: string }).request === id);
    expect(rec?.data).toMatchObject({ decision: 'approval-required', rule: 'row-ceiling', rows: 10, limit: 5 });
    await h.gateway.access.approve({ userId: h.admin.id, userName: 'admin', role: 'admin' }, id as string);
    await alice(async (c) => {
      expect((await c.query(sql)).rowCount).toBe(10);
      // Once: the same text is counted again.
      expect((await failure(c.query(sql)))?.code).toBe('42501');
    });
  });

  it('an approval is for the text the approver saw: the approved statement takes no bound values (attack round 4 #5)', async () => {
    const sql = 'UPDATE loyalty SET tier = $1 WHERE points BETWEEN 11 AND 30';
    await upstreamSql(upstream, "UPDATE loyalty SET tier = 'silver'");
    const e = await alice((c) => failure(c.query(sql, ['x'])));
    const id = /request (\w+)/.exec(e?.message ?? '')?.[1];
    expect(id).toBeDefined();
    await h.gateway.access.approve({ userId: h.admin.id, userName: 'admin', role: 'admin' }, id as string);
    await alice(async (c) => {
      const again = await failure(c.query(sql, ['gold']));
      expect(again?.message).toMatch(/parameter values of a statement approved for one run/);
      // The approval is spent: the same text is counted again.
      expect((await failure(c.query(sql, ['x'])))?.message).toMatch(/row-ceiling/);
    });
    expect(await table()).toEqual(INTACT);
  });

  it('the policy picks the action: block refuses outright, warn commits with a warning', async () => {
    await upstreamSql(upstream, "UPDATE loyalty SET tier = 'silver'");
    await alice(async (c) => {
      const e = await failure(c.query("UPDATE loyalty SET tier = 'x' WHERE points > 0"));
      expect(e?.message).toMatch(/^blocked by guardrail "row-ceiling"/);
    }, 'shop-cb');
    expect(await table()).toEqual(INTACT);
    await alice(async (c) => {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      expect((await c.query("UPDATE loyalty SET tier = 'x' WHERE points > 0")).rowCount).toBe(ROWS);
      expect(notices.join()).toMatch(/row-ceiling/);
    }, 'shop-cw');
    const b = await upstream.admin();
    await b.query("UPDATE loyalty SET tier = 'silver'");
    await b.end();
  });

  it('writes whose rows no tag counts are refused before they run', async () => {
    await alice(async (c) => {
      for (const sql of [
        'BEGIN; DELETE FROM loyalty WHERE customer_id = 1; COMMIT',
        'WITH d AS (DELETE FROM loyalty WHERE points > 0 RETURNING 1) SELECT count(*) FROM d',
        'EXPLAIN ANALYZE DELETE FROM loyalty WHERE points > 0',
        'COPY (DELETE FROM loyalty WHERE points > 0 RETURNING *) TO STDOUT',
        'PREPARE p AS DELETE FROM loyalty WHERE points > $1',
      ]) {
        const e = await failure(c.query(sql));
        expect({ sql, code: e?.code, rule: e?.message.includes('"row-ceiling"') || e?.message.includes('"modifying-cte"') }).toEqual({ sql, code: '42501', rule: true });
      }
      expect(await table()).toEqual(INTACT);
      expect((await c.query('EXPLAIN DELETE FROM loyalty WHERE points > 0')).rows.length).toBeGreaterThan(0);
    });
  });
});
