import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_DEFAULTS } from '../src/config/schema.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * With a tiny write queue, ingest answers 429 with Retry-After instead of buffering without bound;
 * everything it did acknowledge is stored, and memory stays bounded.
 */

let server: TestServer;
beforeAll(async () => {
  // A commit group is never larger than the queue (config/load.ts refuses it; the writer too).
  server = await startTestServer({ queueMaxRows: 150, ingest: {
    queueMaxBytes: INGEST_DEFAULTS.queueMaxBytes, groupRows: 150, maxInFlight: INGEST_DEFAULTS.maxInFlight, maxDelayMs: INGEST_DEFAULTS.maxDelayMs,
  } });
});
afterAll(async () => {
  await server.close();
});

describe('overload', () => {
  it('answers 429 + Retry-After when the queue is full, stores what it acknowledged, memory bounded', async () => {
    const acked: string[] = [];
    let refused = 0;
    let badRetryAfter = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const body100 = (id: string) => jsonTraceRequest(id, 100, 'overload');
    for (let round = 0; round < 15; round++) {
      await Promise.all(Array.from({ length: 40 }, async () => {
        const traceId = randomTraceId();
        const res = await fetch(`${server.url}/v1/traces`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: body100(traceId),
        });
        if (res.status === 200) acked.push(traceId);
        else if (res.status === 429 || res.status === 503) {
          refused++;
          const ra = Number(res.headers.get('retry-after'));
          if (!(ra >= 1)) badRetryAfter++;
        } else throw new Error(`unexpected status ${res.status}: ${await res.text()}`);
      }));
    }
    expect(refused).toBeGreaterThan(0);
    expect(badRetryAfter).toBe(0);
    expect(acked.length).toBeGreaterThan(0);
    // 600 requests × 100 spans went through this process; the queue held at most 150 rows.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024);
    for (const traceId of acked.slice(0, 50)) {
      const res = await server.api<{ spans: unknown[] }>(`/api/traces/${traceId}`);
      expect(res.status).toBe(200);
      expect(res.body.spans).toHaveLength(100);
    }
  });
});
