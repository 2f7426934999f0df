import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metrics } from '../src/core/metrics.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { anyOf } from './helpers/match.js';

/**
 * GET /metrics: Prometheus text 0.0.4 behind a viewer token (roles.ts), accepted by promtool;
 * GET /api/health: 200 with status "degraded" and the failing components while it can serve.
 */

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

describe('GET /metrics', () => {
  it('needs a token and answers the text format promtool accepts, with the ingest counters', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toMatch(/^# TYPE tightloop_ingest_truncated_values_total counter\ntightloop_ingest_truncated_values_total \d+$/m);
    expect(text).toMatch(/^tightloop_ingest_invalid_utf8_total \d+$/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
  });
});

describe('OTLP ingest counters', () => {
  it('counts accepted spans and each answer by signal and status', async () => {
    const scrape = async () => (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.token}` } })).text();
    const series = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    const before = await scrape();
    const ok = await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonTraceRequest(randomTraceId(), 3) });
    expect(ok.status).toBe(200);
    expect((await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(415);
    expect((await fetch(`${server.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceLogs": 7}' })).status).toBe(400);
    const after = await scrape();
    for (const [name, added] of [
      ['tightloop_otlp_accepted_items_total{signal="traces"}', 3],
      ['tightloop_otlp_requests_total{signal="traces",status="200"}', 1],
      ['tightloop_otlp_requests_total{signal="traces",status="415"}', 1],
      ['tightloop_otlp_requests_total{signal="logs",status="400"}', 1],
    ] as const) expect([name, series(after, name) - series(before, name)]).toEqual([name, added]);
  });
});

describe('GET /api/health', () => {
  it('stays 200 and lists the degraded components, then ok again once they recover', async () => {
    expect(await (await fetch(`${server.url}/api/health`)).json()).toMatchObject({ status: 'ok' });
    metrics.setDegraded('notifier:pager', 'the last notification failed: HTTP 500');
    try {
      const res = await fetch(`${server.url}/api/health`);
      expect(res.status).toBe(200);
      const body = await res.json() as { status: string; degraded: unknown; ingest: unknown };
      expect(body.status).toBe('degraded');
      expect(body.degraded).toEqual([{ component: 'notifier:pager', reason: 'the last notification failed: HTTP 500' }]);
      expect(body.ingest).toMatchObject({ truncatedValues: anyOf(Number) });
    } finally {
      metrics.setDegraded('notifier:pager', undefined);
    }
    expect(await (await fetch(`${server.url}/api/health`)).json()).toMatchObject({ status: 'ok' });
  });
});
