import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, type GatewayHarness, type TestUser, type Upstream } from './harness.conformance.js';
import { decodeErrorFields } from './wire/decode.js';
import { describeMessage, frame, cstr, int16, int32, parseMessage, SYNC } from './wire/encode.js';
import { shopResource, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';
import { containing, matching } from '../../test/helpers/match.js';

const run = promisify(execFile);
let upstream: Upstream;
let h: GatewayHarness;
const sys = () => ({ userId: h.admin.id, userName: 'admin', role: 'admin' });

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop', mode: 'read' });
  // A resource whose DDL needs a reviewer instead of being refused outright.
  await shopResource(h, upstream, 'shop-review', { guardrails: { rules: { ddl: 'approve', 'modifying-cte': 'warn', 'row-ceiling': 'warn' } }, masking: { columns: [{ name: 'name', mode: 'hash' }], exemptRoles: ['admin'] } });
  await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: h.users.alice.id, resource: 'shop-review', mode: 'write' });
  await h.gateway.access.grant(sys(), { subjectKind: 'role', subject: 'admin', resource: 'shop-review', mode: 'read' });
});
afterAll(() => stopGatewayTest(h, upstream));

async function client(user: TestUser = h.users.alice, resource = 'shop'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(user, resource) });
  await c.connect();
  return c;
}

const GUARDRAIL_CASES: [string, string][] = [
  ['DROP TABLE orders', 'ddl'],
  ['TRUNCATE orders', 'ddl'],
  ['ALTER TABLE orders ADD COLUMN x int', 'ddl'],
  ['DELETE FROM orders', 'unsafe-write'],
  ['UPDATE orders SET total = 0 WHERE 1 = 1', 'unsafe-write'],
  ['WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d', 'modifying-cte'],
  ["DO $$ BEGIN PERFORM 1; END $$", 'do-block'],
  ["SELECT pg_read_file('/etc/passwd')", 'dangerous-function'],
  ['SELECT pg_terminate_backend(pg_backend_pid())', 'dangerous-function'],
  ["COPY orders TO PROGRAM 'cat'", 'copy-program'],
  ['SET ROLE postgres', 'set-role'],
  ['SET SESSION AUTHORIZATION postgres', 'set-role'],
  ["ALTER SYSTEM SET work_mem = '1GB'", 'alter-system'],
  ['GRANT ALL ON orders TO public', 'grant-revoke'],
  ['SELEC oops', 'unparseable'],
];

