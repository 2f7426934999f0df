import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPTraceExporter as TraceJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as TraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter as LogJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as LogProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as MetricJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as MetricProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { eventually, startTestServer, type TestServer } from './helpers/server.js';

/**
 * The real OpenTelemetry JS SDK, with its real OTLP exporters in both encodings, sends traces,
 * logs with trace context and metrics to a running tightloop; the API must give them back.
 */

interface SpanOut { spanId: string; parentSpanId: string; name: string; kind: number; statusCode: number;
  service: string; version: string; environment: string; attrs: Record<string, unknown>;
  events: Array<{ name: string; attrs: Record<string, unknown> }>; durationNs: number }
interface LogOut { body: string; traceId: string; spanId: string; severityNumber: number; service: string; attrs: Record<string, unknown> }

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const protocols = [
  { name: 'http/json', Trace: TraceJson, Log: LogJson, Metric: MetricJson },
  { name: 'http/protobuf', Trace: TraceProto, Log: LogProto, Metric: MetricProto },
] as const;

describe.each(protocols)('OTel SDK over $name', ({ name, Trace, Log, Metric }) => {
  const service = `checkout-${name.replace('/', '-')}`;
  const resource = resourceFromAttributes({
    'service.name': service,
    'service.version': '1.4.2',
    'deployment.environment.name': 'prod',
  });
  let traceId = '';
  let rootSpanId = '';

  it('sends a trace with a log in its context, and the API returns both', async () => {
    const tracerProvider = new BasicTracerProvider({
      resource,
      spanProcessors: [new SimpleSpanProcessor(new Trace({ url: `${server.url}/v1/traces` }))],
    });
    const loggerProvider = new LoggerProvider({
      resource,
      processors: [new SimpleLogRecordProcessor({ exporter: new Log({ url: `${server.url}/v1/logs` }) })],
    });
    const tracer = tracerProvider.getTracer('shop');
    const logger = loggerProvider.getLogger('shop');

    const root = tracer.startSpan('POST /checkout', {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'POST', 'http.route': '/checkout', 'http.response.status_code': 500 },
    });
    traceId = root.spanContext().traceId;
    rootSpanId = root.spanContext().spanId;
    const ctx = trace.setSpan(context.active(), root);
    const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, ctx);
    child.addEvent('rows fetched', { 'db.rows': 3 });
    child.end();
    logger.emit({
      body: `payment declined for order 42 (${name})`,
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      attributes: { 'order.id': '42' },
      context: ctx,
    });
    root.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
    root.end();
    await tracerProvider.forceFlush();
    await loggerProvider.forceFlush();

    // Acknowledged means committed: the trace is queryable at once.
    const res = await server.api<{ spans: SpanOut[]; logs: LogOut[] }>(`/api/traces/${traceId}`);
    expect(res.status).toBe(200);
    expect(res.body.spans).toHaveLength(2);
    const rootOut = res.body.spans.find((s) => s.spanId === rootSpanId);
    const childOut = res.body.spans.find((s) => s.spanId === child.spanContext().spanId);
    expect(rootOut).toMatchObject({
      name: 'POST /checkout', kind: 2, statusCode: 2, parentSpanId: '',
      service, version: '1.4.2', environment: 'prod',
      attrs: { 'http.request.method': 'POST', 'http.response.status_code': 500 },
    });
    expect(childOut).toMatchObject({ name: 'SELECT orders', kind: 3, parentSpanId: rootSpanId, attrs: { 'db.system': 'postgresql' } });
    expect(childOut?.events).toEqual([expect.objectContaining({ name: 'rows fetched', attrs: { 'db.rows': 3 } })]);
    expect(res.body.logs).toHaveLength(1);
    expect(res.body.logs[0]).toMatchObject({
      body: `payment declined for order 42 (${name})`, traceId, spanId: rootSpanId,
      severityNumber: SeverityNumber.ERROR, service, attrs: { 'order.id': '42' },
    });

    await tracerProvider.shutdown();
    await loggerProvider.shutdown();
  });

  it('finds the trace and the log by search, and the service with its RED', async () => {
    const traces = await server.api<{ traces: Array<{ traceId: string; rootName: string; errorCount: number }> }>(
      `/api/traces?service=${service}&status=error&from=now-1h`);
    expect(traces.body.traces.map((t) => t.traceId)).toContain(traceId);
    expect(traces.body.traces.find((t) => t.traceId === traceId)).toMatchObject({ rootName: 'POST /checkout', errorCount: 1 });

    const logs = await server.api<{ logs: LogOut[] }>(`/api/logs?q=PAYMENT%20DECLINED&service=${service}&severity=error&attr.order.id=42`);
    expect(logs.body.logs.map((l) => l.traceId)).toEqual([traceId]);
    const none = await server.api<{ logs: LogOut[] }>(`/api/logs?q=payment&service=${service}&severity=fatal`);
    expect(none.body.logs).toEqual([]);

    const services = await server.api<{ services: Array<{ service: string; versions: string[]; environments: string[] }> }>('/api/services');
    expect(services.body.services.find((s) => s.service === service)).toMatchObject({ versions: ['1.4.2'], environments: ['prod'] });

    // Rollups are written as seconds close; the RED series must count the one request, as an error.
    const red = await eventually(async () => {
      const r = await server.api<{ buckets: Array<{ count: number; errors: number; p95Ms: number | null }> }>(
        `/api/services/${service}/red?from=now-5m&step=60`);
      const total = r.body.buckets.reduce((a, b) => a + b.count, 0);
      return total > 0 ? r.body.buckets : undefined;
    });
    expect(red.reduce((a, b) => a + b.count, 0)).toBe(1);
    expect(red.reduce((a, b) => a + b.errors, 0)).toBe(1);
    expect(red.find((b) => b.count > 0)?.p95Ms).toBeGreaterThanOrEqual(0);
  });

  it('sends metrics (counter, histogram, gauge) and the metrics query aggregates them', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new Metric({ url: `${server.url}/v1/metrics` }),
      exportIntervalMillis: 3_600_000,
    });
    const meterProvider = new MeterProvider({ resource, readers: [reader] });
    const meter = meterProvider.getMeter('shop');
    const orders = meter.createCounter('orders.placed');
    const latency = meter.createHistogram('checkout.duration', { unit: 'ms' });
    const queue = meter.createGauge('queue.depth');
    orders.add(5, { region: 'eu' });
    orders.add(2, { region: 'us' });
    for (let i = 1; i <= 100; i++) latency.record(i);
    queue.record(17);
    await meterProvider.forceFlush();

    const sum = await server.api<{ series: Array<{ labels: Record<string, string>; points: Array<[number, number | null]> }> }>(
      `/api/metrics/query?name=orders.placed&service=${service}&agg=max&groupBy=region&from=now-10m&step=10m`);
    expect(sum.status).toBe(200);
    const byRegion = Object.fromEntries(sum.body.series.map((s) => [s.labels.region, Math.max(...s.points.map((p) => p[1] ?? 0))]));
    expect(byRegion).toEqual({ eu: 5, us: 2 });

    const p95 = await server.api<{ series: Array<{ points: Array<[number, number | null]> }> }>(
      `/api/metrics/query?name=checkout.duration&service=${service}&agg=p95&from=now-10m&step=10m`);
    const p95Value = p95.body.series[0].points.map((p) => p[1]).find((v) => v !== null);
    // The SDK's default buckets around 95 are (75, 100]; interpolation lands inside them.
    expect(p95Value).toBeGreaterThan(75);
    expect(p95Value).toBeLessThanOrEqual(100);

    const gauge = await server.api<{ series: Array<{ points: Array<[number, number | null]> }> }>(
      `/api/metrics/query?name=queue.depth&service=${service}&agg=avg&from=now-10m&step=10m`);
    expect(gauge.body.series[0].points.map((p) => p[1]).filter((v) => v !== null)).toEqual([17]);
    await meterProvider.shutdown();
  });
});
