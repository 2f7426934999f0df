import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provablyReadOnly } from './effect.js';
import { decide, Guardrails, loadParser, type DecisionContext } from './guardrails/index.js';
import { rawClient, UPSTREAM, type GatewayHarness, type RawClient, type TestUser, type Upstream } from './harness.conformance.js';
import { frame, startupMessage } from './wire/encode.js';
import { SocketReader } from './wire/socket-reader.js';
import { collect, errorsOf, queryMessage, readyCount, rowValues, type Message } from './wire-client.conformance.js';
import { grantAccess, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * The gateway and the server must read every statement the same way. An independent attack made
 * the server lex differently from the gateway's parser — standard_conforming_strings=off, or a
 * client encoding whose characters can end in the byte of a backslash — and hid a second
 * statement (an UPDATE, raw names) behind what the guardrails saw as a string. Each test is the
 * attack's reproduction, through the gateway to real PostgreSQL, generalised to its class.
 */

let upstream: Upstream;
let h: GatewayHarness;
let carol: TestUser;

const RAW_NAMES = ['Alice', 'Bob'];

beforeAll(async () => {
  await loadParser();
  ({ upstream, h } = await startGatewayTest({ ssl: false }));
  await upstreamSql(upstream, `CREATE TABLE loyalty (customer_id int PRIMARY KEY, tier text);
    INSERT INTO loyalty VALUES (1, 'gold'), (2, 'silver');
    CREATE FUNCTION sneaky_scs() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$;
    CREATE ROLE app_gbk LOGIN SUPERUSER PASSWORD '${UPSTREAM.scram.password}';
    ALTER ROLE app_gbk SET client_encoding = 'GBK'`);
  const policy = { masking: { columns: [{ name: 'name', mode: 'hash' as const }, { name: 'balance', mode: 'partial' as const }] } };
  await h.gateway.resources.create({
    name: 'shop-lex', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user,
    credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' }, policy,
  });
  await h.gateway.resources.create({
    name: 'shop-gbk', host: '127.0.0.1', port: upstream.port, database: 'shop', user: 'app_gbk',
    credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' }, policy,
  });
  carol = await h.addUser('carol');
  const sys = { userId: h.admin.id, userName: 'admin', role: 'admin' };
  for (const r of ['shop-lex', 'shop-gbk']) {
    await grantAccess(h, h.users.bob, r, 'read');
    await h.gateway.access.grant(sys, { subjectKind: 'user', subject: carol.id, resource: r, mode: 'write' });
  }
}, 120_000);
afterAll(() => stopGatewayTest(h, upstream));

/** Sends one simple Query (as raw bytes, when given) and reads to ReadyForQuery or the end. */
async function query(raw: RawClient, sql: string | Buffer): Promise<{ messages: Message[]; ended: boolean }> {
  raw.send(typeof sql === 'string' ? queryMessage(sql) : frame('Q', sql, Buffer.from([0])));
  return collect(raw, readyCount(1));
}

function texts(messages: Message[]): string[] {
  return messages.filter((m) => m.type === 'D').flatMap((m) => rowValues(m.body).map((v) => v ?? 'NULL'));
}

function expectNoRawName(messages: Message[]): void {
  const all = messages.map((m) => m.body.toString('latin1')).join('\n');
  for (const n of RAW_NAMES) expect(all).not.toContain(n);
}

async function loyaltyXmin(): Promise<string> {
  const admin = await upstream.admin();
  try {
    return String((await admin.query<{ x: string }>('SELECT xmin::text AS x FROM loyalty WHERE customer_id = 1')).rows[0].x);
  } finally {
    await admin.end();
  }
}

describe('standard_conforming_strings: the gateway parses with it on, and it stays on', () => {
  const g = new Guardrails();
  const read: DecisionContext = { mode: 'read', rules: {}, modes: {}, maskingActive: true };
  const admin: DecisionContext = { mode: 'admin', rules: { unparseable: 'allow' }, modes: {}, maskingActive: false };

  it.each([
    'SET standard_conforming_strings = off',
    'SET standard_conforming_strings TO false',
    "SET SESSION standard_conforming_strings = 'of'",
    'SET LOCAL standard_conforming_strings = 0',
    'SET standard_conforming_strings = on, off',
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT set_config('Standard_Conforming_Strings', 'no', true)",
    "SELECT set_config('standard_conforming_strings', 'o' || 'ff', false)",
    "SELECT set_config('standard_conforming_strings', $1, false)",
    "SELECT set_config('standard_conforming_strings', (SELECT 'off'), false)",
    "SELECT 1; SET standard_conforming_strings = off",
    "PREPARE p AS SELECT set_config('standard_conforming_strings', 'off', false)",
    "SET client_encoding = 'GBK'",
    "SET NAMES 'SJIS'",
    "SET client_encoding TO 'big5'",
    "SET client_encoding = 'GB18030'",
    "SET client_encoding = 'LATIN1'",
    "SELECT set_config('client_encoding', 'UHC', false)",
    "SELECT set_config('client_encoding', current_setting('server_encoding'), false)",
  ])('refuses %s under every grant and policy', (sql) => {
    const facts = g.analyze(sql);
    expect(decide(facts, read).action).toBe('block');
    expect(decide(facts, admin).action).toBe('block');
    expect(facts.findings.some((f) => f.rule === 'unparseable')).toBe(true);
  });

  it.each([
    'SET standard_conforming_strings = on',
    "SET standard_conforming_strings = 'true'",
    'SET standard_conforming_strings TO DEFAULT',
    'RESET standard_conforming_strings',
    "SELECT set_config('standard_conforming_strings', 'on', false)",
    "SET client_encoding = 'UTF8'",
    "SET NAMES 'utf-8'",
    "SET client_encoding = 'SQL_ASCII'",
    'RESET client_encoding',
  ])('allows %s (the lexing does not change)', (sql) => {
    expect(g.analyze(sql).findings.filter((f) => f.rule === 'unparseable')).toEqual([]);
  });

  it('the attack: SET off is refused, so the hidden name column and UPDATE stay visible to the guardrails', async () => {
    const before = await loyaltyXmin();
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      const set = await query(raw, 'SET standard_conforming_strings = off');
      expect(errorsOf(set.messages)[0]?.get('M')).toMatch(/standard_conforming_strings/);
      const cfg = await query(raw, "SELECT set_config('standard_conforming_strings','off',false)");
      expect(errorsOf(cfg.messages)[0]?.get('C')).toBe('42501');
      // With the setting still on, the server reads this as the guardrails do: one string, a comment.
      const leak = await query(raw, "SELECT 'x\\', 1 AS z FROM customers -- ', name AS z FROM customers LIMIT 2");
      expectNoRawName(leak.messages);
      const write = await query(raw, "SELECT 'x\\', 1 AS z -- '; UPDATE loyalty SET tier = tier WHERE customer_id = 1");
      expect(write.messages.some((m) => m.type === 'C' && m.body.toString().startsWith('UPDATE'))).toBe(false);
      const show = await query(raw, 'SHOW standard_conforming_strings');
      expect(texts(show.messages)).toEqual(['on']);
    } finally {
      raw.close();
    }
    expect(await loyaltyXmin()).toBe(before);
  });

  it('a database default of off is overridden for gateway sessions', async () => {
    const admin = await upstream.admin();
    await admin.query('ALTER DATABASE shop SET standard_conforming_strings = off');
    try {
      const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
      try {
        const leak = await query(raw, "SELECT 'x\\', 1 AS z FROM customers -- ', name AS z FROM customers LIMIT 2");
        expectNoRawName(leak.messages);
        expect(texts((await query(raw, 'SHOW standard_conforming_strings')).messages)).toEqual(['on']);
      } finally {
        raw.close();
      }
    } finally {
      await admin.query('ALTER DATABASE shop RESET standard_conforming_strings');
      await admin.end();
    }
  });

  it('a change the parser cannot see (inside a function) ends the session before anything else is read', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, carol, 'shop-lex');
    try {
      // Pipelined: the second query would be lexed with the setting off by the server.
      raw.send(queryMessage('SELECT sneaky_scs()'), queryMessage("SELECT 'x\\', 1 AS z FROM customers -- ', name AS z FROM customers"));
      const r = await collect(raw, readyCount(2));
      expect(r.ended).toBe(true);
      expectNoRawName(r.messages);
      const fatal = errorsOf(r.messages).find((e) => e.get('S') === 'FATAL');
      expect(fatal?.get('M')).toMatch(/standard_conforming_strings=off/);
    } finally {
      raw.close();
    }
  });
});

