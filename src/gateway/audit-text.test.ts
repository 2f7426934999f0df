import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TEXT_CHARS } from './audit-text.js';
import { queryMessage } from './wire/encode.js';
import { rawClient, asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { grantAccess, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Attack round 3 #6: the audit stored statements normalised (`$n` for every literal) and no
 * Bind parameter at all, so the SQL that actually ran — text handed to a function, the pid
 * given to pg_terminate_backend — was nowhere. Records now carry the text as sent (`text`) and
 * the bound values (`params`), whole; `sql` stays the normalised form. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await grantAccess(h, h.users.bob, 'shop', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

const as = <T>(user: 'alice' | 'bob', fn: (c: pg.Client) => Promise<T>): Promise<T> => asUser(h, h.users[user], 'shop', fn);

type Data = { error?: string; rowsSent?: number; sql?: string; text?: string; params?: (string | null)[]; textChars?: number; variants?: { text: string; params?: string[]; executions: number }[]; decision?: string };

/** What a record says ran: its own text, or each variant of a window's record. */
function ran(d: Data): { text?: string; params?: (string | null)[] }[] {
  return d.variants ?? [{ text: d.text, params: d.params }];
}

async function records(actor: string, kind = 'statement'): Promise<Data[]> {
  await new Promise((r) => setTimeout(r, 400)); // the statement log's window
  await h.gateway.audit.flush();
  return (await h.gateway.audit.query({ kind, actor, limit: 1000 })).map((r) => r.data as Data);
}

describe('the audit records what ran (attack round 3 #6)', () => {
  it('literals, bound parameters and blocked statements appear as sent; the chain verifies', async () => {
    await as('bob', async (c) => {
      await c.query("SELECT id FROM customers WHERE note = 'literal-marker-1'");
      await c.query('SELECT $1::text AS t, $2::int AS n', ['param-marker-2', 42]);
      await c.query('SELECT s.pg_terminate_backend FROM unnest(array[424242]) s').catch(() => undefined);
      await c.query(`SELECT '${'y'.repeat(AUDIT_TEXT_CHARS + 100)}' AS long`);
    });
    const recs = await records('bob');
    const lit = recs.find((d) => ran(d).some((v) => v.text?.includes('literal-marker-1')));
    expect(lit?.sql).toMatch(/note = \$1/);
    const bound = recs.flatMap(ran).find((v) => v.params?.includes('param-marker-2'));
    expect(bound).toMatchObject({ text: 'SELECT $1::text AS t, $2::int AS n', params: ['param-marker-2', '42'] });
    const kill = recs.find((d) => d.text?.includes('424242'));
    expect(kill?.decision).toBe('block');
    const long = recs.flatMap(ran).find((v) => v.text?.startsWith("SELECT 'yyy"));
    expect(long?.text).toBe(`SELECT '${'y'.repeat(AUDIT_TEXT_CHARS + 100)}' AS long`);
    expect((await h.gateway.audit.verify()).ok).toBe(true);
  });

  it('writes carry their parameters in the start record; a window of executions lists each variant', async () => {
    await as('alice', async (c) => {
      await c.query('UPDATE customers SET note = $1 WHERE id = $2', ['write-marker-3', 1]);
      for (const v of [7, 8, 7]) await c.query('SELECT $1::int AS v', [v]);
    });
    const starts = await records('alice', 'statement.start');
    expect(starts.find((d) => d.params?.includes('write-marker-3'))?.params).toEqual(['write-marker-3', '1']);
    const recs = await records('alice');
    const seen = new Map<string, number>();
    for (const d of recs) {
      if (d.text === 'SELECT $1::int AS v') seen.set(String(d.params?.[0]), (seen.get(String(d.params?.[0])) ?? 0) + 1);
      for (const v of d.variants ?? []) if (v.text === 'SELECT $1::int AS v') seen.set(String(v.params?.[0]), (seen.get(String(v.params?.[0])) ?? 0) + v.executions);
    }
    expect(Object.fromEntries(seen)).toEqual({ 7: 2, 8: 1 });
  });
});

describe('reads the client leaves early, or that fail midway, are recorded (attack round 4 #6)', () => {
  it('records the rows sent before an error, and a statement the session ended under', async () => {
    await as('bob', async (c) => {
      await c.query('SELECT 10 / (5 - g) AS v FROM generate_series(1, 10) g').catch(() => undefined);
    });
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop');
    raw.send(queryMessage("SELECT g, 'left-early-marker' AS m FROM generate_series(1, 50000000) g"));
    for (let i = 0; i < 20; i++) await raw.next();
    raw.close();
    await new Promise((r) => setTimeout(r, 1500));
    const recs = await records('bob');
    const failed = recs.find((d) => d.error === '22012');
    expect(failed?.rowsSent).toBe(4);
    const left = recs.find((d) => d.text?.includes('left-early-marker'));
    expect(left?.error).toBe('session-ended');
    expect(left?.rowsSent).toBeGreaterThan(0);
  });
});

describe('a portal suspended by a row limit records the rows it sent (attack round 5 #6)', () => {
  it('Execute with a row limit, then the client leaves: the record has the rows sent', async () => {
    const { cstr, frame, int16, int32, parseMessage } = await import('./wire/encode.js');
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop');
    raw.send(
      parseMessage('', "SELECT g, 'suspended-marker' AS m FROM generate_series(1, 1000) g"),
      frame('B', cstr('p'), cstr(''), int16(0), int16(0), int16(0)),
      frame('E', cstr('p'), int32(30)),
      frame('H'),
    );
    const msgs = await raw.until('s');
    expect(msgs.filter((m) => m.type === 'D')).toHaveLength(30);
    raw.close();
    await new Promise((r) => setTimeout(r, 500));
    const rec: unknown = (await records('bob')).find((d) => d.text?.includes('suspended-marker'));
    expect(rec).toMatchObject({ rows: 30, suspended: true });
  });
});

describe('a long text keeps what identifies the statement (attack round 5 #8, round 8 G3)', () => {
  it('comments do not push the statement out; a text still long is recorded whole', async () => {
    const pad = 'y'.repeat(150_000);
    await as('bob', async (c) => {
      await c.query(`/*${'a'.repeat(300_000)}*/ SELECT id AS comment_marker   FROM customers -- and more\n WHERE id = 2`);
      await c.query(`SELECT '${pad}' AS a, 4242 AS middle_marker, '${pad}' AS b FROM customers WHERE id = 1`);
    });
    const recs = (await records('bob')).flatMap((d) => (d.variants ?? [d]) as (Data & { textSha256?: string; constants?: string[] })[]);
    const commented = recs.find((v) => v.text?.includes('comment_marker'));
    expect(commented?.text).toBe('SELECT id AS comment_marker FROM customers WHERE id = 2');
    expect(commented?.textChars).toBeGreaterThan(300_000);
    const long = recs.find((d) => d.text?.startsWith("SELECT 'yyy") && d.text.endsWith('WHERE id = 1'));
    expect(long?.text).toBe(`SELECT '${pad}' AS a, 4242 AS middle_marker, '${pad}' AS b FROM customers WHERE id = 1`);
    expect(long?.constants).toBeUndefined();
  });
});
