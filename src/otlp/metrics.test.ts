import { ValueType, type HrTime } from '@opentelemetry/api';
import { JsonMetricsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationType, DataPointType, MeterProvider, MetricReader, type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import protobuf from 'protobufjs/minimal.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MetricBatch } from '../telemetry/batch.js';
import { decodeMetrics } from './index.js';

/** Metrics made by the real OTel SDK, encoded by the real OTLP serializers, decoded by ours. */

const hrMicros = (t: HrTime): number => t[0] * 1e6 + Math.floor(t[1] / 1000);

/** A pull reader: the test decides when to collect. */
class ManualReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

let collected: ResourceMetrics;

beforeAll(async () => {
  const reader = new ManualReader();
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'api', 'service.version': '2.0.0', 'deployment.environment.name': 'dev' }),
    readers: [reader],
    views: [{ instrumentName: 'latency.exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter('api-metrics', '1.1.0');
  const requests = meter.createCounter('http.requests', { description: 'requests served', unit: '{request}', valueType: ValueType.INT });
  requests.add(3, { route: '/a', code: 200 });
  requests.add(2, { route: '/b', code: 500 });
  meter.createUpDownCounter('queue.depth', { valueType: ValueType.INT }).add(-4);
  const temp = meter.createGauge('cpu.temp', { unit: 'Cel' });
  temp.record(71.25, { core: 0 });
  const latency = meter.createHistogram('latency', { unit: 'ms', advice: { explicitBucketBoundaries: [10, 50, 100] } });
  for (const v of [3, 12, 12, 70, 250]) latency.record(v, { route: '/a' });
  const exp = meter.createHistogram('latency.exp', { unit: 's' });
  for (const v of [0, 0.001, 0.5, 0.5, 2, 1000, -3]) exp.record(v);
  collected = (await reader.collect()).resourceMetrics;
});

/** What each data point should become, straight from the SDK's own data. */
function expectedRows(rm: ResourceMetrics): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      const common = {
        service: 'api', version: '2.0.0', environment: 'dev', scopeName: sm.scope.name, scopeVersion: sm.scope.version ?? '',
        name: m.descriptor.name, description: m.descriptor.description, unit: m.descriptor.unit,
        // SDK temporality is DELTA 0 / CUMULATIVE 1; OTLP reserves 0 for unspecified (and gauges).
        temporality: m.dataPointType === DataPointType.GAUGE ? 0 : m.aggregationTemporality + 1,
        isMonotonic: m.dataPointType === DataPointType.SUM && m.isMonotonic,
        value: NaN, count: 0, sum: 0, min: NaN, max: NaN, detail: '',
      };
      const point = (p: { startTime: HrTime; endTime: HrTime; attributes: object }) =>
        ({ ...common, timeUs: hrMicros(p.endTime), startTimeUs: hrMicros(p.startTime), attrs: p.attributes });
      switch (m.dataPointType) {
        case DataPointType.SUM:
        case DataPointType.GAUGE:
          for (const p of m.dataPoints) rows.push({ ...point(p), type: m.dataPointType === DataPointType.SUM ? 'sum' : 'gauge', value: p.value });
          break;
        case DataPointType.HISTOGRAM:
          for (const p of m.dataPoints) {
            const h = p.value;
            rows.push({
              ...point(p), type: 'histogram', count: h.count, sum: h.sum ?? 0, min: h.min ?? NaN, max: h.max ?? NaN,
              detail: { bounds: h.buckets.boundaries, counts: h.buckets.counts },
            });
          }
          break;
        case DataPointType.EXPONENTIAL_HISTOGRAM:
          for (const p of m.dataPoints) {
            const h = p.value;
            rows.push({
              ...point(p), type: 'exp_histogram', count: h.count, sum: h.sum ?? 0, min: h.min ?? NaN, max: h.max ?? NaN,
              detail: {
                scale: h.scale, zeroCount: h.zeroCount,
                positive: { offset: h.positive.offset, counts: h.positive.bucketCounts },
                negative: { offset: h.negative.offset, counts: h.negative.bucketCounts },
              },
            });
          }
          break;
      }
    }
  }
  return rows;
}

function decodedRows(b: MetricBatch): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (let i = 0; i < b.length; i++) {
    rows.push({
      service: b.service[i], version: b.version[i], environment: b.environment[i], scopeName: b.scopeName[i], scopeVersion: b.scopeVersion[i],
      name: b.name[i], description: b.description[i], unit: b.unit[i], type: b.type[i], temporality: b.temporality[i],
      isMonotonic: b.isMonotonic[i], timeUs: b.timeUs[i], startTimeUs: b.startTimeUs[i], value: b.value[i], count: b.count[i],
      sum: b.sum[i], min: b.min[i], max: b.max[i], detail: b.detail[i] === '' ? '' : JSON.parse(b.detail[i]), attrs: JSON.parse(b.attrs[i]),
    });
  }
  return rows;
}

