import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateTestDialects } from '../state/dialects.conformance.js';
import { migrateToLatest } from '../state/index.js';
import { AuditChain } from './audit.js';
import { gatewayDb, gatewayMigrations, type GatewayDb } from './schema.js';
import { StatementLog, type StatementExecution } from './statement-log.js';

const log = pino({ level: 'silent' });
const dialects = stateTestDialects();

// Every state dialect runs the same chain: the batch insert is compiled by hand per dialect.
describe.each(dialects.names)('audit chain on %s', (name) => {
  let db: GatewayDb;
  beforeAll(async () => {
    await dialects.start(name);
    const opened = await dialects.open(name, { migrate: false });
    await migrateToLatest(opened.db, gatewayMigrations);
    db = gatewayDb(opened.db);
  });
  afterAll(() => dialects.stop());

  it('appends in order, survives a restart, and catches edits, deletions and reordering', async () => {
    const chain = new AuditChain(db, log, 5);
    await chain.open();
    for (let i = 0; i < 1200; i++) chain.append({ kind: 'statement', actor: 'alice', resource: 'shop', data: { i, sql: 'SELECT $1' } });
    await chain.flush();
    const again = new AuditChain(db, log, 5);
    await again.open();
    again.append({ kind: 'connection.open', actor: 'bob', data: { peer: '127.0.0.1:1' } });
    const ok = await again.verify();
    expect(ok).toMatchObject({ ok: true, records: 1201, head: { seq: 1201 } });

    const rows = await db.selectFrom('gateway_audit').selectAll().where('seq', 'in', [10, 11]).orderBy('seq').execute();
    // Reorder: swap the contents of two neighbours (keeping their sequence numbers).
    await db.updateTable('gateway_audit').set({ ...rows[1], seq: 10 }).where('seq', '=', 10).execute();
    await db.updateTable('gateway_audit').set({ ...rows[0], seq: 11 }).where('seq', '=', 11).execute();
    expect(await again.verify()).toMatchObject({ ok: false, firstBad: { seq: 10 } });
    await db.updateTable('gateway_audit').set(rows[0]).where('seq', '=', 10).execute();
    await db.updateTable('gateway_audit').set(rows[1]).where('seq', '=', 11).execute();
    expect((await again.verify()).ok).toBe(true);

    // Cutting records off the end is caught against the head this process knows.
    await db.deleteFrom('gateway_audit').where('seq', '>', 1199).execute();
    expect(await again.verify()).toMatchObject({ ok: false, firstBad: { seq: 1200 } });
  });
});

describe('statement log', () => {
  it('coalesces plain repeats, keeps notable executions separate, and accounts for every one', () => {
    const appended: { kind: string; data?: Record<string, unknown> }[] = [];
    const audit = { append: (e: { kind: string; data?: Record<string, unknown> }) => (appended.push(e), { seq: 0, hash: '' }) };
    const sl = new StatementLog(audit as unknown as AuditChain, { actor: 'a', resource: 'r', session: 's' }, 60_000);
    const plain: StatementExecution = { protocol: 'simple', sql: 'SELECT $1', fingerprint: 'f1', decision: 'allow', rule: null, rows: 1, durationMs: 0.5, masked: { email: 1 } };
    for (let i = 0; i < 1000; i++) sl.record(plain);
    sl.record({ ...plain, error: '22012' });
    sl.record({ ...plain, decision: 'warn', rule: 'ddl' });
    expect(appended).toHaveLength(2);
    sl.flush();
    expect(appended).toHaveLength(3);
    expect(appended[2].data).toMatchObject({ executions: 1000, rows: 1000, durationMs: 500, maxDurationMs: 0.5, masked: { email: 1000 } });
    const none = new StatementLog(audit as unknown as AuditChain, { actor: 'a', resource: 'r', session: 's' }, 0);
    none.record(plain);
    none.record(plain);
    expect(appended).toHaveLength(5);
  });
});
