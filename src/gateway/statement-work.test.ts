import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Guardrails, loadParser } from './guardrails/engine.js';
import { DEFAULT_WORK_BUDGET } from './guardrails/work.js';
import { startHarness, startUpstream, type GatewayHarness, type Upstream } from './harness.conformance.js';

/**
 * Issue 15 (attack run): `SELECT greatest((select 1), (select 2), … 4,000 scalar subqueries …)`
 * was analysed for seconds on the gateway's only thread, and every other session waited. Judging
 * one statement now has a work budget (guardrails/work.ts): a statement that spends it is refused
 * with SQLSTATE 54001 and audited, the session goes on, and big ordinary statements still run.
 * Work is counted in deterministic units, so nothing here depends on timing.
 */

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** Shapes whose analysis grew faster than their text (measured before the budget). */
const HEAVY: Record<string, string> = {
  'scalar subqueries': `SELECT greatest(${range(4000).map((i) => `(select ${i})`).join(',')})`,
  'a LATERAL chain': `SELECT * FROM customers t0 ${range(1200).map((i) => `, LATERAL (SELECT t${i}.id AS id) t${i + 1}`).join('')}`,
  'CTEs': `WITH ${range(2500).map((i) => `c${i} AS (SELECT ${i} AS x)`).join(',')} SELECT * FROM c0`,
  'unqualified names over many FROM items': `SELECT ${range(1500).map((i) => `c${i}`).join(',')} FROM ${range(60).map((i) => `customers t${i}`).join(', ')}`,
};

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  await loadParser();
  upstream = await startUpstream();
  h = await startHarness(upstream);
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

describe('statement analysis work budget (issue 15)', () => {
  it('refuses each heavy shape with 54001 in the analysis (the units say it stopped at the budget)', () => {
    for (const [name, sql] of Object.entries(HEAVY)) {
      const g = new Guardrails();
      const facts = g.analyze(sql);
      expect(facts.findings.map((f) => f.detail), name).toEqual([expect.stringMatching(/too complex for the gateway to judge/)]);
      expect(g.stats.work, name).toBe(DEFAULT_WORK_BUDGET);
    }
  });

  it('judges big ordinary statements within the budget', () => {
    const ordinary = [
      `SELECT * FROM customers WHERE id IN (${range(10_000).join(',')})`,
      `INSERT INTO orders (customer, total) VALUES ${range(1000).map((i) => `(${i % 2 + 1}, ${i}.5)`).join(',')}`,
      `SELECT ${range(1600).map((i) => `id AS c${i}`).join(',')} FROM customers`,
      `SELECT CASE ${range(1000).map((i) => `WHEN id = ${i} THEN 'v${i}'`).join(' ')} END FROM customers`,
      `SELECT * FROM customers WHERE ${range(2000).map((i) => `id <> ${i}`).join(' AND ')}`,
      `SELECT greatest(${range(1000).map((i) => `(select ${i})`).join(',')})`,
    ];
    for (const sql of ordinary) {
      const g = new Guardrails();
      expect(g.analyze(sql).findings.filter((f) => f.rule === 'unparseable')).toEqual([]);
      expect(g.stats.work).toBeLessThan(DEFAULT_WORK_BUDGET / 1.4);
    }
  });

  it('through the gateway: 54001 and an audit record, the session goes on, big ordinary statements run', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.alice, 'shop') });
    await c.connect();
    try {
      for (const sql of [HEAVY['scalar subqueries'], HEAVY['a LATERAL chain']]) {
        const err = (await c.query(sql).then(() => undefined, (e: unknown) => e)) as { code?: string; message?: string } | undefined;
        expect(err?.code).toBe('54001');
        expect(err?.message).toMatch(/blocked by guardrail "unparseable": statement is too complex for the gateway to judge/);
        expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      }
      const inList = await c.query(`SELECT id FROM customers WHERE id IN (${range(10_000).join(',')}) ORDER BY id`);
      expect(inList.rows.map((r: { id: number }) => r.id)).toEqual([1, 2]);
      const insert = await c.query(`INSERT INTO orders (customer, total) VALUES ${range(1000).map((i) => `(${i % 2 + 1}, ${i}.5)`).join(',')}`);
      expect(insert.rowCount).toBe(1000);
    } finally {
      await c.end();
    }
    await h.gateway.audit.flush();
    const records = await h.gateway.audit.query({ kind: 'statement', actor: 'alice', limit: 50 });
    const refused = records.filter((r) => (r.data as { decision?: string; detail?: string }).decision === 'block' && /too complex/.test(String((r.data as { detail?: string }).detail)));
    expect(refused).toHaveLength(2);
  });
});
