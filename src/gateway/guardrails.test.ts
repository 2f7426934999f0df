import { beforeAll, describe, expect, it } from 'vitest';
import { Guardrails, decide, loadParser, shapeKey, type DecisionContext, type RuleId } from './guardrails/index.js';
import { TOO_COMPLEX, tokenCount } from './guardrails/engine.js';

beforeAll(() => loadParser());

const write: DecisionContext = { mode: 'write', rules: {}, modes: {}, maskingActive: true };
const read: DecisionContext = { ...write, mode: 'read' };
const admin: DecisionContext = { ...write, mode: 'admin' };

function verdict(sql: string, ctx = write): { action: string; rule: RuleId | undefined } {
  const d = decide(new Guardrails().analyze(sql), ctx);
  return { action: d.action, rule: d.finding?.rule };
}

describe('guardrail visitors', () => {
  const blocked: [string, RuleId][] = [
    ['DROP TABLE orders', 'ddl'],
    ['TRUNCATE orders', 'ddl'],
    ['ALTER TABLE orders ADD COLUMN x int', 'ddl'],
    ['CREATE INDEX ON orders (id)', 'ddl'],
    ['SELECT 1 INTO t2', 'ddl'],
    ['DELETE FROM orders', 'unsafe-write'],
    ['UPDATE orders SET total = 0', 'unsafe-write'],
    ['DELETE FROM orders WHERE 1=1', 'unsafe-write'],
    ['DELETE FROM orders WHERE true', 'unsafe-write'],
    ['UPDATE orders SET total = 0 WHERE id = id', 'unsafe-write'],
    ['DELETE FROM orders WHERE id = 5 OR 1 = 1', 'unsafe-write'],
    ["DELETE FROM orders WHERE 'a' = 'a'", 'unsafe-write'],
    ['WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d', 'modifying-cte'],
    ['DO $$ BEGIN PERFORM 1; END $$', 'do-block'],
    ["SELECT pg_read_file('/etc/passwd')", 'dangerous-function'],
    ["SELECT pg_catalog.pg_read_file('/etc/passwd')", 'dangerous-function'],
    ['SELECT pg_terminate_backend(pid) FROM pg_stat_activity', 'dangerous-function'],
    ["SELECT lo_import('/etc/passwd')", 'dangerous-function'],
    ["SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", 'dangerous-function'],
    ["SELECT query_to_xml('delete from orders', true, true, '')", 'dangerous-function'],
    ["SELECT set_config('role', 'postgres', false)", 'set-role'],
    ["COPY orders TO PROGRAM 'cat > /tmp/x'", 'copy-program'],
    ["COPY orders FROM '/etc/passwd'", 'copy-program'],
    ['SET ROLE postgres', 'set-role'],
    ['SET SESSION AUTHORIZATION postgres', 'set-role'],
    ["ALTER SYSTEM SET work_mem = '1GB'", 'alter-system'],
    ['GRANT SELECT ON orders TO public', 'grant-revoke'],
    ['REVOKE SELECT ON orders FROM public', 'grant-revoke'],
    ['COPY orders TO STDOUT WITH (FORMAT binary)', 'masking-bypass'],
    ['SELECT 1; DROP TABLE orders', 'ddl'],
    ['SELEC 1', 'unparseable'],
    ['SELECT (', 'unparseable'],
  ];
  it.each(blocked)('%s → %s', (sql, rule) => {
    expect(verdict(sql)).toEqual({ action: 'block', rule });
  });

  const allowed = [
    'SELECT * FROM orders WHERE id = 1',
    'DELETE FROM orders WHERE id = $1',
    'UPDATE orders SET total = 1 WHERE id IN (SELECT id FROM x)',
    'INSERT INTO orders VALUES (1)',
    'COPY orders FROM STDIN',
    'COPY orders TO STDOUT',
    'BEGIN', 'COMMIT', 'SHOW work_mem', 'SET work_mem = 1000', 'RESET ROLE',
    'EXPLAIN SELECT 1', 'LISTEN x', "NOTIFY x, 'y'", '',
  ];
  it.each(allowed)('allows %s in write mode', (sql) => {
    expect(verdict(sql).action).toBe('allow');
  });

  it('read mode blocks every write, including COPY FROM and leaving read-only mode', () => {
    for (const sql of [
      'INSERT INTO orders VALUES (1)', 'DELETE FROM orders WHERE id = 1', 'COPY orders FROM STDIN',
      'SELECT * FROM orders FOR UPDATE', 'BEGIN READ WRITE', 'SET TRANSACTION READ WRITE',
      'SET default_transaction_read_only = off', "SELECT set_config('default_transaction_read_only', 'off', false)",
      'CALL p()', 'VACUUM orders', 'PREPARE p AS DELETE FROM orders WHERE id = $1',
    ]) {
      expect(verdict(sql, read), sql).toEqual({ action: 'block', rule: 'read-only' });
    }
    for (const sql of ['SELECT 1', 'BEGIN READ ONLY', 'SET TRANSACTION READ ONLY', 'COPY orders TO STDOUT']) {
      expect(verdict(sql, read).action, sql).toBe('allow');
    }
  });

  it('admin grants run DDL with a warning; policy overrides per rule and per mode', () => {
    expect(verdict('DROP TABLE orders', admin)).toEqual({ action: 'warn', rule: 'ddl' });
    expect(verdict('DROP TABLE orders', { ...write, rules: { ddl: 'approve' } })).toEqual({ action: 'approve', rule: 'ddl' });
    expect(verdict('DELETE FROM orders', { ...write, modes: { write: { 'unsafe-write': 'warn' } } }).action).toBe('warn');
    // A role override (the user's tightloop role) wins over the mode's.
    expect(verdict('DROP TABLE orders', { ...admin, role: { ddl: 'block' } }).action).toBe('block');
    // Unparseable statements stay denied whatever the policy says.
    expect(verdict('SELEC 1', { ...admin, rules: { unparseable: 'allow' } }).action).toBe('block');
    expect(verdict('COPY orders TO STDOUT (FORMAT binary)', { ...write, maskingActive: false }).action).toBe('allow');
  });
});

