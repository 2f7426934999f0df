import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import * as Sentry from '@sentry/node';
import pino from 'pino';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { eventually, stateUrlFor } from './helpers/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * Rules beyond RED rollups, end to end: metric queries over OTLP metric points (gauge,
 * histogram p95, counter rate), log pattern rates over OTLP log records, RED rules selecting
 * span and resource attributes, error rules fed by the real @sentry/node SDK, and per-operation
 * windows that refill after a restart. Real SDK exporters, a real HTTP receiver.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Alert { status: string; series: Record<string, string>; rule: { name: string }; value: number | null; links: Record<string, string> }
interface Hook { status: string; alerts: Alert[] }

let receiver: WebhookReceiver;
beforeAll(async () => { receiver = await startWebhookReceiver(); });
afterAll(async () => { await receiver.close(); });

const hooksFor = (name: string): Hook[] =>
  receiver.hooks.map((h) => h.body as unknown as Hook).filter((h) => h.alerts[0]?.rule.name === name);
const statuses = (name: string): string[] => hooksFor(name).map((h) => h.status);

async function withServer(rules: string, fn: (s: RunningServer) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-signals-'));
  writeFileSync(join(dataDir, 'rules.yaml'), `receivers:\n  - name: hook\n    url: ${receiver.url}\nrules:\n${rules}`);
  const server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  try {
    await fn(server);
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('metric rules over OTLP metric points', () => {
  it('gauge max per attribute, histogram p95 and counter rate: one firing and one resolved each', async () => {
    await withServer(`
  - name: queue-depth
    type: metric
    metric: queue.depth
    agg: max
    by: [service, attr.queue]
    threshold: 100
    window: 2s
  - name: job-p95
    type: metric
    metric: job.duration
    agg: p95
    threshold: 300
    window: 2s
  - name: failure-rate
    type: metric
    metric: jobs.failed
    agg: rate
    threshold: 20
    window: 2s
`, async (server) => {
      const mp = new MeterProvider({
        resource: resourceFromAttributes({ 'service.name': 'worker', 'service.version': '3.1.0' }),
        readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${server.url}/v1/metrics` }), exportIntervalMillis: 200 })],
      });
      const meter = mp.getMeter('test');
      let depth = 10;
      meter.createObservableGauge('queue.depth').addCallback((r) => {
        r.observe(depth, { queue: 'emails' });
        r.observe(5, { queue: 'sms' });
      });
      const hist = meter.createHistogram('job.duration', { unit: 'ms', advice: { explicitBucketBoundaries: [10, 50, 100, 250, 500, 1000] } });
      const failed = meter.createCounter('jobs.failed');
      const phase = async (ms: number, jobMs: number, failures: number): Promise<void> => {
        for (let t = 0; t < ms / 100; t++) {
          for (let i = 0; i < 20; i++) hist.record(jobMs + i);
          failed.add(failures);
          await sleep(100);
        }
      };
      try {
        await phase(2500, 20, 0.5); // healthy: depth 10, jobs ~20 ms, 5 failures/s
        expect(statuses('queue-depth')).toEqual([]);
        expect(statuses('job-p95')).toEqual([]);
        expect(statuses('failure-rate')).toEqual([]);
        depth = 500;
        await phase(2500, 700, 10); // broken: depth 500, jobs ~700 ms, 100 failures/s
        depth = 10;
        await phase(4000, 20, 0.5);
        // Each resolved notification leaves with its group's next flush (group_interval 5 s):
        // wait for it rather than for a fixed time, which a loaded machine can outrun.
        const settled = (): true | undefined =>
          (['queue-depth', 'job-p95', 'failure-rate'].every((r) => statuses(r).length >= 2) ? true : undefined);
        await eventually(settled, 10_000).catch(() => undefined);
        await phase(300, 20, 0.5);
        expect(statuses('queue-depth')).toEqual(['firing', 'resolved']);
        expect(hooksFor('queue-depth')[0].alerts[0].series).toEqual({ service: 'worker', queue: 'emails' });
        expect(hooksFor('queue-depth')[0].alerts[0].value).toBe(500);
        expect(statuses('job-p95')).toEqual(['firing', 'resolved']);
        expect(hooksFor('job-p95')[0].alerts[0].value).toBeGreaterThan(500);
        expect(statuses('failure-rate')).toEqual(['firing', 'resolved']);
      } finally {
        await mp.shutdown();
      }
    });
  });
});

describe('log pattern rate rules over OTLP log records', () => {
  it('counts records matching pattern and severity per attribute; ignores the rest', async () => {
    await withServer(`
  - name: payment-failures
    type: log
    match: { pattern: payment failed, min_severity: ERROR }
    by: [service, attr.region]
    op: '>='
    threshold: 5
    window: 2s
`, async (server) => {
      const lp = new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': 'shop', 'deployment.environment.name': 'prod' }),
        processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${server.url}/v1/logs` }), scheduledDelayMillis: 50 })],
      });
      const logger = lp.getLogger('test');
      try {
        for (let i = 0; i < 20; i++) {
          // Right words, too mild; severe, other words; severe, right words, other region (2 only).
          logger.emit({ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `payment failed for order ${i}, retrying`, attributes: { region: 'eu' } });
          logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: 'db timeout', attributes: { region: 'eu' } });
          if (i < 2) logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: `Payment FAILED for order ${i}`, attributes: { region: 'us' } });
        }
        await lp.forceFlush();
        await sleep(300);
        expect(statuses('payment-failures')).toEqual([]);
        for (let i = 0; i < 8; i++) logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: `Payment FAILED for order ${i}`, attributes: { region: 'eu' } });
        await lp.forceFlush();
        await eventually(() => (statuses('payment-failures').length === 1 ? true : undefined), 3000);
        // The resolved notification leaves with the group's next flush (group_interval 5 s).
        await eventually(() => (statuses('payment-failures').length === 2 ? true : undefined), 8000);
        await sleep(300);
        expect(statuses('payment-failures')).toEqual(['firing', 'resolved']);
        const fired = hooksFor('payment-failures')[0].alerts[0];
        expect(fired.series).toEqual({ service: 'shop', region: 'eu' });
        expect(fired.value).toBe(8);
        expect(fired.links.logs).toContain('/api/logs?service=shop&q=payment+failed');
      } finally {
        await lp.shutdown();
      }
    });
  });
});

