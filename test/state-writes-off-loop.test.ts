/**
 * State writes that telemetry causes never run on the event loop.
 *
 * A first-seen `service.version` makes an implicit deploy (its record, its verification, their
 * statuses: several SQLite commits, each with an fsync). better-sqlite3 is synchronous, so when
 * those statements ran on the main thread each one held every OTLP acknowledgement for its
 * fsync, and a burst of new versions stalled ingest for seconds (issue 23, bench ingest). The
 * SQLite state connection now lives on a thread of its own (src/state/sqlite.ts). This test
 * counts, by behaviour rather than by time, the better-sqlite3 statements executed on the main
 * thread while new and known versions are ingested and their implicit deploys are written: zero.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from './helpers/server.js';

/** Counts better-sqlite3 statement executions on this thread (the server runs in this process). */
function countMainThreadStatements(): { count: () => number; restore: () => void } {
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('select 1')) as Record<string, (...a: unknown[]) => unknown>;
  probe.close();
  let n = 0;
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  for (const m of ['run', 'all', 'get', 'iterate']) {
    const f = proto[m];
    saved.set(m, f);
    proto[m] = function (this: unknown, ...a: unknown[]) { n++; return f.apply(this, a); };
  }
  return { count: () => n, restore: () => { for (const [m, f] of saved) proto[m] = f; } };
}

function traces(services: string[], version: string): string {
  const now = Date.now() * 1e6;
  return JSON.stringify({
    resourceSpans: services.map((service) => ({
      resource: { attributes: [
        { key: 'service.name', value: { stringValue: service } },
        { key: 'service.version', value: { stringValue: version } },
        { key: 'deployment.environment', value: { stringValue: 'prod' } },
      ] },
      scopeSpans: [{ scope: { name: 'test' }, spans: Array.from({ length: 20 }, (_, i) => ({
        traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'GET /orders', kind: 2,
        startTimeUnixNano: String(now + i * 1000), endTimeUnixNano: String(now + i * 1000 + 2_000_000),
      })) }],
    })),
  });
}

describe('state writes caused by telemetry', () => {
  let server: TestServer;
  beforeAll(async () => { server = await startTestServer({}, 'sqlite'); });
  afterAll(async () => { await server.close(); });

  const post = async (body: string): Promise<number> =>
    (await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status;

  it('implicit deploys of first-seen versions are recorded with zero SQLite statements on the event loop', async () => {
    const services = ['svc-a', 'svc-b', 'svc-c', 'svc-d'];
    const spy = countMainThreadStatements();
    try {
      for (const v of ['1.0.0', '1.1.0']) expect(await post(traces(services, v))).toBe(200);
      // Every first-seen (service, version) still gets its implicit deploy record.
      const deploys = await eventually(async () => {
        const r = await server.api<{ deploys: Array<{ service: string; version: string; source: string }> }>('/api/deploys?limit=100');
        const implicit = r.body.deploys.filter((d) => d.source === 'implicit' && services.includes(d.service));
        return implicit.length === services.length * 2 ? implicit : undefined;
      }, 20_000);
      expect(new Set(deploys.map((d) => `${d.service}@${d.version}`)).size).toBe(8);
      // Known versions again: nothing new to record, and still nothing on the event loop.
      for (const v of ['1.0.0', '1.1.0']) expect(await post(traces(services, v))).toBe(200);
      expect((await server.api<{ spans?: unknown[] }>('/api/traces?service=svc-a&limit=1')).status).toBe(200);
      expect(spy.count()).toBe(0);
    } finally {
      spy.restore();
    }
  }, 60_000);
});