describe('guardrails on the wire', () => {
  it('every guardrail blocks in the simple and the extended protocol; the connection stays usable', async () => {
    const c = await client();
    try {
      for (const [i, [sql, rule]] of GUARDRAIL_CASES.entries()) {
        const simple = await c.query(sql).then(() => null, (e: Error & { code?: string }) => e);
        expect(simple?.code, sql).toBe('42501');
        expect(simple?.message, sql).toContain(`"${rule}"`);
        const extended = await c.query({ name: `s${i}`, text: sql }).then(() => null, (e: Error & { code?: string }) => e);
        expect(extended?.code, sql).toBe('42501');
        expect(extended?.message, sql).toContain(`"${rule}"`);
        expect((await c.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
      }
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
    const audit = await h.gateway.audit.query({ kind: 'statement', actor: 'alice', limit: 1000 });
    expect(audit.filter((r) => r.data.decision === 'block').length).toBeGreaterThanOrEqual(GUARDRAIL_CASES.length * 2);
  });

  it('psql shows the guardrail error and carries on', async () => {
    const r = await run('psql', [`host=127.0.0.1 port=${h.gateway.port} user=alice dbname=shop`, '-X', '-A', '-t', '-c', 'DROP TABLE orders', '-c', 'SELECT 7'], {
      env: { ...process.env, PGPASSWORD: h.users.alice.token },
    }).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stderr).toMatch(/ERROR:\s+blocked by guardrail "ddl": DROP/);
    expect(r.stdout.trim()).toBe('7');
  });

  it('extended protocol: after a block the rest of the pipeline is discarded until Sync, then ReadyForQuery', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop');
    try {
      const bind = frame('B', cstr(''), cstr(''), int16(0), int16(0), int16(0));
      const exec = frame('E', cstr(''), int32(0));
      raw.send(parseMessage('', 'SELECT 1'), bind, exec, parseMessage('', 'DROP TABLE orders'), bind, exec, parseMessage('', 'SELECT 2'), bind, exec, SYNC);
      const got = await raw.until('Z');
      expect(got.map((m) => m.type).join('')).toBe('12DCEZ');
      const err = decodeErrorFields(got[4].body);
      expect(err.get('C')).toBe('42501');
      expect(err.get('M')).toContain('"ddl"');
      expect(got[5].body.toString('latin1')).toBe('I');
      raw.send(parseMessage('', 'SELECT 3'), bind, describeMessage('P', ''), exec, SYNC);
      expect((await raw.until('Z')).map((m) => m.type).join('')).toBe('12TDCZ');
    } finally {
      raw.close();
    }
  });

  it('a block inside a transaction aborts it, exactly as a server error would', async () => {
    const c = await client();
    try {
      await c.query('BEGIN');
      await expect(c.query('DROP TABLE orders')).rejects.toThrow(/guardrail/);
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      expect((await c.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('read grants: writes are refused by the guardrail and, underneath, by a read-only transaction', async () => {
    const c = await client(h.users.bob);
    try {
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(2);
      await expect(c.query('INSERT INTO orders (customer, total) VALUES (1, 1)')).rejects.toMatchObject({ code: '42501', message: containing('"read-only"') });
      await expect(c.query('BEGIN READ WRITE')).rejects.toMatchObject({ code: '42501' });
      // A write hidden in a function: refused by the guardrail now (functions that write are a
      // read-only finding); the server's read-only transaction stays underneath.
      await expect(c.query("SELECT nextval('orders_id_seq')")).rejects.toMatchObject({ code: '42501', message: containing('"read-only"') });
    } finally {
      await c.end();
    }
  });

  it('require approval: the statement is held, an approver approves, it runs once', async () => {
    const c = await client(h.users.alice, 'shop-review');
    try {
      const sql = 'CREATE TABLE reviewed (a int)';
      const held = await c.query(sql).then(() => null, (e: Error & { code?: string }) => e);
      expect(held?.code).toBe('42501');
      const id = /request (\w+)/.exec(held?.message ?? '')?.[1] ?? '';
      expect(id).not.toBe('');
      // Asking again does not pile up requests.
      await expect(c.query(sql)).rejects.toThrow(id);
      const alice = { userId: h.users.alice.id, userName: 'alice', role: 'member' };
      await expect(h.gateway.access.approve(alice, id)).rejects.toMatchObject({ code: 'forbidden' });
      await h.gateway.access.approve(sys(), id);
      await c.query(sql);
      await expect(c.query('CREATE TABLE reviewed (a int)')).rejects.toThrow(/held for approval/);
    } finally {
      await c.end();
    }
  });
});

describe('an approval is for one run (attack round 3 #5)', () => {
  it('a named prepared statement of an approved statement runs once; PREPARE of a held statement is refused', async () => {
    const c = await client(h.users.alice, 'shop-review');
    try {
      const sql = 'DROP TABLE IF EXISTS zz_once_only';
      const held = await c.query(sql).then(() => null, (e: Error & { code?: string }) => e);
      const id = /request (\w+)/.exec(held?.message ?? '')?.[1] ?? '';
      expect(id).not.toBe('');
      await h.gateway.access.approve(sys(), id);
      // pg sends Parse('d1') once, then Bind/Execute of d1 for each call.
      await c.query({ text: sql, name: 'd1' });
      for (let i = 0; i < 2; i++) {
        await expect(c.query({ text: sql, name: 'd1' })).rejects.toMatchObject({ code: '42501', message: containing('approved for one run') });
      }
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      // Running the text again needs a new approval.
      await expect(c.query(sql)).rejects.toThrow(/held for approval/);
    } finally {
      await c.end();
    }
    await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop-review', mode: 'read' });
    const b = await client(h.users.bob, 'shop-review');
    try {
      await expect(b.query('PREPARE p AS SELECT pg_sleep(0)')).rejects.toMatchObject({ code: '42501', message: containing('cannot be PREPAREd') });
      await expect(b.query('EXECUTE p')).rejects.toMatchObject({ code: '42501', message: matching(/has not PREPAREd through the gateway/) });
    } finally {
      await b.end();
    }
  });
});

describe('warnings', () => {
  it('a "warn" rule lets the statement run, tells the client, and audits the decision', async () => {
    const c = await client(h.users.alice, 'shop-review');
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const r = await c.query<{ n: number }>('WITH d AS (DELETE FROM orders WHERE id = -1 RETURNING *) SELECT count(*)::int AS n FROM d');
      expect(r.rows[0].n).toBe(0);
      expect(notices.some((n) => n.includes('guardrail "modifying-cte"'))).toBe(true);
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 300));
    const audit = await h.gateway.audit.query({ kind: 'statement', resource: 'shop-review', limit: 1000 });
    expect(audit.some((r) => r.data.decision === 'warn' && r.data.rule === 'modifying-cte')).toBe(true);
  });
});

describe('masking on the wire', () => {
  it('masks by content whatever the query does to the column, and clients still parse the rows', async () => {
    const c = await client();
    try {
      const plain = (await c.query<Record<string, string>>('SELECT email, phone, card, ssn, iban, ip::text AS ip, note, balance FROM customers WHERE id = 1')).rows[0];
      expect(plain.email).toBe('*****@******e.com');
      expect(plain.card).toBe('**** **** **** 1111');
      expect(plain.ssn).toBe('***-**-6789');
      expect(plain.phone).not.toContain('415');
      expect(plain.iban).toBe('**** **** **** **** **30 00');
      expect(plain.ip).not.toContain('203');
      expect(plain.note).toMatch(/^key \*+_\*+_\*+1234$/);
      expect(plain.balance).toMatch(/^1\d*1111$/);
      const bypasses = [
        'SELECT email AS x FROM customers WHERE id = 1',
        'SELECT email::varchar(100) AS x FROM customers WHERE id = 1',
        "SELECT concat('mail: ', email) AS x FROM customers WHERE id = 1",
        'SELECT upper(email) AS x FROM customers WHERE id = 1',
        "SELECT string_agg(email, ',') AS x FROM customers",
        'SELECT row_to_json(c)::text AS x FROM customers c WHERE id = 1',
      ];
      for (const sql of bypasses) {
        const x = String((await c.query<{ x: unknown }>(sql)).rows[0].x);
        expect(x, sql).not.toMatch(/alice@example\.com|bob@example\.org/i);
        // Detector matches keep an address's shape; a column rule's `full` mask is a fixed token.
        expect(x, sql).toMatch(/@|^\*{8}$/);
      }
      // Whole rows of a table with classified columns (masking/classify.ts) are masked as a whole,
      // like any value derived from such a column; the client still parses the JSON.
      const json = (await c.query<{ j: unknown }>('SELECT row_to_json(c) AS j FROM customers c WHERE id = 1')).rows[0].j;
      expect(typeof json).toBe('string');
      expect(String(json)).not.toMatch(/[A-Za-z0-9]/);
      const extended = (await c.query<{ email: string }>('SELECT email FROM customers WHERE id = $1', [2])).rows[0];
      expect(extended.email).toBe('***@******e.org');
    } finally {
      await c.end();
    }
    await h.gateway.audit.flush();
    await new Promise((r) => setTimeout(r, 250));
    const records = await h.gateway.audit.query({ kind: 'statement', actor: 'alice', limit: 5000 });
    // Counted by detector, or by column once the column is classified.
    expect(records.some((r) => { const m = r.data.masked as Record<string, number> | undefined; return (m?.email ?? 0) + (m?.['column:email'] ?? 0) > 0; })).toBe(true);
  });

  it('masks COPY OUT, refuses binary COPY, applies column rules and per-role exemptions', async () => {
    const out = await run('psql', [`host=127.0.0.1 port=${h.gateway.port} user=alice dbname=shop`, '-X', '-c', 'COPY (SELECT id, email, card FROM customers ORDER BY id) TO STDOUT'], {
      env: { ...process.env, PGPASSWORD: h.users.alice.token },
    });
    expect(out.stdout).toBe('1\t*****@******e.com\t**** **** **** 1111\n2\t***@******e.org\t****-****-****-0004\n');
    const c = await client();
    await expect(c.query('COPY customers TO STDOUT (FORMAT binary)')).rejects.toMatchObject({ code: '42501' });
    await c.end();

    const r = await client(h.users.alice, 'shop-review');
    const row = (await r.query<{ name: string; email: string }>('SELECT name, email FROM customers WHERE id = 1')).rows[0];
    expect(row.name).toMatch(/^h_[0-9a-f]{16}$/);
    await r.end();
    const adminClient = await client(h.admin, 'shop-review');
    const raw = (await adminClient.query<{ name: string; email: string }>('SELECT name, email FROM customers WHERE id = 1')).rows[0];
    expect(raw).toEqual({ name: 'Alice', email: 'alice@example.com' });
    await adminClient.end();
  });
});
