import * as Sentry from '@sentry/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/server.js';
import { startErrorsServer, type ErrorsTestServer } from './helpers/errors.js';

/**
 * The real @sentry/node 11 in both trace lifecycles: its default streams spans (`span` items,
 * span v2 containers), `traceLifecycle: 'static'` sends `transaction` events. Either way the trace
 * is found by id with its parent/child structure, release, environment and status. Items that
 * tightloop does not store are counted per project.
 */

interface TraceSpan { spanId: string; parentSpanId: string; name: string; service: string; version: string; environment: string; statusCode: number; kind: number; attrs: Record<string, unknown> }

let t: ErrorsTestServer;
let key = '';
beforeAll(async () => { t = await startErrorsServer(); key = new URL(t.server.defaultDsn).username; });
afterAll(async () => { await t.close(); });

async function traceOf(traceId: string, n: number): Promise<TraceSpan[]> {
  return eventually(async () => {
    const r = await t.api<{ spans: TraceSpan[] }>(`/api/traces/${traceId}`);
    return r.status === 200 && r.body.spans.length >= n ? r.body.spans : undefined;
  });
}

async function checkout(): Promise<{ traceId: string; rootId: string; childId: string }> {
  // A new trace each time: the scope keeps its trace id across Sentry.init calls.
  return Sentry.startNewTrace(() => Sentry.startSpan({ name: 'POST /checkout', op: 'http.server' }, async (root) => {
    const childId = await Sentry.startSpan({ name: 'SELECT orders', op: 'db.query', attributes: { 'db.rows': 3 } }, async (child) => {
      await new Promise((r) => setTimeout(r, 5));
      return child.spanContext().spanId;
    });
    Sentry.startSpan({ name: 'charge card', op: 'payment', parentSpan: root }, (s) => { s.setStatus({ code: 2, message: 'card_declined' }); });
    return { traceId: root.spanContext().traceId, rootId: root.spanContext().spanId, childId };
  }));
}

function checkTrace(spans: TraceSpan[], ids: { rootId: string; childId: string }): void {
  const root = spans.find((s) => s.spanId === ids.rootId);
  const child = spans.find((s) => s.spanId === ids.childId);
  expect(root).toMatchObject({ name: 'POST /checkout', service: 'default', version: 'shop@2.0.0', environment: 'staging', parentSpanId: '', kind: 2 });
  expect(child).toMatchObject({ name: 'SELECT orders', parentSpanId: ids.rootId, kind: 3 });
  expect(spans.filter((s) => s.name === 'charge card')).toMatchObject([{ statusCode: 2, parentSpanId: ids.rootId }]);
}

describe('@sentry/node 11 tracing', () => {
  it('default lifecycle (streamed span v2 items): the trace is found by id', async () => {
    Sentry.init({ dsn: t.server.defaultDsn, release: 'shop@2.0.0', environment: 'staging', tracesSampleRate: 1, defaultIntegrations: false });
    expect(Sentry.getClient()?.getOptions().traceLifecycle).toBe('stream');
    const ids = await checkout();
    await Sentry.flush(5000);
    const spans = await traceOf(ids.traceId, 3);
    checkTrace(spans, ids);
    expect(spans.find((s) => s.spanId === ids.childId)?.attrs).toMatchObject({ 'db.rows': 3, 'sentry.op': 'db.query' });
    await Sentry.close(2000);
  });

  it('static lifecycle (transaction events): the trace is found by id', async () => {
    Sentry.init({ dsn: t.server.defaultDsn, release: 'shop@2.0.0', environment: 'staging', tracesSampleRate: 1, defaultIntegrations: false, traceLifecycle: 'static' });
    const ids = await checkout();
    await Sentry.flush(5000);
    checkTrace(await traceOf(ids.traceId, 3), ids);
    await Sentry.close(2000);
  });
});

describe('span items on the wire', () => {
  const post = (body: string) => fetch(`${t.url}/api/1/envelope/?sentry_key=${key}`, { method: 'POST', body });

  it('a span container with typed attributes becomes spans; invalid ids and unknown item types are counted', async () => {
    const traceId = 'aa'.repeat(16);
    const now = Date.now() / 1000;
    const container = { version: 2, items: [
      { trace_id: traceId, span_id: '1'.repeat(16), name: 'GET /a', start_timestamp: now, end_timestamp: now + 0.25, status: 'ok', is_segment: true,
        attributes: { 'sentry.release': { type: 'string', value: 'web@1' }, 'http.response.status_code': { type: 'integer', value: 200 }, big: { type: 'string', value: 'x'.repeat(10_000) } } },
      { trace_id: traceId, span_id: 'nothex', name: 'bad id', start_timestamp: now, end_timestamp: now },
    ] };
    const payload = JSON.stringify(container);
    const res = await post(`{}\n{"type":"span","item_count":2,"content_type":"application/vnd.sentry.items.span.v2+json"}\n${payload}\n{"type":"client_report"}\n{}\n{"type":"profile_chunk"}\n{}\n`);
    expect(res.status).toBe(200);
    const [span] = await traceOf(traceId, 1);
    expect(span).toMatchObject({ name: 'GET /a', version: 'web@1', statusCode: 1, kind: 2 });
    expect(span.attrs['http.response.status_code']).toBe(200);
    expect(String(span.attrs.big)).toMatch(/^x{4096}…\[truncated 5904 chars\]$/);
    const projects = await t.api<{ projects: { id: number; unstoredItems: Record<string, number> }[] }>('/api/projects');
    expect(projects.body.projects.find((p) => p.id === 1)?.unstoredItems).toMatchObject({ client_report: 1, profile_chunk: 1, 'span (invalid ids)': 1 });
  });

  it('a span item of another content type → 415; more than 1,000 spans → 413', async () => {
    const r415 = await post('{}\n{"type":"span","content_type":"application/json"}\n{"items":[]}\n');
    expect(r415.status).toBe(415);
    const items = Array.from({ length: 1001 }, () => ({}));
    const r413 = await post(`{}\n{"type":"span","content_type":"application/vnd.sentry.items.span.v2+json"}\n${JSON.stringify({ version: 2, items })}\n`);
    expect(r413.status).toBe(413);
    expect(((await r413.json()) as { error: { code: string } }).error.code).toBe('too_many_items');
  });
});
