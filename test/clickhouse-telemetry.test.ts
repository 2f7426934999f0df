import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { clickHouseEngineInstalled, startClickHouseEngine, type RunningEngine } from './clickhouse-engine/harness.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * `tightloop up --telemetry clickhouse://…` end to end: two tightloop nodes on one ClickHouse
 * database (the chdb test engine), the real OTel SDK exporting OTLP/protobuf to each; either node
 * returns the other's traces and logs, and RED from either node counts both nodes' requests.
 */

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;
let a: TestServer;
let b: TestServer;

interface SpanOut { spanId: string; name: string; service: string; attrs: Record<string, unknown> }

async function sendTrace(url: string, service: string, route: string, error: boolean): Promise<{ traceId: string; spanId: string }> {
  const resource = resourceFromAttributes({ 'service.name': service, 'service.version': '2.0.0', 'deployment.environment.name': 'prod' });
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }))] });
  const loggerProvider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${url}/v1/logs` }) })] });
  const root = tracerProvider.getTracer('shop').startSpan(`GET ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.route': route, 'http.response.status_code': error ? 500 : 200 } });
  const ctx = trace.setSpan(context.active(), root);
  tracerProvider.getTracer('shop').startSpan('SELECT cart', { kind: SpanKind.CLIENT }, ctx).end();
  loggerProvider.getLogger('shop').emit({ body: `cart served on ${route}`, severityNumber: SeverityNumber.WARN, context: ctx, attributes: { route } });
  if (error) root.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  root.end();
  await tracerProvider.forceFlush();
  await loggerProvider.forceFlush();
  await tracerProvider.shutdown();
  await loggerProvider.shutdown();
  return { traceId: root.spanContext().traceId, spanId: root.spanContext().spanId };
}

describe.skipIf(!installed)('tightloop on ClickHouse (--telemetry clickhouse://…), two nodes', () => {
  beforeAll(async () => {
    engine = await startClickHouseEngine();
    const telemetryUrl = engine.url(`e2e_${process.pid}`);
    a = await startTestServer({ telemetryUrl });
    b = await startTestServer({ telemetryUrl });
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await engine?.stop();
  });

  it('stores OTLP acknowledged by either node where both read it, and RED adds both nodes up', async () => {
    const service = 'cart';
    const viaA = await sendTrace(a.url, service, '/a', false);
    const viaB = await sendTrace(b.url, service, '/b', true);
    // Acknowledged means inserted: readable at once, from the other node too.
    for (const [reader, sent, route] of [[b, viaA, '/a'], [a, viaB, '/b']] as const) {
      const res = await reader.api<{ spans: SpanOut[]; logs: Array<{ body: string; spanId: string }> }>(`/api/traces/${sent.traceId}`);
      expect(res.status).toBe(200);
      expect(res.body.spans.map((s) => s.name).sort()).toEqual([`GET ${route}`, 'SELECT cart']);
      expect(res.body.spans.find((s) => s.spanId === sent.spanId)).toMatchObject({ service, attrs: { 'http.route': route } });
      expect(res.body.logs).toEqual([expect.objectContaining({ body: `cart served on ${route}`, spanId: sent.spanId })]);
    }
    const errors = await a.api<{ traces: Array<{ traceId: string }> }>(`/api/traces?service=${service}&status=error&from=now-1h`);
    expect(errors.body.traces.map((t) => t.traceId)).toEqual([viaB.traceId]);
    const logs = await b.api<{ logs: Array<{ body: string }> }>(`/api/logs?q=CART%20SERVED&from=now-1h`);
    expect(logs.body.logs.map((l) => l.body).sort()).toEqual(['cart served on /a', 'cart served on /b']);

    for (const node of [a, b]) {
      const red = await node.api<{ buckets: Array<{ count: number; errors: number }> }>(`/api/services/${service}/red?from=now-5m&step=60`);
      expect(red.body.buckets.reduce((x, y) => x + y.count, 0)).toBe(2);
      expect(red.body.buckets.reduce((x, y) => x + y.errors, 0)).toBe(1);
      const services = await node.api<{ services: Array<{ service: string; versions: string[]; count: number }> }>('/api/services');
      expect(services.body.services.find((s) => s.service === service)).toMatchObject({ versions: ['2.0.0'], count: 2 });
    }
  });

  it('refuses OTLP with 503 and Retry-After while ClickHouse is unreachable (nothing acknowledged is lost)', async () => {
    await engine.stop();
    const res = await fetch(`${a.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonTraceRequest(randomTraceId(), 2) });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });
});

describe('tightloop up --telemetry', () => {
  async function up(telemetry: string): Promise<{ code: number; err: string }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-telemetry-flag-'));
    let err = '';
    const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
    const outSpy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      return { code: await run(['node', 'tightloop', 'up', '--data-dir', dataDir, '--port', '0', '--log-level', 'silent', '--telemetry', telemetry]), err };
    } finally {
      errSpy.mockRestore();
      outSpy.mockRestore();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('refuses a URL that is not ClickHouse, and a ClickHouse it cannot reach, with exit 2 and no password shown', async () => {
    const bad = await up('postgres://u:hunter2@h/db');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--telemetry.*expected duckdb or clickhouse:\/\//);
    const down = await up('clickhouse://u:hunter2@127.0.0.1:1/db');
    expect(down.code).toBe(2);
    expect(down.err).toMatch(/cannot start/);
    expect(bad.err + down.err).not.toContain('hunter2');
  });
});
