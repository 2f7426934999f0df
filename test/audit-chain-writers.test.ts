import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditAnchor } from '../src/gateway/audit-anchor.js';
import { openWriter, type AuditLoadOptions, type AuditLoadResult } from '../src/gateway/audit-load.js';
import { AuditChain } from '../src/gateway/audit.js';
import { gatewayDb, gatewayMigrations } from '../src/gateway/schema.js';
import { openStateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { eventually } from './helpers/server.js';

/**
 * One audit chain, three writer processes on one real PostgreSQL (src/gateway/audit-shared.ts):
 * each process appends as a gateway node does (concurrent sessions, each waiting for its record's
 * commit), all three at once. The chain must come out as one: every record stored once, numbered
 * without gaps, each linked to the one before it (no fork), MACs valid under the shared key, and
 * every process's anchored heads in it (`verify`, the check behind `tightloop audit verify`).
 * Without the chain's lock the writers read the same head and collide on the sequence number,
 * and their waiters fail (checked once by removing the lock).
 */

const VITE_NODE = fileURLToPath(new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('../src/gateway/audit-load-child.ts', import.meta.url));
const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function writer(o: AuditLoadOptions): { child: ChildProcess; ready: Promise<void>; done: Promise<AuditLoadResult> } {
  const child = spawn(process.execPath, [VITE_NODE, CHILD, JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  const done = new Promise<AuditLoadResult>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) onReady();
      const m = /done (\{.*\})\n/.exec(out);
      if (m !== null) resolve(JSON.parse(m[1]) as AuditLoadResult);
    });
    child.on('exit', (code) => reject(new Error(`writer ${o.writer} exited (${code}) before it was done`)));
  });
  return { child, ready, done };
}

const log = pino({ level: 'silent' });

/**
 * A fresh PostgreSQL database with the gateway's tables, and a directory with one key for the
 * cluster and a copy of its anchor for each writer w1..w3 (docs/cluster.md); from there each
 * writer witnesses the heads it commits in its own anchor file.
 */
async function sharedChain(prefix: string): Promise<{ d: TestDatabase; dir: string; keyFile: string }> {
  const d = await createTestDatabase({ migrations: gatewayMigrations });
  cleanups.push(() => d.drop());
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'gateway-audit.key');
  const first = new AuditAnchor(join(dir, 'first.anchor'), keyFile, log);
  await first.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
  await first.close();
  for (const w of ['w1', 'w2', 'w3']) copyFileSync(join(dir, 'first.anchor'), join(dir, `${w}.anchor`));
  return { d, dir, keyFile };
}