describe('decision cache', () => {
  it('answers literal-only variants from the shape key, never re-parsing', () => {
    const g = new Guardrails();
    g.analyze('SELECT abalance FROM pgbench_accounts WHERE aid = 1');
    for (let i = 2; i < 100; i++) g.analyze(`SELECT abalance FROM pgbench_accounts WHERE aid = ${i}`);
    expect(g.stats.parsed).toBe(1);
    expect(g.stats.shape).toBe(98);
  });

  it('does not share a decision that depended on a constant', () => {
    const g = new Guardrails();
    expect(decide(g.analyze("SELECT set_config('work_mem', '1MB', false)"), write).action).toBe('allow');
    expect(decide(g.analyze("SELECT set_config('role', 'postgres', false)"), write).action).toBe('block');
    expect(decide(g.analyze('BEGIN READ ONLY'), read).action).toBe('allow');
    expect(decide(g.analyze('BEGIN READ WRITE'), read).action).toBe('block');
  });

  it('shape keys strip only plain literals and give up on anything ambiguous', () => {
    expect(shapeKey("SELECT * FROM t1 WHERE a = 12 AND b = 'x''y'")).toBe("SELECT * FROM t1 WHERE a = ? AND b = '?'");
    for (const sql of ["SELECT E'\\x'", 'SELECT $1', 'SELECT 1 -- c', 'SELECT /* c */ 1', 'SELECT 1.5', "SELECT 'open"]) {
      expect(shapeKey(sql), sql).toBeUndefined();
    }
  });

  it('never lets a cached decision stand in for a statement that differs in more than constants', () => {
    // libpg-query gives all three the same fingerprint; keying the cache by it would let the
    // first answer ("allow") through for the third.
    const g = new Guardrails();
    expect(decide(g.analyze('BEGIN'), read).action).toBe('allow');
    expect(decide(g.analyze('BEGIN READ ONLY'), read).action).toBe('allow');
    expect(decide(g.analyze('BEGIN READ WRITE'), read).action).toBe('block');
    expect(decide(g.analyze("COPY t TO 'x'"), write).finding?.rule).toBe('copy-program');
    expect(decide(g.analyze('COPY t TO STDOUT'), write).action).toBe('allow');
  });
});

describe('analysis work is bounded per statement (attack round 4 #8)', () => {
  it('a string of more tokens than MAX_TOKENS is refused before it is parsed; literals and comments are not counted as tokens', () => {
    const g = new Guardrails();
    const list = (n: number): string => `select 1 in (${Array.from({ length: n }, () => '1').join(',')})`;
    const big = g.analyze(list(120_000));
    expect(big.findings).toEqual([{ rule: 'unparseable', detail: TOO_COMPLEX, statement: 1 }]);
    // The parser never ran on it: no statement kinds were read.
    expect(big.kinds).toEqual([]);
    expect(g.stats.parsed).toBe(0);
    expect(g.analyze(list(10_000)).findings).toEqual([]);
    // The scan counts what the server would see as tokens, and never fewer.
    expect(tokenCount("select 'a, b, c', \"x,y\" -- , , ,\n, $$ , , $$ /* , , */ , e'\\', '")).toBe(9);
    expect(tokenCount(`select '${', '.repeat(60_000)}'`)).toBe(2);
    expect(g.analyze(`select '${', '.repeat(60_000)}' AS blob`).findings).toEqual([]);
    // A dollar sign inside an identifier starts no quote (x$a$ is one name): the commas count.
    expect(tokenCount('select x$a$, 1, 2')).toBe(6);
  });
});
