import { gzipSync, deflateSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorGroup, StoredErrorEvent } from '../src/errors/index.js';
import { eventually } from './helpers/server.js';
import { startErrorsServer, type ErrorsTestServer } from './helpers/errors.js';

/**
 * Envelope edge cases over HTTP (auth, encodings, malformed input, limits) and OTel-only
 * services whose exceptions become error groups linked to their traces.
 */

let t: ErrorsTestServer;
let key = '';
let otherKey = '';

beforeAll(async () => {
  t = await startErrorsServer();
  key = new URL(t.server.defaultDsn).username;
  const other = await t.api<{ dsn: string }>('/api/projects', { method: 'POST', body: { name: 'other' } });
  otherKey = new URL(other.body.dsn).username;
});
afterAll(async () => { await t.close(); });

function envelope(eventId: string, message: string, opts: { withLength?: boolean } = {}): Buffer {
  const ev = JSON.stringify({ event_id: eventId, message, level: 'error', release: 'r1', timestamp: Date.now() / 1000 });
  const item = opts.withLength === false ? JSON.stringify({ type: 'event' }) : JSON.stringify({ type: 'event', length: Buffer.byteLength(ev) });
  return Buffer.from(`${JSON.stringify({ event_id: eventId })}\n${item}\n${ev}\n${JSON.stringify({ type: 'client_report' })}\n{"discarded_events":[]}\n${JSON.stringify({ type: 'future_thing', length: 3 })}\nxyz\n`);
}

async function post(path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const res = await fetch(t.url + path, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': 'application/x-sentry-envelope', ...headers } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { id?: string; error?: { code: string; message: string } } };
}

async function stillServing(): Promise<void> {
  const id = crypto.randomUUID().replace(/-/g, '');
  const r = await post(`/api/1/envelope/?sentry_key=${key}`, envelope(id, 'still serving'));
  expect(r).toMatchObject({ status: 200, body: { id } });
}

describe('Sentry envelope ingest', () => {
  it('accepts items with and without length, gzip and deflate, key from query, header or dsn; skips unknown types', async () => {
    const ids = [0, 1, 2, 3].map(() => crypto.randomUUID().replace(/-/g, ''));
    expect((await post(`/api/1/envelope/?sentry_key=${key}`, envelope(ids[0], 'plain'))).body).toEqual({ id: ids[0] });
    expect((await post('/api/1/envelope/', gzipSync(envelope(ids[1], 'gz', { withLength: false })),
      { 'content-encoding': 'gzip', 'x-sentry-auth': `Sentry sentry_version=7, sentry_key=${key}, sentry_client=test/1` })).status).toBe(200);
    expect((await post(`/api/1/envelope/?sentry_key=${key}`, deflateSync(envelope(ids[2], 'deflate')), { 'content-encoding': 'deflate' })).status).toBe(200);
    const withDsn = Buffer.from(`{"event_id":"${ids[3]}","dsn":"http://${key}@localhost/1"}\n{"type":"event"}\n{"message":"dsn auth"}\n`);
    expect((await post('/api/1/envelope/', withDsn)).body).toEqual({ id: ids[3] });
    const store = await post(`/api/1/store/?sentry_key=${key}`, JSON.stringify({ message: 'old store endpoint' }), { 'content-type': 'application/json' });
    expect(store.status).toBe(200);
  });

  it('unknown key → 401, key of another project → 403, missing key → 401', async () => {
    const body = envelope(crypto.randomUUID().replace(/-/g, ''), 'x');
    expect((await post('/api/1/envelope/?sentry_key=0123456789abcdef0123456789abcdef', body)).status).toBe(401);
    const forbidden = await post(`/api/1/envelope/?sentry_key=${otherKey}`, body);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error?.code).toBe('forbidden');
    expect((await post('/api/1/envelope/', body)).body.error?.code).toBe('unauthorized');
    await stillServing();
  });

  it('malformed envelope, truncated gzip, oversize item → precise 4xx; the server keeps serving', async () => {
    const bad = await post(`/api/1/envelope/?sentry_key=${key}`, 'this is not an envelope\n');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_envelope' });
    const shortItem = await post(`/api/1/envelope/?sentry_key=${key}`, '{}\n{"type":"event","length":500}\n{"message":"x"}\n');
    expect(shortItem.body.error?.message).toContain('declares 500 bytes');
    const badEvent = await post(`/api/1/envelope/?sentry_key=${key}`, '{}\n{"type":"event"}\n{not json\n');
    expect(badEvent.status).toBe(400);
    // Event items are parsed where they are committed; a bad one still fails its whole request.
    const spoiled = await post(`/api/1/envelope/?sentry_key=${key}`, '{}\n{"type":"event"}\n{"message":"spoiled by its neighbour"}\n{"type":"event"}\n[1]\n');
    expect(spoiled).toMatchObject({ status: 400, body: { error: { code: 'invalid_envelope', message: 'malformed envelope: event item is not a JSON object' } } });
    expect((await t.api<{ groups: unknown[] }>('/api/errors?q=spoiled%20by')).body.groups).toEqual([]);
    const gz = gzipSync(envelope(crypto.randomUUID().replace(/-/g, ''), 'truncated'));
    const truncated = await post(`/api/1/envelope/?sentry_key=${key}`, gz.subarray(0, gz.length - 12), { 'content-encoding': 'gzip' });
    expect(truncated.status).toBe(400);
    expect(truncated.body.error).toMatchObject({ code: 'invalid_encoding' });
    const huge = `{}\n{"type":"event"}\n{"message":"${'x'.repeat(1_200_000)}"}\n`;
    const oversize = await post(`/api/1/envelope/?sentry_key=${key}`, huge);
    expect(oversize.status).toBe(413);
    expect(oversize.body.error).toMatchObject({ code: 'item_too_large' });
    expect((await post(`/api/1/envelope/?sentry_key=${key}`, '{}\n{"type":"event","length":-1}\n')).status).toBe(400);
    await stillServing();
  });

  it('sessions feed release health (crash-free rate per release)', async () => {
    const body = [
      '{}',
      '{"type":"session"}', '{"sid":"a","init":true,"status":"ok","attrs":{"release":"r9","environment":"production"}}',
      '{"type":"session"}', '{"sid":"a","init":false,"status":"crashed","attrs":{"release":"r9","environment":"production"}}',
      '{"type":"sessions"}', '{"aggregates":[{"started":"2026-01-01T00:00:00Z","exited":7,"crashed":1,"errored":1}],"attrs":{"release":"r9","environment":"production"}}',
    ].join('\n');
    expect((await post(`/api/1/envelope/?sentry_key=${key}`, body)).status).toBe(200);
    const r = await t.api<{ releases: { release: string; sessions: number; crashed: number; crashFreeRate: number }[] }>('/api/projects/1/release-health');
    expect(r.body.releases).toEqual([expect.objectContaining({ release: 'r9', sessions: 10, crashed: 2, crashFreeRate: 0.8 })]);
  });

  it('the bearer-token API still requires a token; ingest does not', async () => {
    expect((await fetch(`${t.url}/api/errors`)).status).toBe(401);
    expect((await fetch(`${t.url}/api/projects`)).status).toBe(401);
  });
});