describePg('the audit chain with three writer processes on PostgreSQL', () => {
  it('stays one chain: no gaps, no forks, every record once, verify passes with every writer\'s anchor', async () => {
    const { d, dir, keyFile } = await sharedChain('tl-audit-writers-');
    const sessions = 8;
    const perSession = 40;
    const writers = ['w1', 'w2', 'w3'].map((w) => writer({
      state: d.connectionString, keyFile, anchorFile: join(dir, `${w}.anchor`), writer: w, sessions, perSession, durationMs: 120_000,
    }));
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin?.write('go\n');
    const results = await Promise.all(writers.map((w) => w.done));
    for (const r of results) {
      expect(r.firstError, r.writer).toBeUndefined();
      expect(r.failed, r.writer).toBe(0);
      expect(r.appended, r.writer).toBe(sessions * perSession);
    }

    const store = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false, maxConnections: 2 });
    cleanups.push(() => store.close());
    const db = gatewayDb(store.db);
    const rows = await db.selectFrom('gateway_audit').select(['seq', 'prev_hash', 'hash', 'actor']).orderBy('seq').execute();
    const total = 3 * sessions * perSession;
    expect(rows.length).toBe(total);
    // No gaps: 1..n. No forks: each record links to the one before it, no predecessor twice.
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    rows.forEach((r, i) => expect(r.prev_hash, `record ${i + 1}`).toBe(i === 0 ? '0'.repeat(64) : rows[i - 1].hash));
    expect(new Set(rows.map((r) => r.prev_hash)).size).toBe(total);
    for (const w of ['w1', 'w2', 'w3']) expect(rows.filter((r) => r.actor === w).length).toBe(sessions * perSession);
    // The writers really did run at once: their commits interleave in the chain.
    let switches = 0;
    for (let i = 1; i < rows.length; i++) if (rows[i].actor !== rows[i - 1].actor) switches++;
    expect(switches).toBeGreaterThan(6);

    // The check `tightloop audit verify` runs (GET /api/audit/verify), with each node's anchor.
    for (const w of ['w1', 'w2', 'w3']) {
      const v = await new AuditChain(db, log, 100, new AuditAnchor(join(dir, `${w}.anchor`), keyFile, log), 'inline').verify();
      expect(v, w).toMatchObject({ ok: true, records: total, head: { seq: total, hash: rows[total - 1].hash } });
      expect(v.ok && v.anchor !== undefined && v.anchor.seq > 0).toBe(true);
    }

    // A node with another key, or none, would seal records the others cannot verify: refused.
    for (const other of ['another', 'none']) {
      const keyDir = mkdtempSync(join(dir, `${other}-`));
      if (other === 'another') {
        const a = new AuditAnchor(join(keyDir, 'a.anchor'), join(keyDir, 'k.key'), log);
        await a.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
        await a.close();
      }
      await expect(openWriter({ state: d.connectionString, keyFile: join(keyDir, 'k.key'), anchorFile: join(keyDir, 'a.anchor') }), other)
        .rejects.toMatchObject({ code: 'audit_key_mismatch' });
    }
    expect(await db.selectFrom('gateway_audit').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).toMatchObject({ n: String(total) });
  }, 240_000);

  it('a writer SIGKILLed in the middle of its batches leaves no gap and no fork; the others go on', async () => {
    const { d, dir, keyFile } = await sharedChain('tl-audit-killed-');
    const sessions = 8;
    const writers = ['w1', 'w2', 'w3'].map((w) => writer({
      state: d.connectionString, keyFile, anchorFile: join(dir, `${w}.anchor`), writer: w, sessions, perSession: w === 'w2' ? 1e9 : 60, durationMs: 120_000,
    }));
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin?.write('go\n');
    writers[1].done.catch(() => undefined);
    const store = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false, maxConnections: 2 });
    cleanups.push(() => store.close());
    const db = gatewayDb(store.db);
    const count = async (actor: string): Promise<number> => Number((await db.selectFrom('gateway_audit').select((eb) => eb.fn.countAll().as('n')).where('actor', '=', actor).executeTakeFirstOrThrow()).n);
    // w2 dies while it appends, its batches at any step: before, in or after its commit.
    await eventually(async () => ((await count('w2')) >= 50 ? true : undefined), 60_000);
    writers[1].child.kill('SIGKILL');
    const results = await Promise.all([writers[0].done, writers[2].done]);
    for (const r of results) {
      expect(r.failed, r.writer).toBe(0);
      expect(r.appended, r.writer).toBe(sessions * 60);
    }
    const rows = await db.selectFrom('gateway_audit').select(['seq', 'prev_hash', 'hash', 'actor']).orderBy('seq').execute();
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
    rows.forEach((r, i) => expect(r.prev_hash, `record ${i + 1}`).toBe(i === 0 ? '0'.repeat(64) : rows[i - 1].hash));
    expect(rows.filter((r) => r.actor === 'w1').length).toBe(sessions * 60);
    // The survivors' records come after w2's last one too: its lock went with its connection.
    expect(rows.map((r) => r.actor).lastIndexOf('w2')).toBeLessThan(rows.length - 1);
    for (const w of ['w1', 'w2', 'w3']) {
      const v = await new AuditChain(db, log, 100, new AuditAnchor(join(dir, `${w}.anchor`), keyFile, log), 'inline').verify();
      expect(v, w).toMatchObject({ ok: true, records: rows.length });
    }
  }, 240_000);
});
