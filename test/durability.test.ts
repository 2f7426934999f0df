import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, upChild } from './helpers/child-server.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';

/**
 * What was acknowledged is durable: a server in a child process is killed with SIGKILL while
 * requests are in flight; after a restart every acknowledged span is queryable.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-durable-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('durability', () => {
  it('every acknowledged span survives SIGKILL', async () => {
    const port = await freePort();
    const child = await upChild(dataDir, port);
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

    const again = await upChild(dataDir, port);
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