describe('stored payloads', () => {
  it('a gzip envelope is stored as received and read back as the event', async () => {
    const id = crypto.randomUUID().replace(/-/g, '');
    const r = await post(`/api/1/envelope/?sentry_key=${key}`, gzipSync(envelope(id, 'gzip stored 7')), { 'content-encoding': 'gzip' });
    expect(r.status).toBe(200);
    const g = await eventually(async () => (await t.api<{ groups: ErrorGroup[] }>('/api/errors?q=gzip%20stored')).body.groups[0]);
    const detail = await t.api<{ latestEvent: { eventId: string; payload: { message: string } } }>(`/api/errors/${g.id}`);
    expect(detail.body.latestEvent).toMatchObject({ eventId: id, payload: { message: 'gzip stored 7' } });
  });

  it('a small payload (stored as it is) and a large one (deflated) read back as the event', async () => {
    for (const message of ['small stored 8', `large stored 9 ${'x'.repeat(3000)}`]) {
      const id = crypto.randomUUID().replace(/-/g, '');
      expect((await post(`/api/1/envelope/?sentry_key=${key}`, envelope(id, message))).status).toBe(200);
      const q = encodeURIComponent(message.slice(0, 14));
      const g = await eventually(async () => (await t.api<{ groups: ErrorGroup[] }>(`/api/errors?q=${q}`)).body.groups[0]);
      const detail = await t.api<{ latestEvent: { eventId: string; payload: { message: string } } }>(`/api/errors/${g.id}`);
      expect(detail.body.latestEvent).toMatchObject({ eventId: id, payload: { message } });
    }
  });
});

describe('OTel-only service', () => {
  it('a log record with exception.* attributes becomes an error event with its trace', async () => {
    const traceId = crypto.randomUUID().replace(/-/g, '');
    const body = JSON.stringify({ resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'worker-otel' } }] },
      scopeLogs: [{ logRecords: [{
        timeUnixNano: String(Date.now() * 1e6), severityNumber: 17, body: { stringValue: 'job failed' }, traceId, spanId: 'aaaaaaaaaaaaaaaa',
        attributes: [{ key: 'exception.type', value: { stringValue: 'TimeoutError' } }, { key: 'exception.message', value: { stringValue: 'job 77 timed out' } }],
      }] }],
    }] });
    const res = await fetch(`${t.url}/v1/logs`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    const g = await eventually(async () => (await t.api<{ groups: ErrorGroup[] }>('/api/errors?service=worker-otel')).body.groups[0]);
    expect(g).toMatchObject({ title: 'TimeoutError: job 77 timed out', latestTraceId: traceId, components: ['exception', 'TimeoutError', 'job <num> timed out'] });
  });

  it('an exception recorded on a span becomes an error group linked to its trace', async () => {
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'billing-otel', 'service.version': '3.1.0', 'deployment.environment.name': 'prod' }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${t.url}/v1/traces` }))],
    });
    const tracer = provider.getTracer('billing');
    let traceId = '';
    function chargeInvoice(): never { throw new Error('invoice 981 could not be charged'); }
    for (let i = 0; i < 2; i++) {
      tracer.startActiveSpan('POST /invoices', (span) => {
        traceId = span.spanContext().traceId;
        try { chargeInvoice(); } catch (e) { span.recordException(e as Error); }
        span.end();
      });
      // Export (and so commit) each span before the next, so "latest" is well defined.
      await provider.forceFlush();
    }
    await provider.forceFlush();
    await provider.shutdown();
    expect(trace.getActiveSpan()).toBeUndefined();
    const g = await eventually(async () => {
      const r = await t.api<{ groups: ErrorGroup[] }>('/api/errors?service=billing-otel');
      return r.body.groups.find((x) => x.count === 2);
    });
    expect(g).toMatchObject({ firstRelease: '3.1.0', latestTraceId: traceId, title: 'Error: invoice 981 could not be charged' });
    expect(g.components[0]).toBe('frames');
    expect(g.components.some((c) => c.endsWith(':chargeInvoice'))).toBe(true);
    const tr = await t.api<{ errors: StoredErrorEvent[] }>(`/api/traces/${traceId}`);
    expect(tr.body.errors.map((e) => e.groupId)).toEqual([g.id]);
    expect(tr.body.errors[0].source).toBe('otel-span');
  });
});
