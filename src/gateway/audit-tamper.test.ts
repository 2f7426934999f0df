import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureAdmin } from '../auth/index.js';
import { openStateStore, type StateStore } from '../state/index.js';
import { cli, startApi, type GatewayHarness } from './harness.conformance.js';
import { gatewayMigrations, startGateway, type Gateway } from './index.js';
import type { AuditTable } from './schema.js';

/**
 * Tampering with the stored audit chain, against the CLI: `tightloop audit verify` exits 1 for
 * every case, 0 for an untouched chain (also after restarts). The attacker can write the state
 * database (not the key file); the classic cases are tampered with the gateway stopped and then
 * restarted, which is when an unanchored chain used to look whole.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Booted {
  gateway: Gateway;
  state: StateStore;
  logs: string[];
  verify(): Promise<{ code: number; stdout: string }>;
  close(): Promise<void>;
}

async function boot(dataDir: string, token: { value?: string }): Promise<Booted> {
  const state = await openStateStore({ dialect: 'sqlite', path: join(dataDir, 'state.db'), migrations: gatewayMigrations });
  const boot = await ensureAdmin(state.db, dataDir);
  if (boot.created) token.value = boot.token;
  const logs: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => logs.push(s) });
  const gateway = await startGateway({ db: state.db, dataDir, log, port: null });
  const api = await startApi({ gateway, state } as GatewayHarness);
  return {
    gateway, state, logs,
    async verify() {
      const r = await cli(['audit', 'verify', '--url', api.url, '--token', token.value ?? '']);
      return { code: r.code, stdout: r.stdout };
    },
    async close() {
      await api.close();
      await gateway.close();
      await state.close();
    },
  };
}

/** A data dir with a chain of 61 records written in 3 commits; returns it stopped. */
async function fresh(): Promise<{ dir: string; token: { value?: string } }> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-tamper-'));
  dirs.push(dir);
  const token: { value?: string } = {};
  const b = await boot(dir, token);
  for (let batch = 0; batch < 3; batch++) {
    for (let i = 0; i < 20; i++) b.gateway.audit.append({ kind: 'test.event', actor: 'alice', data: { batch, i } });
    await b.gateway.audit.flush();
  }
  await b.close();
  return { dir, token };
}

type Row = AuditTable & { seq: number };

/** The attacker's tools: the state database, and SHA-256 (the key is not theirs). */
function tamper(dir: string, fn: (db: Database.Database, rows: Row[]) => void): void {
  const db = new Database(join(dir, 'state.db'));
  try {
    const rows = db.prepare('SELECT * FROM gateway_audit ORDER BY seq').all() as Row[];
    db.transaction(() => fn(db, rows))();
  } finally {
    db.close();
  }
}

function sha(r: Omit<AuditTable, 'hash'>): string {
  const h = createHash('sha256');
  for (const v of [String(Number(r.seq)), r.id, r.at, r.kind, r.actor, r.resource, r.session_id, r.data, r.prev_hash]) {
    h.update(v === null ? '-;' : `${Buffer.byteLength(v, 'utf8')}:`, 'utf8');
    if (v !== null) h.update(v, 'utf8');
  }
  return h.digest('hex');
}

/** Rewrites rows from index `from` on with fresh sequence numbers and recomputed links. */
function rechain(db: Database.Database, rows: Row[], from: number): void {
  db.prepare('DELETE FROM gateway_audit WHERE seq > ?').run(from);
  let prev = from === 0 ? '0'.repeat(64) : rows[from - 1].hash;
  const ins = db.prepare('INSERT INTO gateway_audit (seq, id, at, kind, actor, resource, session_id, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)');
  rows.slice(from).forEach((r, k) => {
    const row = { ...r, seq: from + k + 1, prev_hash: prev };
    row.hash = sha(row);
    prev = row.hash;
    ins.run(row.seq, row.id, row.at, row.kind, row.actor, row.resource, row.session_id, row.data, row.prev_hash, row.hash);
  });
}

const edit = (r: Row): Row => ({ ...r, data: JSON.stringify({ batch: 9, i: 9, edited: true }) });