/** A startup with extra parameters; returns the first error's message, or undefined after login. */
async function startupError(user: TestUser, database: string, extra: Record<string, string>): Promise<string | undefined> {
  const socket = connect({ port: h.gateway.port ?? 0, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  try {
    socket.write(startupMessage({ user: user.name, database, ...extra }));
    const reader = new SocketReader(socket);
    const m = await reader.next(false, 10_000);
    if (m.type === 'E') return errorsOf([m])[0].get('M');
    return undefined;
  } finally {
    socket.destroy();
  }
}

describe('client encoding: only encodings the gateway reads byte for byte as the server does', () => {
  // GBK: 0xBF 0x5C is one character; to a UTF-8 reader 0x5C is a backslash.
  const gbkAttack = Buffer.concat([
    Buffer.from("SELECT E'"), Buffer.from([0xbf, 0x5c]), Buffer.from("' AS a, name || '' AS b FROM customers -- ', 'x' AS b FROM customers LIMIT 2"),
  ]);

  it.each(['GBK', 'SJIS', 'BIG5', 'GB18030', 'UHC', 'JOHAB', 'SHIFT_JIS_2004', 'cp936', 'LATIN1', 'nonsense'])('refuses client_encoding=%s in the startup packet', async (enc) => {
    expect(await startupError(h.users.bob, 'shop-lex', { client_encoding: enc })).toMatch(/client_encoding/);
  });

  it('the attack: SET client_encoding to GBK is refused, and bytes that are not UTF-8 are refused', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      for (const sql of ["SET client_encoding='GBK'", "SET NAMES 'SJIS'", "SELECT set_config('client_encoding','BIG5',false)"]) {
        const r = await query(raw, sql);
        expect(errorsOf(r.messages)[0]?.get('C')).toBe('42501');
      }
      const r = await query(raw, gbkAttack);
      expect(errorsOf(r.messages)[0]?.get('M')).toMatch(/UTF-8/);
      expectNoRawName(r.messages);
      expect(texts((await query(raw, 'SHOW client_encoding')).messages)).toEqual(['UTF8']);
    } finally {
      raw.close();
    }
  });

  it('a role default the gateway cannot parse (ALTER ROLE ... SET client_encoding = GBK) is overridden with UTF8', async () => {
    // The raw client names no encoding: the server would use the role's GBK.
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-gbk');
    try {
      expect(texts((await query(raw, 'SHOW client_encoding')).messages)).toEqual(['UTF8']);
      const r = await query(raw, gbkAttack);
      expect(errorsOf(r.messages)[0]?.get('M')).toMatch(/UTF-8/);
      expectNoRawName(r.messages);
    } finally {
      raw.close();
    }
  });
});

