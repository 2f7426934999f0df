import { CompiledQuery } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { appendShared, type SharedPool } from '../src/gateway/audit-shared.js';
import { recordHash } from '../src/gateway/audit.js';
import { gatewayMigrations, type AuditTable } from '../src/gateway/schema.js';
import { openStateStore, type StateStore } from '../src/state/index.js';
import { createTestDatabase } from '../src/state/pg-cluster.conformance.js';

/**
 * The shared chain's batch transaction (src/gateway/audit-shared.ts) on a real PostgreSQL: its
 * last round trip carries the rows, the commit and the flush barrier, so a failure there may
 * come before or after the commit. After: the batch is stored, and the append must succeed (a
 * retry would store every record twice). Before: nothing is stored, and it must fail (its
 * waiters fail closed; the caller retries). Strings reach the table exactly as they were hashed.
 */

const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function store(): Promise<StateStore> {
  const d = await createTestDatabase({ migrations: gatewayMigrations });
  cleanups.push(() => d.drop());
  const s = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false, maxConnections: 3 });
  cleanups.push(() => s.close());
  return s;
}

function rows(n: number, data = '{}'): AuditTable[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: 0, id: '', at: new Date().toISOString(), kind: 'statement.start', actor: `a${i}`, resource: 'r', session_id: null, data, prev_hash: '', hash: '',
  }));
}

const append = (db: SharedPool, rs: AuditTable[]) => appendShared(db, { rows: rs, idOf: (seq) => `id-${seq}`, hashOf: (r) => recordHash(r) });

/** The real pool, whose connections fail the statement that commits: before running it, or after (its reply lost). */
function failingCommit(db: SharedPool, when: 'before' | 'after'): SharedPool {
  return {
    executeQuery: (q) => db.executeQuery(q),
    connection: () => ({
      execute: (f) => db.connection().execute((conn) => f({
        async executeQuery<R>(q: CompiledQuery<R>) {
          if (!q.sql.includes('; commit;')) return await conn.executeQuery(q);
          if (when === 'after') await conn.executeQuery(q);
          throw new Error('connection lost');
        },
      })),
    }),
  };
}

async function stored(s: StateStore): Promise<AuditTable[]> {
  const r = await s.db.executeQuery(CompiledQuery.raw('select * from gateway_audit order by seq', []));
  return r.rows as AuditTable[];
}

describePg('appendShared on PostgreSQL', () => {
  it('a batch whose commit reached the database before the connection failed is stored once and acknowledged', async () => {
    const s = await store();
    await append(s.db, rows(2));
    const head = await append(failingCommit(s.db, 'after'), rows(3));
    expect(head.seq).toBe(5);
    const all = await stored(s);
    expect(all.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5]);
    expect(all[4].hash).toBe(head.hash);
    // The next batch goes on from there: no gap, no fork.
    expect((await append(s.db, rows(1))).seq).toBe(6);
    expect((await stored(s))[5].prev_hash).toBe(head.hash);
  });

  it('a batch that failed before its commit stores nothing and fails; the retry takes the same place', async () => {
    const s = await store();
    await append(s.db, rows(2));
    const batch = rows(3);
    await expect(append(failingCommit(s.db, 'before'), batch)).rejects.toThrow(/connection lost/);
    expect((await stored(s)).map((r) => Number(r.seq))).toEqual([1, 2]);
    // The lock was released with the rolled-back transaction: the retry does not wait for it.
    const head = await append(s.db, batch);
    expect(head.seq).toBe(5);
    const all = await stored(s);
    all.forEach((r, i) => expect(r.prev_hash).toBe(i === 0 ? '0'.repeat(64) : all[i - 1].hash));
  });

  it('stores every string exactly as it was hashed: quotes, backslashes, non-ASCII, a lone surrogate', async () => {
    const s = await store();
    const data = JSON.stringify({ sql: "select 'it''s' \\ E'\\x00' $$ -- ; commit; drop table gateway_audit", text: 'ünï 🦀 \u2028' });
    const rs = rows(2, data);
    rs[1].actor = 'lone \ud800 surrogate\'); drop table gateway_audit; --';
    await append(s.db, rs);
    const all = await stored(s);
    expect(all[0].data).toBe(data);
    expect(all[1].actor).toBe('lone \ufffd surrogate\'); drop table gateway_audit; --');
    // The hash of what PostgreSQL returns is the hash that was stored.
    for (const r of all) expect(recordHash({ ...r, seq: Number(r.seq) })).toBe(r.hash);
  });
});
