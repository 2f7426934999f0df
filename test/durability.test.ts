import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';

/**
 * What was acknowledged is durable: a server in a child process is killed with SIGKILL while
 * requests are in flight; after a restart every acknowledged span is queryable.
 */

const BIN = join(import.meta.dirname, '..', 'bin', 'tightloop');
const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-durable-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function up(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/health`);
      if (res.ok) return child;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('durability', () => {
  it('every acknowledged span survives SIGKILL', async () => {
    const port = await freePort();
    const child = await up(port);
    const acked: string[] = [];
    const SPANS = 50;
    let killed = false;
    const exited = new Promise((r) => child.once('exit', r));

    // Four concurrent senders stream requests; the server is killed right after the 60th ack,
    // with other requests still in flight.
    const sender = async () => {
      while (!killed) {
        const traceId = randomTraceId();
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonTraceRequest(traceId, SPANS),
          });
          if (res.status === 200 && !killed) {
            acked.push(traceId);
            if (acked.length >= 60) {
              killed = true;
              child.kill('SIGKILL');
            }
          }
        } catch { /* connection reset by the kill */ }
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    await exited;
    expect(acked.length).toBeGreaterThanOrEqual(60);

    const again = await up(port);
    try {
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const missing: string[] = [];
      for (const traceId of acked) {
        const res = await fetch(`http://127.0.0.1:${port}/api/traces/${traceId}`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { spans?: unknown[] };
        if (res.status !== 200 || body.spans?.length !== SPANS) missing.push(traceId);
      }
      expect(missing).toEqual([]);
    } finally {
      // SIGTERM is a clean shutdown: pending batches flushed, exit code 0.
      const exit = new Promise<number | null>((r) => again.once('exit', (code) => r(code)));
      again.kill('SIGTERM');
      expect(await exit).toBe(0);
    }
  });
});
