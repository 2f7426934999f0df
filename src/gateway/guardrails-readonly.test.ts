import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ALLOWED_FUNCTIONS, Guardrails, decide, loadParser, type DecisionContext } from './guardrails/index.js';

/**
 * Issue 15, classes 7–9 at the parser level: a read grant cannot get back to read-write, runs
 * only functions known to be free of side effects (others wait for approval), and the decision
 * cache never shares a decision between statements that differ in an option.
 */

beforeAll(() => loadParser());

const write: DecisionContext = { mode: 'write', rules: {}, modes: {}, maskingActive: true, allowFunctions: new Set(DEFAULT_ALLOWED_FUNCTIONS) };
const read: DecisionContext = { ...write, mode: 'read' };

function verdict(sql: string, ctx = read, g = new Guardrails()): { action: string; rule: string | undefined } {
  const d = decide(g.analyze(sql), ctx);
  return { action: d.action, rule: d.finding?.rule };
}

describe('read-only stays read-only (class 7)', () => {
  it.each([
    'RESET transaction_read_only',
    'RESET default_transaction_read_only',
    'RESET ALL',
    'DISCARD ALL',
    'SET transaction_read_only = off',
    'SET LOCAL transaction_read_only = off',
    'SET transaction_read_only TO DEFAULT',
    'SET SESSION default_transaction_read_only = false',
    'SET "TRANSACTION_READ_ONLY" = 0',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    'SET TRANSACTION READ WRITE',
    'BEGIN READ WRITE',
    'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT nextval('users_id_seq')",
    "SELECT setval('users_id_seq', 1)",
    'SELECT lo_create(0)',
    'SELECT lo_creat(-1)',
    "SELECT lo_unlink(1)",
    'SELECT pg_advisory_lock(1)',
    "SELECT pg_notify('c', 'x')",
    "SELECT * FROM orders WHERE id = nextval('s')",
    "WITH x AS (SELECT pg_catalog.nextval('s')) SELECT * FROM x",
  ])('read grant blocks %s', (sql) => {
    expect(verdict(sql)).toEqual({ action: 'block', rule: 'read-only' });
  });

  it('the same statements stay allowed under a write grant, except the SQL-from-text ones', () => {
    for (const sql of ['RESET transaction_read_only', 'BEGIN READ WRITE', "SELECT nextval('s')", 'SELECT lo_create(0)']) {
      expect(verdict(sql, write).action, sql).toBe('allow');
    }
    for (const sql of ['SET transaction_read_only = on', 'BEGIN READ ONLY', 'DISCARD PLANS', 'RESET work_mem']) {
      expect(verdict(sql).action, sql).toBe('allow');
    }
  });
});

describe('functions: an allow-list from the catalog (class 8)', () => {
  it.each([
    "SELECT * FROM ts_stat('SELECT pg_terminate_backend(1)')",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT 1')",
    "SELECT table_to_xml('customers', true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT cursor_to_xmlschema('c', true, false, '')",
  ])('%s is denied in every mode', (sql) => {
    expect(verdict(sql, write)).toEqual({ action: 'block', rule: 'dangerous-function' });
    expect(verdict(sql)).toEqual({ action: 'block', rule: 'dangerous-function' });
  });

  it.each([
    'SELECT my_func(1)',
    'SELECT public.lower(name) FROM customers',
    'SELECT "Lower"(name) FROM customers',
    'SELECT pg_sleep(1)',
    'SELECT txid_status(1)',
    "SELECT dblink_connect_u('x')",
    'SELECT 1 OPERATOR(public.+) 2',
    'SELECT a === b FROM t',
    "SET search_path = public, pg_catalog",
  ])('read grant sends %s for approval', (sql) => {
    const v = verdict(sql);
    expect(v.action === 'approve' || v.rule === 'dangerous-function', sql).toBe(true);
    if (v.action === 'approve') expect(v.rule).toBe('unlisted-function');
  });

  it.each([
    'SELECT lower(email), count(*), now(), coalesce(name, $1) FROM customers GROUP BY 1',
    "SELECT to_char(created, 'YYYY'), extract(year FROM created), substring(name from 1 for 2) FROM orders",
    'SELECT json_agg(o), row_to_json(o) FROM orders o',
    'SELECT * FROM generate_series(1, 3) g WHERE g BETWEEN 1 AND 2',
    "SELECT name FROM customers WHERE name LIKE 'A%' OR name ~* 'b' OR name IS DISTINCT FROM 'x'",
    'SELECT random(), clock_timestamp(), gen_random_uuid(), pg_total_relation_size($1)',
    'SELECT pg_catalog.format_type(1, 2), pg_catalog.pg_get_userbyid(10)',
    // psql's \dt+ asks for sizes with qualified names.
    "SELECT pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) FROM pg_catalog.pg_class c",
    'SET search_path = pg_catalog, public',
    'SET search_path = public',
  ])('read grant runs %s', (sql) => {
    expect(verdict(sql)).toEqual({ action: 'allow', rule: undefined });
  });

  it('the policy can allow a function by name; write grants are not affected', () => {
    expect(verdict('SELECT my_func(1)', write).action).toBe('allow');
    expect(verdict('SELECT my_func(1)', { ...read, allowFunctions: new Set(['my_func']) }).action).toBe('allow');
    expect(verdict('SELECT app.my_func(1)', { ...read, allowFunctions: new Set(['my_func']) }).action).toBe('approve');
    expect(verdict('SELECT app.my_func(1)', { ...read, allowFunctions: new Set(['app.my_func']) }).action).toBe('allow');
  });
});

describe('the decision cache keys on every option (class 9)', () => {
  it('COPY options given as string literals never share a shape', () => {
    const g = new Guardrails();
    expect(verdict("COPY customers TO STDOUT (FORMAT 'text')", write, g).action).toBe('allow');
    expect(verdict("COPY customers TO STDOUT (FORMAT 'binary')", write, g)).toEqual({ action: 'block', rule: 'masking-bypass' });
    expect(verdict("COPY customers TO STDOUT (FORMAT 'csv', DELIMITER ',')", write, g).action).toBe('allow');
    g.analyze("COPY customers TO STDOUT (FORMAT 'csv', DELIMITER '@')");
    expect(g.stats.shape).toBe(0);
  });

  it('constants still share a shape, also after non-ASCII text', () => {
    const g = new Guardrails();
    g.analyze("SELECT 'é' AS a, id FROM orders WHERE id = 1");
    g.analyze("SELECT 'ü' AS a, id FROM orders WHERE id = 2");
    expect(g.stats.shape).toBe(1);
  });
});