describe('metrics from the OTel SDK', () => {
  it.each(['protobuf', 'json'] as const)('%s: one row per data point, every column matching', (format) => {
    const body = (format === 'json' ? JsonMetricsSerializer : ProtobufMetricsSerializer).serializeRequest(collected);
    if (body === undefined) throw new Error('serializer produced nothing');
    const { batch, rejected } = decodeMetrics(body, format);
    expect(rejected).toBe(0);
    expect(Object.values(batch).every((v) => !Array.isArray(v) || v.length === batch.length)).toBe(true);
    const expected = expectedRows(collected);
    expect(expected.length).toBe(6);
    expect(decodedRows(batch)).toEqual(expected);
    expect(new Set(batch.type)).toEqual(new Set(['sum', 'gauge', 'histogram', 'exp_histogram']));
    const hist = batch.name.indexOf('latency');
    expect(JSON.parse(batch.detail[hist])).toEqual({ bounds: [10, 50, 100], counts: [1, 2, 1, 1] });
    expect(batch.value[batch.name.indexOf('queue.depth')]).toBe(-4);
    expect(batch.isMonotonic[batch.name.indexOf('queue.depth')]).toBe(false);
  });
});

describe('summary and edge cases (no SDK instrument makes these)', () => {
  /** One Metric message inside one resource/scope, written with protobufjs's Writer. */
  function request(metric: (w: protobuf.Writer) => void): Uint8Array {
    const w = protobuf.Writer.create();
    w.uint32(10).fork().uint32(18).fork().uint32(18).fork();
    metric(w);
    return w.ldelim().ldelim().ldelim().finish();
  }

  it('summary: count, sum and quantiles (protobuf and JSON agree)', () => {
    const proto = request((w) => {
      w.uint32(10).string('rpc.duration').uint32(26).string('ms');
      w.uint32(90).fork().uint32(10).fork(); // summary.data_points
      w.uint32(25).fixed32(1_000_000).fixed32(0); // time = 1e6 ns
      w.uint32(33).fixed64(10).uint32(41).double(123.5);
      w.uint32(50).fork().uint32(9).double(0.5).uint32(17).double(11).ldelim();
      w.uint32(50).fork().uint32(9).double(0.99).uint32(17).double(40.25).ldelim();
      w.uint32(58).fork().uint32(10).string('method').uint32(18).fork().uint32(10).string('Get').ldelim().ldelim();
      w.ldelim().ldelim();
    });
    const json = JSON.stringify({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{
      name: 'rpc.duration', unit: 'ms', summary: { dataPoints: [{
        timeUnixNano: '1000000', count: '10', sum: 123.5,
        quantileValues: [{ quantile: 0.5, value: 11 }, { quantile: 0.99, value: 40.25 }],
        attributes: [{ key: 'method', value: { stringValue: 'Get' } }],
      }] },
    }] }] }] });
    for (const b of [decodeMetrics(proto, 'protobuf').batch, decodeMetrics(Buffer.from(json), 'json').batch]) {
      expect(b.length).toBe(1);
      expect(b.type[0]).toBe('summary');
      expect(b.timeUs[0]).toBe(1000);
      expect(b.count[0]).toBe(10);
      expect(b.sum[0]).toBe(123.5);
      expect(b.value[0]).toBeNaN();
      expect(JSON.parse(b.detail[0])).toEqual({ quantiles: [{ q: 0.5, v: 11 }, { q: 0.99, v: 40.25 }] });
      expect(JSON.parse(b.attrs[0])).toEqual({ method: 'Get' });
      expect(b.service[0]).toBe('unknown_service');
    }
  });

  it('sum fields after the data points still apply; unpacked repeated fields are read; no-value flag gives NaN', () => {
    const body = request((w) => {
      w.uint32(10).string('hits');
      w.uint32(58).fork(); // sum
      w.uint32(10).fork().uint32(49).sfixed64(-7).ldelim();
      w.uint32(10).fork().uint32(33).double(1.5).uint32(64).uint32(1).ldelim(); // FLAG_NO_RECORDED_VALUE
      w.uint32(16).uint32(1).uint32(24).bool(true); // temporality DELTA, monotonic, after the points
      w.ldelim();
      w.uint32(74).fork().uint32(10).fork(); // histogram with unpacked bucket_counts / explicit_bounds
      w.uint32(49).fixed64(4).uint32(49).fixed64(6).uint32(57).double(2.5).uint32(33).fixed64(10);
      w.ldelim().uint32(16).uint32(2).ldelim();
    });
    const { batch } = decodeMetrics(body, 'protobuf');
    expect(batch.length).toBe(3);
    expect(batch.value.slice(0, 2)).toEqual([-7, NaN]);
    expect(batch.temporality).toEqual([1, 1, 2]);
    expect(batch.isMonotonic).toEqual([true, true, false]);
    expect(batch.name).toEqual(['hits', 'hits', 'hits']);
    expect(JSON.parse(batch.detail[2])).toEqual({ bounds: [2.5], counts: [4, 6] });
  });

  it('data points of a metric without a name are rejected and counted', () => {
    const body = request((w) => {
      w.uint32(42).fork(); // gauge, no name
      w.uint32(10).fork().uint32(33).double(1).ldelim();
      w.uint32(10).fork().uint32(33).double(2).ldelim();
      w.ldelim();
    });
    const r = decodeMetrics(body, 'protobuf');
    expect(r.batch.length).toBe(0);
    expect(Object.values(r.batch).every((v) => !Array.isArray(v) || v.length === 0)).toBe(true);
    expect(r.rejected).toBe(2);
    expect(r.rejectMessage).toMatch(/2 data points rejected.*metrics\[0\].*name/);
  });
});