describe('functions called in attribute form (c.to_jsonb is to_jsonb(c))', () => {
  const g = new Guardrails();
  const read: DecisionContext = { mode: 'read', rules: {}, modes: {}, maskingActive: true };

  it.each([
    "SELECT c.to_jsonb->>'name' FROM customers c LIMIT 1",
    'SELECT c.row_to_json FROM customers c',
    "SELECT customers.to_jsonb['name'] FROM customers",
    'SELECT c.record_out FROM customers c',
    'SELECT public.customers.to_json FROM customers',
    'SELECT x.jsonb_build_object FROM (SELECT * FROM customers) x',
    'WITH w AS (SELECT id, name FROM customers) SELECT w.concat FROM w',
    'SELECT array_agg(c.to_jsonb) FROM customers c',
    'SELECT (SELECT c.quote_literal) FROM customers c',
  ])('%s: the whole row flows into the result, and nothing raw comes back', async (sql) => {
    const all = g.analyze(sql).lineage?.all;
    expect(all?.wholeRow === true || all?.cols.includes('name') === true).toBe(true);
    expect(all?.direct).toBe(false);
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      const r = await query(raw, sql);
      expectNoRawName(r.messages);
    } finally {
      raw.close();
    }
  });

  it('COPY of an attribute-form call on a masked table is refused', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      const r = await query(raw, "COPY (SELECT c.to_jsonb->>'name' FROM customers c) TO STDOUT");
      expectNoRawName(r.messages);
      expect(errorsOf(r.messages)[0]?.get('C')).toBe('42501');
    } finally {
      raw.close();
    }
  });

  it('the function rules apply to the call: a writing function in attribute form is a write', () => {
    const facts = g.analyze('SELECT c.pg_restore_relation_stats FROM customers c');
    expect(facts.findings.map((f) => f.rule)).toContain('read-only');
    expect(decide(facts, read).action).toBe('block');
    // A plain column is still a plain column.
    expect(g.analyze('SELECT c.name FROM customers c').findings).toEqual([]);
    // Audit before effect: the attribute-form writer waits for its audit record like the call.
    expect(provablyReadOnly('SELECT c.pg_restore_relation_stats FROM customers c')).toBe(false);
    expect(provablyReadOnly('SELECT c.to_jsonb FROM customers c')).toBe(true);
  });

  it("set_config('search_path') follows the SET search_path rule", () => {
    expect(decide(g.analyze("SELECT set_config('search_path', 'public, pg_catalog', false)"), read).action).toBe('approve');
    expect(decide(g.analyze("SELECT set_config('search_path', 'pg_catalog, public', false)"), { ...read, allowFunctions: new Set(['set_config']) }).action).toBe('allow');
  });
});