describe('RED rules selecting attributes', () => {
  it('fans out by a span attribute and selects a resource attribute', async () => {
    await withServer(`
  - name: pay-errors
    type: threshold
    signal: error_rate
    select: { service: api, attributes: { cloud.region: eu } }
    by: [service, attr.http.route]
    threshold: 0.2
    window: 2s
    min_count: 10
`, async (server) => {
      const send = async (region: string, seconds: number): Promise<void> => {
        const provider = new BasicTracerProvider({
          resource: resourceFromAttributes({ 'service.name': 'api', 'cloud.region': region }),
          spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces` }), { scheduledDelayMillis: 50 })],
        });
        const tracer = provider.getTracer('test');
        for (let t = 0; t < seconds * 10; t++) {
          for (let i = 0; i < 10; i++) {
            for (const route of ['/pay', '/browse']) {
              const span = tracer.startSpan(`GET ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.route': route } });
              // /pay fails half the time; /browse never.
              if (route === '/pay' && i % 2 === 0) span.setStatus({ code: SpanStatusCode.ERROR });
              span.end();
            }
          }
          await sleep(100);
        }
        await provider.shutdown();
      };
      await send('us', 2);
      await sleep(300);
      expect(statuses('pay-errors')).toEqual([]);
      await send('eu', 2);
      await sleep(300);
      const hooks = hooksFor('pay-errors');
      expect(hooks.map((h) => h.status)).toEqual(['firing']);
      expect(hooks[0].alerts[0].series).toEqual({ service: 'api', 'http.route': '/pay' });
    });
  });
});

