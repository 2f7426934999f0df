import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import type { Deploy, Verification } from '../src/deploys/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { callApi, stateUrlFor } from './helpers/server.js';

/**
 * Configured metric checks end to end: services.yaml names the checks; two versions of a service
 * export SERVER spans and metrics (a gauge and a histogram) through the real OTel SDK over
 * OTLP/protobuf; verification compares the versions' metric points (by `service.version`) and
 * stores the evidence as `metric:<name>` signals.
 */

let server: RunningServer;
let dataDir: string;
let token: string;

const CHECKS = `
    metricChecks:
      - metric: job.duration
        agg: p95
        tolerance: 0.25
        minSamples: 15
      - name: emails-queue
        metric: queue.depth
        agg: avg
        tolerance: 0.2
        attributes: { queue: emails }
        minSamples: 15`;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-metric-checks-'));
  writeFileSync(join(dataDir, 'services.yaml'), `services:
  - name: billing
    environment: prod${CHECKS}
  - name: ledger
    environment: prod${CHECKS}
`);
  const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' });
  server = await startServer(config, pino({ level: 'silent' }), {
    deploys: { verify: { maxDurationS: 60, minSamples: 60, minReferenceSamples: 100 }, tickMs: 100 },
  });
  token = server.adminToken ?? '';
});
afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, token, method, path, body);
}

interface Profile { jobMs: number; depth: number }

/** One version: healthy SERVER spans, a job-duration histogram and a per-queue depth gauge. */
function version(service: string, v: string, seed: number) {
  const resource = resourceFromAttributes({ 'service.name': service, 'service.version': v, 'deployment.environment.name': 'prod' });
  const tracing = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces` }), { scheduledDelayMillis: 50, maxExportBatchSize: 1000 })],
  });
  const metrics = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${server.url}/v1/metrics` }), exportIntervalMillis: 100 })],
  });
  const tracer = tracing.getTracer('metric-checks-test');
  const meter = metrics.getMeter('metric-checks-test');
  let s = seed;
  const rand = (): number => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  const gauss = (): number => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  let profile: Profile = { jobMs: 20, depth: 50 };
  meter.createObservableGauge('queue.depth').addCallback((r) => {
    r.observe(profile.depth * (1 + 0.1 * gauss()), { queue: 'emails' });
    r.observe(1000, { queue: 'sms' }); // filtered out by the check's attributes
  });
  const hist = meter.createHistogram('job.duration', { unit: 'ms', advice: { explicitBucketBoundaries: [5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200] } });
  return {
    emit(n: number, p: Profile): void {
      profile = p;
      const now = Date.now();
      for (let i = 0; i < n; i++) {
        const ms = 40 * Math.exp(0.3 * gauss());
        tracer.startSpan('POST /charge', { kind: SpanKind.SERVER, startTime: now - ms }).end(now);
        hist.record(p.jobMs * Math.exp(0.2 * gauss()));
      }
    },
    async close(): Promise<void> { await tracing.shutdown(); await metrics.shutdown(); },
  };
}

type Version = ReturnType<typeof version>;

async function drive(vs: Version[], profiles: Profile[], done: () => boolean | Promise<boolean>, maxS: number): Promise<void> {
  const until = Date.now() + maxS * 1000;
  while (Date.now() < until) {
    vs.forEach((v, i) => v.emit(25, profiles[i])); // 250 requests and jobs per second per version
    await new Promise((r) => setTimeout(r, 100));
    if (await done()) return;
  }
}

async function deployOf(service: string, v: string): Promise<Deploy & { verification: Verification | null }> {
  const r = await api<{ deploys: Deploy[] }>('GET', `/api/deploys?service=${service}&version=${v}`);
  expect(r.body.deploys).toHaveLength(1);
  return (await api<Deploy & { verification: Verification | null }>('GET', `/api/deploys/${r.body.deploys[0].id}`)).body;
}

const decided = (service: string, v: string) => async (): Promise<boolean> => {
  const r = await api<{ deploys: Deploy[] }>('GET', `/api/deploys?service=${service}&version=${v}`);
  return r.body.deploys[0] !== undefined && ['passed', 'failed', 'inconclusive'].includes(r.body.deploys[0].status);
};

const HEALTHY: Profile = { jobMs: 20, depth: 50 };

describe('configured metric checks with real OTel SDK metrics', () => {
  it('a canary whose job p95 is 3× worse fails on metric:job.duration, with the evidence', async () => {
    const v1 = version('billing', '1.0.0', 11), v2 = version('billing', '1.1.0', 23);
    await drive([v1], [HEALTHY], () => false, 2);
    const rec = await api<Deploy>('POST', '/api/deploys', { service: 'billing', version: '1.1.0', environment: 'prod' });
    expect(rec.status).toBe(201);
    await drive([v1, v2], [HEALTHY, { jobMs: 60, depth: 50 }], decided('billing', '1.1.0'), 40);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('billing', '1.1.0');
    expect(d.status).toBe('failed');
    const v = d.verification!;
    expect(v.reason).toMatch(/metric job\.duration worse/);
    const job = v.evidence.find((e) => e.signal === 'metric:job.duration')!;
    expect(job.outcome).toBe('fail');
    expect(job.candidate.median / job.baseline.median).toBeGreaterThan(2);
    expect(job.candidate.points).toBeGreaterThanOrEqual(15);
    expect(job.stats.rankZ).toBeGreaterThanOrEqual(job.stats.rankZCritFail);
    expect(job.stats.probCandidateWorse).toBeGreaterThan(0.8);
    // The traffic signals did not cause it; the other check saw the same depth in both versions.
    expect(v.evidence.find((e) => e.signal === 'error_rate')!.outcome).not.toBe('fail');
    expect(v.evidence.find((e) => e.signal === 'latency')!.outcome).not.toBe('fail');
    expect(v.evidence.find((e) => e.signal === 'metric:emails-queue')!.outcome).not.toBe('fail');
  }, 60_000);

  it('a healthy canary passes every metric check (the attribute filter keeps other queues out)', async () => {
    const v1 = version('ledger', '2.0.0', 31), v2 = version('ledger', '2.1.0', 47);
    await drive([v1], [HEALTHY], () => false, 2);
    const rec = await api<Deploy>('POST', '/api/deploys', { service: 'ledger', version: '2.1.0', environment: 'prod' });
    expect(rec.status).toBe(201);
    await drive([v1, v2], [HEALTHY, HEALTHY], decided('ledger', '2.1.0'), 50);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('ledger', '2.1.0');
    const v = d.verification!;
    expect(d.status, JSON.stringify(v)).toBe('passed');
    expect(v.reason).toMatch(/metric job\.duration, emails-queue/);
    const queue = v.evidence.find((e) => e.signal === 'metric:emails-queue')!;
    expect(queue.outcome).toBe('pass');
    expect(queue.baseline.median).toBeGreaterThan(40);
    expect(queue.baseline.median).toBeLessThan(60); // the sms queue (1000) is not in it
    expect(v.evidence.find((e) => e.signal === 'metric:job.duration')!.outcome).toBe('pass');
  }, 70_000);
});
