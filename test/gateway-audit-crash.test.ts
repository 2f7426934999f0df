import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, UPSTREAM, type Upstream } from '../src/gateway/harness.conformance.js';
import { BIN, freePort } from './helpers/child-server.js';

/**
 * Audit before effect, proven the hard way: `tightloop up` in a child process, four sessions
 * streaming INSERTs through the gateway, SIGKILL mid-stream. Every row the upstream database
 * holds afterwards must be accounted for by a stored audit record of its session (0 unaudited),
 * and after a restart `tightloop audit verify` still says the chain is whole (no false alarm).
 */

const run = promisify(execFile);
let upstream: Upstream;
const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-gwcrash-'));
const env = { ...process.env, TIGHTLOOP_CRED_TEST_PG: UPSTREAM.scram.password };

beforeAll(async () => {
  upstream = await startUpstream();
  const a = await upstream.admin();
  await a.query('CREATE TABLE crash_effects (client int, n int)');
  await a.end();
});
afterAll(async () => {
  await upstream?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function up(port: number, gatewayPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(port), '--gateway-port', String(gatewayPort), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'], env,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) return child;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function api(port: number, method: string, path: string, body: unknown): Promise<void> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
}

describe('audit before effect survives kill -9', () => {
  it('every row the upstream holds has a stored audit record of its session', async () => {
    const port = await freePort();
    const gatewayPort = await freePort();
    const child = await up(port, gatewayPort);
    await api(port, 'POST', '/api/resources', { name: 'shop', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user, credential: 'env:TIGHTLOOP_CRED_TEST_PG', tls: { mode: 'disable' } });
    await api(port, 'POST', '/api/access/grants', { user: 'admin', resource: 'shop', mode: 'write' });
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();

    const exited = new Promise((r) => child.once('exit', r));
    let acked = 0;
    let killed = false;
    const writer = async (i: number): Promise<void> => {
      const c = new pg.Client({ host: '127.0.0.1', port: gatewayPort, user: 'admin', password: token, database: 'shop', application_name: `writer-${i}` });
      c.on('error', () => undefined);
      await c.connect();
      for (let n = 0; !killed; n++) {
        try {
          // Simple and extended protocol both.
          if (n % 2 === 0) await c.query(`INSERT INTO crash_effects VALUES (${i}, ${n})`);
          else await c.query('INSERT INTO crash_effects VALUES ($1, $2)', [i, n]);
        } catch {
          return;
        }
        if (++acked === 400) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    await exited;

    const a = await upstream.admin();
    const rows = new Map<string, number>();
    for (const r of (await a.query('SELECT client, count(*)::int AS n FROM crash_effects GROUP BY client')).rows as { client: number; n: number }[]) {
      rows.set(`writer-${r.client}`, r.n);
    }
    await a.end();

    // The stored trail, read straight from the state database the killed process left behind.
    const db = new Database(join(dataDir, 'state.db'), { readonly: true });
    const records = db.prepare("SELECT kind, session_id, data FROM gateway_audit WHERE kind IN ('connection.open', 'statement', 'statement.start')").all() as { kind: string; session_id: string; data: string }[];
    db.close();
    const app = new Map<string, string>();
    for (const r of records) if (r.kind === 'connection.open') app.set(r.session_id, String((JSON.parse(r.data) as { application: string }).application));
    const starts = new Map<string, number>();
    const outcomes = new Map<string, number>();
    for (const r of records) {
      const d = JSON.parse(r.data) as { sql?: string; executions?: number };
      if (!String(d.sql).startsWith('INSERT INTO crash_effects')) continue;
      const who = app.get(r.session_id) ?? '?';
      if (r.kind === 'statement.start') starts.set(who, (starts.get(who) ?? 0) + 1);
      else outcomes.set(who, (outcomes.get(who) ?? 0) + (d.executions ?? 1));
    }
    let total = 0;
    let unaudited = 0;
    for (const [who, n] of rows) {
      total += n;
      unaudited += Math.max(0, n - Math.max(starts.get(who) ?? 0, outcomes.get(who) ?? 0));
    }
    expect(total).toBeGreaterThanOrEqual(400);
    expect(unaudited).toBe(0);

    // A crash is not tampering: after a restart the chain verifies.
    const again = await up(port, gatewayPort);
    try {
      const v = await run(process.execPath, [BIN, 'audit', 'verify', '--url', `http://127.0.0.1:${port}`, '--data-dir', dataDir], { env }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
      expect(v.out).toContain('audit chain OK');
      expect(v.code).toBe(0);
    } finally {
      const exit = new Promise((r) => again.once('exit', r));
      again.kill('SIGTERM');
      await exit;
    }
  }, 180_000);
});
