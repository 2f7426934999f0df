import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore, type StateStore } from '../state/index.js';
import { AuditChain } from './audit.js';
import { gatewayDb, gatewayMigrations } from './schema.js';

/**
 * Audit commits on the writer thread (audit-writer.ts): a record waited for is committed before
 * `durable` resolves, the main thread keeps running while a commit waits, and a writer thread
 * that dies fails its batch closed and hands the retry to the main thread.
 */

const log = pino({ level: 'silent' });
let dir: string;
let store: StateStore | undefined;
let chain: AuditChain | undefined;

afterEach(async () => {
  await chain?.close().catch(() => undefined);
  await store?.close();
  chain = undefined;
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function open(mode: 'thread' | 'inline'): Promise<{ chain: AuditChain; path: string }> {
  dir = mkdtempSync(join(tmpdir(), 'tl-audit-writer-'));
  const path = join(dir, 'state.db');
  store = await openStateStore({ dialect: 'sqlite', path, migrations: gatewayMigrations });
  chain = new AuditChain(gatewayDb(store.db), log, 100, undefined, mode);
  await chain.open();
  return { chain, path };
}

function storedSeqs(path: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('select seq from gateway_audit order by seq').all() as { seq: number }[]).map((r) => Number(r.seq));
  } finally {
    db.close();
  }
}

describe('audit writer thread', () => {
  it('commits before durable() resolves, and the chain verifies', async () => {
    const { chain: c, path } = await open('thread');
    const a = c.append({ kind: 'statement.start', data: { sql: 'UPDATE t SET x = 1' } });
    const b = c.append({ kind: 'statement.start', data: { sql: 'DELETE FROM t' } });
    await Promise.all([c.durable(a.ticket), c.durable(b.ticket)]);
    expect(storedSeqs(path)).toEqual([1, 2]);
    expect(c.stats.commits).toBe(1); // one group commit for both
    expect(await c.verify()).toMatchObject({ ok: true, records: 2 });
  });

  it('keeps the event loop running while a commit waits for the database lock', async () => {
    const { chain: c, path } = await open('thread');
    // Another connection holds the write lock: the commit has to wait for it.
    const holder = new Database(path, { timeout: 5_000 });
    holder.prepare('begin immediate').run();
    const r = c.append({ kind: 'statement.start', data: { sql: 'INSERT INTO t VALUES (1)' } });
    let committed = false;
    const done = c.durable(r.ticket).then(() => {
      committed = true;
    });
    // On the main thread the commit would block here until the busy timeout; on the writer
    // thread this timer runs, sees nothing committed yet, and releases the lock.
    await new Promise((res) => setTimeout(res, 150));
    expect(committed).toBe(false);
    holder.prepare('commit').run();
    holder.close();
    await done;
    expect(storedSeqs(path)).toEqual([1]);
  });

  it('a dead writer thread fails its batch closed; the retry commits on the main thread', async () => {
    const { chain: c, path } = await open('thread');
    const writer = (c as unknown as { writer: { close(): Promise<void> } | undefined }).writer;
    expect(writer).toBeDefined();
    // Stop the thread under the chain's feet.
    await writer?.close();
    const r = c.append({ kind: 'statement.start', data: { sql: 'UPDATE t SET x = 2' } });
    await expect(c.durable(r.ticket)).rejects.toThrow(/could not be stored/);
    expect(storedSeqs(path)).toEqual([]);
    await c.flush();
    expect(storedSeqs(path)).toEqual([1]);
    expect(await c.verify()).toMatchObject({ ok: true, records: 1 });
  });

  it('without a file (in-memory SQLite) commits inline', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tl-audit-writer-'));
    store = await openStateStore({ dialect: 'sqlite', path: ':memory:', migrations: gatewayMigrations });
    chain = new AuditChain(gatewayDb(store.db), log, 100, undefined, 'thread');
    await chain.open();
    expect((chain as unknown as { writer: unknown }).writer).toBeUndefined();
    const r = chain.append({ kind: 'x' });
    await chain.durable(r.ticket);
    expect(await chain.verify()).toMatchObject({ ok: true, records: 1 });
  });
});