describe('NOTIFY is a side effect: not under a read grant', () => {
  it('bob (read) cannot NOTIFY or pg_notify, may LISTEN; carol (write) may notify him', async () => {
    const bob = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    const writer = await rawClient(h.gateway.port ?? 0, carol, 'shop-lex');
    try {
      expect((await query(bob, 'LISTEN shop_cmd')).messages.some((m) => m.type === 'E')).toBe(false);
      for (const sql of ["NOTIFY shop_cmd, 'refund order 42'", "SELECT pg_notify('shop_cmd', 'refund order 42')", "SELECT 1; NOTIFY shop_cmd", 'BEGIN READ ONLY; NOTIFY shop_cmd']) {
        const r = await query(bob, sql);
        expect(errorsOf(r.messages)[0]?.get('M')).toMatch(/read-only/);
      }
      await query(bob, 'ROLLBACK');
      expect((await query(writer, "NOTIFY shop_cmd, 'hello bob'")).messages.some((m) => m.type === 'E')).toBe(false);
      bob.send(queryMessage('SELECT 1'));
      const got = await collect(bob, readyCount(1));
      const all = got.messages.filter((m) => m.type === 'A').map((m) => m.body.toString('latin1')).join();
      expect(all).toContain('hello bob');
      expect(all).not.toContain('refund');
    } finally {
      bob.close();
      writer.close();
    }
  });
});

