import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestServer, type TestServer } from './helpers/server.js';

/**
 * OTLP/JSON requests written after the OTLP specification's JSON examples (examples/*.json in
 * opentelemetry-proto: one resource `service.name`, a scope with name and version, attributes of
 * every value type), with timestamps moved to the previous hour. Every metric type is stored and
 * queryable with the values it carries; cumulative and delta sums give the same sum and rate.
 */

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

const HOUR_US = 3600e6;
/** The start of the previous hour: every point lands in one 1-hour query bucket. */
const hourUs = Math.floor(Date.now() * 1000 / HOUR_US) * HOUR_US - HOUR_US;
const ns = (offsetS: number): string => String(BigInt(hourUs + offsetS * 1e6) * 1000n);

const resource = (service: string) => ({
  attributes: [
    { key: 'service.name', value: { stringValue: service } },
    { key: 'service.version', value: { stringValue: '1.0.0' } },
  ],
});
const scope = { name: 'my.library', version: '1.0.0', attributes: [{ key: 'my.scope.attribute', value: { stringValue: 'some scope attribute' } }] };
const pointAttrs = [{ key: 'my.metric.attr', value: { stringValue: 'some value' } }];

function metricsRequest(service: string, metrics: unknown[]): string {
  return JSON.stringify({ resourceMetrics: [{ resource: resource(service), scopeMetrics: [{ scope, metrics }] }] });
}