const OFFLINE: Record<string, (db: Database.Database, rows: Row[]) => void> = {
  'edit a record': (db) => db.prepare("UPDATE gateway_audit SET actor = 'mallory' WHERE seq = 30").run(),
  'delete a record in the middle': (db) => db.prepare('DELETE FROM gateway_audit WHERE seq = 30').run(),
  'swap two records': (db, rows) => {
    const set = db.prepare('UPDATE gateway_audit SET id = ?, at = ?, kind = ?, actor = ?, data = ?, prev_hash = ?, hash = ? WHERE seq = ?');
    const [a, b] = [rows[29], rows[30]];
    set.run(b.id, b.at, b.kind, b.actor, b.data, b.prev_hash, b.hash, a.seq);
    set.run(a.id, a.at, a.kind, a.actor, a.data, a.prev_hash, a.hash, b.seq);
  },
  'delete the last records': (db) => db.prepare('DELETE FROM gateway_audit WHERE seq > 55').run(),
  'delete all records': (db) => db.prepare('DELETE FROM gateway_audit').run(),
  'edit a record and recompute every later hash': (db, rows) => {
    rows[29] = edit(rows[29]);
    rechain(db, rows, 29);
  },
  'delete a record and renumber the rest': (db, rows) => {
    rows.splice(29, 1);
    rechain(db, rows, 29);
  },
  'edit the last record and recompute its hash': (db, rows) => {
    rows[rows.length - 1] = edit(rows[rows.length - 1]);
    rechain(db, rows, rows.length - 1);
  },
  'insert a forged record in the middle': (db, rows) => {
    rows.splice(30, 0, { ...rows[30], id: 'forged', kind: 'test.forged' });
    rechain(db, rows, 30);
  },
  'append a forged record at the end': (db, rows) => {
    rows.push({ ...rows[rows.length - 1], id: 'forged', kind: 'test.forged' });
    rechain(db, rows, rows.length - 1);
  },
  'rewrite the whole chain': (db, rows) => {
    rows[0] = edit(rows[0]);
    rechain(db, rows, 0);
  },
};

describe('audit verify against tampering', () => {
  it('an untouched chain verifies, also across restarts, and names its anchor', async () => {
    const { dir, token } = await fresh();
    for (let round = 0; round < 2; round++) {
      const b = await boot(dir, token);
      b.gateway.audit.append({ kind: 'test.event', data: { round } });
      const v = await b.verify();
      await b.close();
      expect(v.stdout).toMatch(/audit chain OK: \d+ records, head \d+ \w+, anchored at \d+/);
      expect(v.code).toBe(0);
      expect(b.logs.join('')).not.toContain('does not match its anchor');
    }
    // Key and anchor are the owner's alone.
    expect(statSync(join(dir, 'gateway-audit.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'gateway-audit.anchor')).mode & 0o777).toBe(0o600);
  });

  for (const [name, fn] of Object.entries(OFFLINE)) {
    it(`offline, then restart: ${name}`, async () => {
      const { dir, token } = await fresh();
      tamper(dir, fn);
      const b = await boot(dir, token);
      const v = await b.verify();
      // Carry on writing, restart again: the finding must not wash out.
      b.gateway.audit.append({ kind: 'test.event', data: { after: true } });
      await b.close();
      expect(v.stdout).toContain('audit chain BROKEN');
      expect(v.code).toBe(1);
      const again = await boot(dir, token);
      for (let i = 0; i < 70; i++) again.gateway.audit.append({ kind: 'test.event', data: { later: i } });
      const v2 = await again.verify();
      await again.close();
      expect(v2.code).toBe(1);
    });
  }

  it('the start logs a chain that does not reach its anchor', async () => {
    const { dir, token } = await fresh();
    tamper(dir, OFFLINE['delete the last records']);
    const b = await boot(dir, token);
    await b.close();
    expect(b.logs.join('')).toContain('audit chain does not match its anchor');
  });

  for (const [name, fn] of Object.entries({ 'delete the last records': OFFLINE['delete the last records'], 'edit a record and recompute every later hash': OFFLINE['edit a record and recompute every later hash'], 'delete all records': OFFLINE['delete all records'] })) {
    it(`online, gateway running: ${name}`, async () => {
      const { dir, token } = await fresh();
      const b = await boot(dir, token);
      try {
        tamper(dir, fn);
        const v = await b.verify();
        expect(v.code).toBe(1);
      } finally {
        await b.close();
      }
    });
  }

  it('tampering with the anchor or the key is caught too', async () => {
    const cases: Record<string, (dir: string) => void> = {
      'remove the anchor file': (dir) => unlinkSync(join(dir, 'gateway-audit.anchor')),
      'edit an anchor line': (dir) => {
        const f = join(dir, 'gateway-audit.anchor');
        writeFileSync(f, readFileSync(f, 'utf8').replace(/"seq":(\d+)/, (_m, n: string) => `"seq":${Number(n) - 5}`));
      },
      'remove the key file': (dir) => unlinkSync(join(dir, 'gateway-audit.key')),
    };
    for (const [name, fn] of Object.entries(cases)) {
      const { dir, token } = await fresh();
      expect(existsSync(join(dir, 'gateway-audit.anchor'))).toBe(true);
      fn(dir);
      const b = await boot(dir, token);
      const v = await b.verify();
      await b.close();
      expect(v.code, name).toBe(1);
      const again = await boot(dir, token);
      const v2 = await again.verify();
      await again.close();
      expect(v2.code, `${name}, after another restart`).toBe(1);
    }
  });
});