describe("other sessions' SQL and column statistics", () => {
  const g = new Guardrails();
  const masked: DecisionContext = { mode: 'admin', rules: {}, modes: {}, maskingActive: true };
  const unmasked: DecisionContext = { ...masked, maskingActive: false };

  it.each([
    'SELECT query FROM pg_stat_activity',
    'SELECT * FROM pg_catalog.pg_stat_activity a WHERE a.pid <> pg_backend_pid()',
    'TABLE pg_stat_activity',
    'SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s',
    'SELECT * FROM pg_stat_get_activity(NULL)',
    'SELECT query FROM public.pg_stat_statements',
    'SELECT * FROM pg_stat_statements(true)',
    "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'",
    'TABLE pg_stats_ext',
    'SELECT * FROM pg_stats_ext_exprs',
    'SELECT stavalues1::text FROM pg_statistic',
    'SELECT m.* FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m',
    'COPY pg_stat_activity TO STDOUT',
    'WITH a AS (SELECT * FROM pg_stat_activity) SELECT query FROM a',
    'SELECT a FROM pg_stat_activity a',
    'SELECT row_to_json(pg_stat_activity) FROM pg_stat_activity',
    'SELECT a.to_jsonb FROM pg_stat_activity a',
    'SELECT c FROM pg_stat_activity AS s(a, b, c)',
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%Alice%'",
    'SELECT (SELECT max(query) FROM pg_stat_statements) AS x',
    'COPY pg_stats TO STDOUT',
    'COPY pg_stat_activity (pid) TO STDOUT',
    // Laundering through settings and notifications (write grants too): read back unmasked.
    "SELECT set_config('application_name', name, false) FROM customers",
    "SELECT set_config('my.x', reverse(email), false) FROM customers",
    "SELECT set_config('my.x', $1, false)",
    "SELECT pg_notify('ch', name) FROM customers",
    'SELECT pg_notify(name, $$x$$) FROM customers',
    // set_config('application_name', name, false) in one session shows in another's view.
    'SELECT application_name FROM pg_stat_activity',
    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'G%'",
  ])('%s is a masking bypass while masking applies', (sql) => {
    const facts = g.analyze(sql);
    expect(decide(facts, masked).action).toBe('block');
    expect(decide(facts, unmasked).action === 'block' && facts.findings.every((f) => f.rule === 'masking-bypass')).toBe(false);
  });

  it.each([
    'SELECT pid, state, backend_type FROM pg_stat_activity',
    "SELECT set_config('application_name', 'psql', false)",
    'SELECT count(1) FROM pg_catalog.pg_stat_activity a WHERE a.pid <> pg_backend_pid()',
    'SELECT calls, total_exec_time FROM pg_stat_statements',
  ])('%s reads no statement text: allowed', (sql) => {
    expect(decide(g.analyze(sql), masked).action).toBe('allow');
  });

  it("the attack: bob does not see the SQL of carol's session", async () => {
    const writer = await rawClient(h.gateway.port ?? 0, carol, 'shop-lex');
    const bob = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      await query(writer, "SELECT id FROM customers WHERE name = 'Alice'");
      for (const sql of ['SELECT query FROM pg_stat_activity', 'SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s']) {
        const r = await query(bob, sql);
        expect(errorsOf(r.messages)[0]?.get('M')).toMatch(/masking-bypass/);
        expectNoRawName(r.messages);
      }
    } finally {
      writer.close();
      bob.close();
    }
  });
});

describe('several statements in one Query: each result is masked by its own statement', () => {
  it('select 1; select name ...; select x: only the name is masked, numbers stay themselves', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      const r = await query(raw, "select 1; select name from customers order by id limit 1; select 'x', 2 AS two; select id, name from customers order by id limit 1");
      const rows = r.messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body));
      expect(rows[0]).toEqual(['1']);
      expect(rows[1][0]).toMatch(/^h_[0-9a-f]{16}$/);
      expect(rows[2]).toEqual(['x', '2']);
      expect(rows[3][0]).toBe('1');
      expect(rows[3][1]).toMatch(/^h_/);
      expectNoRawName(r.messages);
    } finally {
      raw.close();
    }
  });

  it('a number a column rule masks becomes NULL, never another plausible number', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop-lex');
    try {
      // balance 42 (partial keeps the last 4 digits) and 4111111111111111; also through lineage.
      const r = await query(raw, 'SELECT balance, balance + 0 AS b2, id FROM customers ORDER BY id; SELECT 18000 AS balance');
      const rows = r.messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body));
      expect(rows.slice(0, 2)).toEqual([[null, null, '1'], [null, null, '2']]);
      // The second statement's own lineage judges its result: a constant reads no masked column,
      // so its alias alone masks nothing (with statement 1's lineage it would be NULL).
      expect(rows[2]).toEqual(['18000']);
    } finally {
      raw.close();
    }
  });
});