async function post(signal: 'traces' | 'logs' | 'metrics', body: string): Promise<unknown> {
  const res = await fetch(`${server.url}/v1/${signal}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  expect(res.status).toBe(200);
  return res.json();
}

interface Series { labels: Record<string, string>; points: [number, number | null][] }

/** The one value of `name` over the fixtures' hour (step 1h), or null when the query has none. */
async function value(name: string, agg: string, service: string): Promise<number | null> {
  const from = hourUs / 1000, to = (hourUs + HOUR_US) / 1000;
  const r = await server.api<{ series: Series[] }>(`/api/metrics/query?name=${encodeURIComponent(name)}&agg=${agg}&service=${service}&from=${from}&to=${to}&step=1h`);
  expect(r.status).toBe(200);
  const pts = r.body.series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  expect(pts.length).toBeLessThanOrEqual(1);
  return pts.length === 0 ? null : pts[0][1];
}

async function settled(name: string, agg: string, service: string): Promise<number> {
  return eventually(async () => (await value(name, agg, service)) ?? undefined);
}

describe('OTLP specification JSON examples: metrics of every type', () => {
  beforeAll(async () => {
    await post('metrics', metricsRequest('spec-metrics', [
      { name: 'my.counter', unit: '1', description: 'I am a Counter',
        sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [
          { asDouble: 5, startTimeUnixNano: ns(0), timeUnixNano: ns(60), attributes: pointAttrs },
          { asDouble: 3, startTimeUnixNano: ns(60), timeUnixNano: ns(120), attributes: pointAttrs }] } },
      { name: 'my.cumulative.counter', unit: '1', description: 'I am a cumulative Counter',
        sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [
          { asInt: '5', startTimeUnixNano: ns(0), timeUnixNano: ns(60), attributes: pointAttrs },
          { asInt: '8', startTimeUnixNano: ns(0), timeUnixNano: ns(120), attributes: pointAttrs },
          // the process restarted: a new start time, counting from 0 again
          { asInt: '2', startTimeUnixNano: ns(150), timeUnixNano: ns(180), attributes: pointAttrs }] } },
      { name: 'my.gauge', unit: '1', description: 'I am a Gauge',
        gauge: { dataPoints: [{ asDouble: 10, timeUnixNano: ns(60), attributes: pointAttrs }] } },
      { name: 'my.histogram', unit: '1', description: 'I am a Histogram',
        histogram: { aggregationTemporality: 1, dataPoints: [
          { startTimeUnixNano: ns(0), timeUnixNano: ns(60), count: '2', sum: 2, bucketCounts: ['1', '1'], explicitBounds: [1], min: 0, max: 2, attributes: pointAttrs }] } },
      { name: 'my.exponential.histogram', unit: '1', description: 'I am an Exponential Histogram',
        exponentialHistogram: { aggregationTemporality: 1, dataPoints: [
          { startTimeUnixNano: ns(0), timeUnixNano: ns(60), count: '3', sum: 10, scale: 0, zeroCount: '1',
            positive: { offset: 1, bucketCounts: ['0', '2'] }, min: 0, max: 5, zeroThreshold: 0, attributes: pointAttrs }] } },
      { name: 'my.summary', unit: 'ms', description: 'I am a Summary',
        summary: { dataPoints: [
          { startTimeUnixNano: ns(0), timeUnixNano: ns(60), count: '10', sum: 42,
            quantileValues: [{ quantile: 0.5, value: 2 }, { quantile: 0.9, value: 8 }, { quantile: 0.99, value: 9.5 }], attributes: pointAttrs }] } },
    ]));
  });

  it('gauge and delta sum', async () => {
    expect(await settled('my.gauge', 'max', 'spec-metrics')).toBe(10);
    expect(await settled('my.counter', 'sum', 'spec-metrics')).toBe(8);
    expect(await value('my.counter', 'rate', 'spec-metrics')).toBeCloseTo(8 / 3600, 9);
  });

  it('a cumulative sum adds its increases, with the restart detected (5, 8, restart 2 → 10)', async () => {
    expect(await settled('my.cumulative.counter', 'sum', 'spec-metrics')).toBe(10);
    expect(await value('my.cumulative.counter', 'rate', 'spec-metrics')).toBeCloseTo(10 / 3600, 9);
  });

  it('explicit histogram percentiles', async () => {
    expect(await settled('my.histogram', 'p50', 'spec-metrics')).toBe(1);
  });

  it('exponential histogram percentiles from its buckets, clamped to max', async () => {
    // zero bucket 1, (4, 8] 2: rank 1.5 is a quarter into (4, 8], log-linearly 2^2.25
    expect(await settled('my.exponential.histogram', 'p50', 'spec-metrics')).toBeCloseTo(2 ** 2.25, 9);
    expect(await value('my.exponential.histogram', 'p99', 'spec-metrics')).toBe(5);
  });

  it('summary quantiles (interpolated between the ones the SDK sent)', async () => {
    expect(await settled('my.summary', 'p50', 'spec-metrics')).toBe(2);
    expect(await value('my.summary', 'p95', 'spec-metrics')).toBeCloseTo(8 + (1.5 * 0.05) / 0.09, 9);
    expect(await value('my.summary', 'p99', 'spec-metrics')).toBe(9.5);
  });
});

describe('cumulative and delta temporality agree', () => {
  it('the same counter sent both ways gives the same sum and rate', async () => {
    const deltas = [4, 0, 7, 1];
    let total = 0;
    const cumulative = deltas.map((d, i) => ({ asInt: String(total += d), startTimeUnixNano: ns(0), timeUnixNano: ns(60 * (i + 1)) }));
    const delta = deltas.map((d, i) => ({ asInt: String(d), startTimeUnixNano: ns(60 * i), timeUnixNano: ns(60 * (i + 1)) }));
    await post('metrics', metricsRequest('temporality-cum', [{ name: 'jobs.done', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: cumulative } }]));
    await post('metrics', metricsRequest('temporality-delta', [{ name: 'jobs.done', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: delta } }]));
    const c = await settled('jobs.done', 'sum', 'temporality-cum');
    const d = await settled('jobs.done', 'sum', 'temporality-delta');
    expect(c).toBe(12);
    expect(d).toBe(12);
    expect(await value('jobs.done', 'rate', 'temporality-cum')).toBe(await value('jobs.done', 'rate', 'temporality-delta'));
  });

  it('cumulative exponential histograms: the delta of the last point against the first, across a scale change', async () => {
    const h = (t: number, count: number, scale: number, offset: number, counts: number[]) =>
      ({ startTimeUnixNano: ns(0), timeUnixNano: ns(t), count: String(count), sum: 1, scale, zeroCount: '0', positive: { offset, bucketCounts: counts.map(String) } });
    await post('metrics', metricsRequest('exp-cum', [{ name: 'latency.exp', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [
      // scale 1: index 2 = (2, 2.83], index 3 = (2.83, 4]; then downscaled to 0: (2, 4] holds both
      h(60, 2, 1, 2, [1, 1]),
      h(120, 6, 0, 1, [6]),
    ] } }]));
    // both points are inside the range: the first counts in full (its series started there), the second adds 4
    const p50 = await settled('latency.exp', 'p50', 'exp-cum');
    expect(p50).toBeGreaterThan(2);
    expect(p50).toBeLessThanOrEqual(4);
  });
});

describe('OTLP specification JSON examples: traces and logs', () => {
  const traceId = '5B8EFFF798038103D269B633813FC60C';
  const attrsOfEveryType = [
    { key: 'string.attribute', value: { stringValue: 'some string' } },
    { key: 'boolean.attribute', value: { boolValue: true } },
    { key: 'int.attribute', value: { intValue: '10' } },
    { key: 'double.attribute', value: { doubleValue: 637.704 } },
    { key: 'array.attribute', value: { arrayValue: { values: [{ stringValue: 'many' }, { stringValue: 'values' }] } } },
    { key: 'map.attribute', value: { kvlistValue: { values: [{ key: 'some.map.key', value: { stringValue: 'some value' } }] } } },
  ];

  it('a server span with attributes of every type, found by its (upper-case hex) trace id', async () => {
    await post('traces', JSON.stringify({ resourceSpans: [{ resource: resource('spec-traces'), scopeSpans: [{ scope, spans: [{
      traceId, spanId: 'EEE19B7EC3C1B174', parentSpanId: 'EEE19B7EC3C1B173', name: "I'm a server span",
      startTimeUnixNano: ns(60), endTimeUnixNano: ns(61), kind: 2, attributes: attrsOfEveryType,
      status: { code: 2, message: 'boom' },
    }] }] }] }));
    const spans = await eventually(async () => {
      const r = await server.api<{ spans: Array<Record<string, unknown>> }>(`/api/traces/${traceId.toLowerCase()}`);
      return r.status === 200 ? r.body.spans : undefined;
    });
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({
      spanId: 'eee19b7ec3c1b174', parentSpanId: 'eee19b7ec3c1b173', name: "I'm a server span", kind: 2, service: 'spec-traces',
      version: '1.0.0', statusCode: 2, statusMessage: 'boom', scopeName: 'my.library', durationNs: 1e9,
      attrs: { 'string.attribute': 'some string', 'boolean.attribute': true, 'int.attribute': 10, 'double.attribute': 637.704,
        'array.attribute': ['many', 'values'], 'map.attribute': { 'some.map.key': 'some value' } },
    });
  });

  it('a log record with its trace context, severity and attributes of every type', async () => {
    await post('logs', JSON.stringify({ resourceLogs: [{ resource: resource('spec-logs'), scopeLogs: [{ scope, logRecords: [{
      timeUnixNano: ns(90), observedTimeUnixNano: ns(91), severityNumber: 10, severityText: 'Information', traceId, spanId: 'EEE19B7EC3C1B174',
      body: { stringValue: 'Example log record' }, attributes: attrsOfEveryType,
    }] }] }] }));
    const logs = await eventually(async () => {
      const r = await server.api<{ logs: Array<Record<string, unknown>> }>(`/api/logs?service=spec-logs&from=${hourUs / 1000}&to=${(hourUs + HOUR_US) / 1000}`);
      return r.body.logs.length > 0 ? r.body.logs : undefined;
    });
    expect(logs[0]).toMatchObject({
      body: 'Example log record', severityNumber: 10, severityText: 'Information', traceId: traceId.toLowerCase(), spanId: 'eee19b7ec3c1b174',
      timeUs: hourUs + 90e6, observedTimeUs: hourUs + 91e6, scopeName: 'my.library',
      attrs: { 'string.attribute': 'some string', 'boolean.attribute': true, 'int.attribute': 10, 'array.attribute': ['many', 'values'] },
    });
  });
});