describe('error rules with @sentry/node', () => {
  it('new group, regression and a spike against the group\'s own baseline', async () => {
    await withServer(`
  - name: new-errors
    type: error
    event: new_group
  - name: regressions
    type: error
    event: regressed
  - name: error-spike
    type: error
    event: spike
    by: [service, group]
    window: 2s
    baseline: 6s
    factor: 4
    min_count: 10
`, async (server) => {
      Sentry.init({ dsn: server.defaultDsn, release: 'shop@1.0.0', environment: 'prod', defaultIntegrations: false });
      const token = server.adminToken ?? '';
      try {
        const steady = (n: number): void => { Sentry.captureException(new TypeError(`cart item ${n} has no price`)); };
        // 1 event/s for 7 s: one new group, no spike.
        for (let s = 0; s < 7; s++) { steady(s); await Sentry.flush(2000); await sleep(1000); }
        await sleep(300);
        expect(statuses('new-errors')).toEqual(['firing']);
        const fired = hooksFor('new-errors')[0].alerts[0];
        expect(fired.series.title).toContain('TypeError');
        expect(fired.links.errors).toContain(`/api/errors/${fired.series.group}`);
        expect(statuses('error-spike')).toEqual([]);
        // 20 events in a second: 20/2 s against 1/s → ratio 10 > 4.
        for (let i = 0; i < 20; i++) steady(100 + i);
        await Sentry.flush(2000);
        await eventually(() => (statuses('error-spike').length === 1 ? true : undefined), 3000);
        expect(hooksFor('error-spike')[0].alerts[0].series).toEqual({ service: fired.series.service, group: fired.series.group });
        expect(statuses('new-errors')).toEqual(['firing']);
        // Resolve the group; its next event is a regression.
        const res = await fetch(`${server.url}/api/errors/${fired.series.group}`, {
          method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ status: 'resolved' }),
        });
        expect(res.status).toBe(200);
        expect(statuses('regressions')).toEqual([]);
        steady(999);
        await Sentry.flush(2000);
        await eventually(() => (statuses('regressions').length === 1 ? true : undefined), 3000);
        expect(hooksFor('regressions')[0].alerts[0].series.group).toBe(fired.series.group);
      } finally {
        await Sentry.close(2000);
      }
    });
  });
});

describe('restart', () => {
  it('per-operation windows refill from persisted rollups: traffic before and after a restart adds up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-refill-'));
    writeFileSync(join(dataDir, 'rules.yaml'), `receivers:\n  - name: hook\n    url: ${receiver.url}\nrules:
  - name: refill
    type: threshold
    signal: error_rate
    select: { service: refill }
    by: [service, operation]
    threshold: 0.5
    window: 15s
    min_count: 250
`);
    const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' });
    const send = async (url: string, seconds: number): Promise<void> => {
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'refill' }),
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }), { scheduledDelayMillis: 50 })],
      });
      const tracer = provider.getTracer('test');
      for (let t = 0; t < seconds * 10; t++) {
        for (let i = 0; i < 10; i++) {
          const span = tracer.startSpan('POST /refund', { kind: SpanKind.SERVER });
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        }
        await sleep(100);
      }
      await provider.shutdown();
    };
    let server = await startServer(config, pino({ level: 'silent' }));
    try {
      // 200 failing requests: below min_count, so no verdict yet.
      await send(server.url, 2);
      await sleep(200);
      expect(statuses('refill')).toEqual([]);
      await server.close();
      server = await startServer(config, pino({ level: 'silent' }));
      // 100 more after the restart: only the refilled window holds the 250 the rule needs.
      await send(server.url, 1);
      await sleep(300);
      const hooks = hooksFor('refill');
      expect(hooks.map((h) => h.status)).toEqual(['firing']);
      expect(hooks[0].alerts[0].series).toEqual({ service: 'refill', operation: 'POST /refund' });
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
