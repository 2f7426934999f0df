import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, upChild } from './helpers/child-server.js';
import { randomTraceId } from './helpers/otlp-json.js';

/**
 * OTel span exceptions become error events after the OTLP 200 (src/errors/otel-feed.ts). A
 * server (the built one: error commits then run in the worker thread) is killed with SIGKILL
 * right after acknowledging traces that record exceptions; after a restart every acknowledged
 * exception is an error event of its trace, exactly once, and the group counts each once.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-errors-durable-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** A trace of `spans` spans; the last one records an exception event. */
function failingTrace(traceId: string, spans: number): string {
  const now = Date.now() * 1e6;
  const list = Array.from({ length: spans }, (_, i) => ({
    traceId, spanId: randomBytes(8).toString('hex'), name: i === 0 ? 'POST /pay' : `step ${i}`, kind: i === 0 ? 2 : 1,
    startTimeUnixNano: String(now + i * 1000), endTimeUnixNano: String(now + i * 1000 + 2_000_000),
    events: i === spans - 1 ? [{
      timeUnixNano: String(now + i * 1000 + 1000), name: 'exception',
      attributes: [
        { key: 'exception.type', value: { stringValue: 'PaymentDeclined' } },
        { key: 'exception.message', value: { stringValue: `card declined for ${traceId}` } },
        { key: 'exception.stacktrace', value: { stringValue: 'PaymentDeclined: declined\n    at pay (/app/src/pay.ts:10:5)' } },
      ],
    }] : [],
    status: i === spans - 1 ? { code: 2 } : undefined,
  }));
  return JSON.stringify({ resourceSpans: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'payments' } }] },
    scopeSpans: [{ scope: { name: 'test' }, spans: list }],
  }] });
}

describe('OTel span errors survive SIGKILL', () => {
  it('every acknowledged exception is an error event after restart, counted once', async () => {
    const port = await freePort();
    const child = await upChild(dataDir, port);
    const acked: string[] = [];
    let killed = false;
    const exited = new Promise((r) => child.once('exit', r));
    const sender = async () => {
      while (!killed) {
        const traceId = randomTraceId();
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: failingTrace(traceId, 20),
          });
          if (res.status === 200 && !killed) {
            acked.push(traceId);
            if (acked.length >= 40) {
              killed = true;
              child.kill('SIGKILL'); // right after the ack: most of these events are not committed yet
            }
          }
        } catch { /* connection reset by the kill */ }
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    await exited;

    const again = await upChild(dataDir, port);
    try {
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const get = async <T>(path: string): Promise<T> => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        return (await res.json()) as T;
      };
      const wrong: string[] = [];
      for (const traceId of acked) {
        const body = await get<{ errors?: Array<{ traceId: string }> }>(`/api/traces/${traceId}`);
        if (body.errors?.length !== 1) wrong.push(`${traceId}: ${body.errors?.length ?? 'none'}`);
      }
      expect(wrong).toEqual([]);
      // One group (same throw site); its count equals the distinct exceptions stored, no double count.
      const groups = await get<{ groups: Array<{ id: string; title: string; count: number }> }>('/api/errors?service=payments');
      const group = groups.groups.find((g) => g.title.includes('PaymentDeclined'));
      expect(group).toBeDefined();
      const events = await get<{ events: unknown[] }>(`/api/errors/${group!.id}/events?limit=500`);
      expect(group!.count).toBe(events.events.length);
      expect(events.events.length).toBeGreaterThanOrEqual(acked.length);
    } finally {
      const exit = new Promise<number | null>((r) => again.once('exit', (code) => r(code)));
      again.kill('SIGTERM');
      expect(await exit).toBe(0);
    }
  });
});
