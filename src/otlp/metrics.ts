import { emptyMetricBatch, type MetricBatch, type MetricType } from '../telemetry/batch.js';
import {
  ATTRS, CLOSE_BRACE, EMPTY_RESOURCE, fillResource, fillScope, OPEN_BRACE, readResource, Rejections, ScopeInfo,
  writeKeyValue, type DecodeResult,
} from './common.js';
import { doubleJson, nanosToMicros, WireReader } from './wire.js';

/**
 * ExportMetricsServiceRequest (protobuf) straight into a MetricBatch, one row per data point.
 * Field numbers: opentelemetry-proto v1 metrics.proto and collector/metrics/v1/metrics_service.proto.
 * Case labels are whole tags, `field << 3 | wire type`.
 *
 * Rows are pushed as data points are read; the columns of enclosing messages (type and
 * temporality from Sum/Histogram..., name/unit from Metric) are filled in when that message
 * ends, because encoders write e.g. Sum.data_points (1) before Sum.aggregation_temporality (2).
 */

/** DataPointFlags.FLAG_NO_RECORDED_VALUE: the point marks a gap, its value means nothing. */
const NO_RECORDED_VALUE = 1;

export function decodeMetricsProtobuf(body: Uint8Array): DecodeResult<MetricBatch> {
  const r = new WireReader(body);
  const b = emptyMetricBatch();
  const rej = new Rejections();
  const end = r.len;
  let ri = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) resourceMetrics(r, r.lenEnd(end), b, rej, ri++); // 1 resource_metrics
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('data point') };
}

/** ResourceMetrics: 1 resource, 2 scope_metrics, 3 schema_url (skipped). */
function resourceMetrics(r: WireReader, end: number, b: MetricBatch, rej: Rejections, ri: number): void {
  let res = EMPTY_RESOURCE;
  let si = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) res = readResource(r, r.lenEnd(end));
    else if (tag === 18) scopeMetrics(r, r.lenEnd(end), b, rej, ri, si++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillResource(b, res);
}

/** ScopeMetrics: 1 scope, 2 metrics, 3 schema_url (skipped). */
function scopeMetrics(r: WireReader, end: number, b: MetricBatch, rej: Rejections, ri: number, si: number): void {
  const scope = new ScopeInfo();
  let mi = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) scope.read(r, r.lenEnd(end));
    else if (tag === 18) metric(r, r.lenEnd(end), b, rej, ri, si, mi++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillScope(b, scope.name, scope.version);
}

/** Metric: 1 name, 2 description, 3 unit, 5 gauge, 7 sum, 9 histogram, 10 exponential_histogram, 11 summary. */
function metric(r: WireReader, end: number, b: MetricBatch, rej: Rejections, ri: number, si: number, mi: number): void {
  const first = b.length;
  let name = '', description = '', unit = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10: name = r.string(end); break;
      case 18: description = r.string(end); break;
      case 26: unit = r.string(end); break;
      case 42: metricData(r, r.lenEnd(end), b, 'gauge'); break;
      case 58: metricData(r, r.lenEnd(end), b, 'sum'); break;
      case 74: metricData(r, r.lenEnd(end), b, 'histogram'); break;
      case 82: metricData(r, r.lenEnd(end), b, 'exp_histogram'); break;
      case 90: metricData(r, r.lenEnd(end), b, 'summary'); break;
      default: r.skip(tag & 7, end); // 12 metadata, unknown fields
    }
  }
  r.finish(end);
  if (name === '') {
    // A point without a metric name cannot be queried or charted.
    const n = b.length - first;
    truncatePoints(b, first);
    rej.addMany(n, `resourceMetrics[${ri}].scopeMetrics[${si}].metrics[${mi}]`, 'metric name must not be empty');
    return;
  }
  for (let i = b.name.length; i < b.length; i++) {
    b.name.push(name);
    b.description.push(description);
    b.unit.push(unit);
  }
}

/** Drops rows [n, length) from every column that is already filled that far. */
function truncatePoints(b: MetricBatch, n: number): void {
  b.type.length = b.temporality.length = b.isMonotonic.length = n;
  b.timeUs.length = b.startTimeUs.length = b.value.length = b.count.length = b.sum.length = n;
  b.min.length = b.max.length = b.detail.length = b.attrs.length = n;
  b.length = n;
}

/**
 * Gauge/Sum/Histogram/ExponentialHistogram/Summary: 1 data_points; Sum, Histogram and
 * ExponentialHistogram add 2 aggregation_temporality; Sum adds 3 is_monotonic.
 */
function metricData(r: WireReader, end: number, b: MetricBatch, type: MetricType): void {
  const hasTemporality = type === 'sum' || type === 'histogram' || type === 'exp_histogram';
  let temporality = 0;
  let monotonic = false;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const e = r.lenEnd(end);
      if (type === 'gauge' || type === 'sum') numberPoint(r, e, b);
      else if (type === 'histogram') histogramPoint(r, e, b);
      else if (type === 'exp_histogram') expHistogramPoint(r, e, b);
      else summaryPoint(r, e, b);
    } else if (tag === 16 && hasTemporality) {
      temporality = r.uint32();
    } else if (tag === 24 && type === 'sum') {
      r.varint64();
      monotonic = (r.lo | r.hi) !== 0;
    } else {
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  if (temporality > 2) temporality = 0;
  for (let i = b.type.length; i < b.length; i++) {
    b.type.push(type);
    b.temporality.push(temporality);
    b.isMonotonic.push(monotonic);
  }
}

function pushPoint(
  b: MetricBatch, startUs: number, timeUs: number, value: number, count: number, sum: number,
  min: number, max: number, detail: string,
): void {
  b.startTimeUs.push(startUs);
  b.timeUs.push(timeUs);
  b.value.push(value);
  b.count.push(count);
  b.sum.push(sum);
  b.min.push(min);
  b.max.push(max);
  b.detail.push(detail);
  b.attrs.push(ATTRS.close(CLOSE_BRACE, '{}'));
  b.length++;
}

/** NumberDataPoint: 2 start, 3 time, 4 as_double, 6 as_int (sfixed64), 7 attributes, 8 flags; 5 exemplars skipped. */
function numberPoint(r: WireReader, end: number, b: MetricBatch): void {
  let startUs = 0, timeUs = 0, value = NaN, flags = 0;
  ATTRS.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 17: r.fixed64(); startUs = nanosToMicros(r.lo, r.hi); break;
      case 25: r.fixed64(); timeUs = nanosToMicros(r.lo, r.hi); break;
      case 33: value = r.double(); break;
      case 49: r.fixed64(); value = (r.hi | 0) * 4294967296 + r.lo; break;
      case 58: writeKeyValue(r, end, ATTRS, 0); break;
      case 64: flags = r.uint32(); break;
      default: r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  if (flags & NO_RECORDED_VALUE) value = NaN;
  pushPoint(b, startUs, timeUs, value, 0, 0, NaN, NaN, '');
}

/**
 * HistogramDataPoint: 2 start, 3 time, 4 count, 5 sum, 6 bucket_counts (fixed64), 7 explicit_bounds
 * (double), 9 attributes, 10 flags, 11 min, 12 max; 8 exemplars skipped. Repeated scalars are
 * accepted packed (the proto3 default) or one per tag, as the protobuf spec requires of parsers.
 */
function histogramPoint(r: WireReader, end: number, b: MetricBatch): void {
  let startUs = 0, timeUs = 0, count = 0, sum = 0, min = NaN, max = NaN;
  let counts = '', bounds = '';
  ATTRS.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 17: r.fixed64(); startUs = nanosToMicros(r.lo, r.hi); break;
      case 25: r.fixed64(); timeUs = nanosToMicros(r.lo, r.hi); break;
      case 33: count = r.fixed64Number(); break;
      case 41: sum = r.double(); break;
      case 50: {
        const e = r.lenEnd(end);
        while (r.pos < e) counts = counts === '' ? String(r.fixed64Number()) : counts + ',' + r.fixed64Number();
        r.finish(e);
        break;
      }
      case 49: counts = counts === '' ? String(r.fixed64Number()) : counts + ',' + r.fixed64Number(); break;
      case 58: {
        const e = r.lenEnd(end);
        while (r.pos < e) bounds = bounds === '' ? doubleJson(r.double()) : bounds + ',' + doubleJson(r.double());
        r.finish(e);
        break;
      }
      case 57: bounds = bounds === '' ? doubleJson(r.double()) : bounds + ',' + doubleJson(r.double()); break;
      case 74: writeKeyValue(r, end, ATTRS, 0); break;
      case 89: min = r.double(); break;
      case 97: max = r.double(); break;
      default: r.skip(tag & 7, end); // 8 exemplars, 10 flags, unknown fields
    }
  }
  r.finish(end);
  pushPoint(b, startUs, timeUs, NaN, count, sum, min, max, '{"bounds":[' + bounds + '],"counts":[' + counts + ']}');
}

/**
 * ExponentialHistogramDataPoint: 1 attributes, 2 start, 3 time, 4 count, 5 sum, 6 scale (sint32),
 * 7 zero_count, 8 positive, 9 negative, 12 min, 13 max; 10 flags, 11 exemplars, 14 zero_threshold skipped.
 */
function expHistogramPoint(r: WireReader, end: number, b: MetricBatch): void {
  let startUs = 0, timeUs = 0, count = 0, sum = 0, min = NaN, max = NaN, scale = 0, zeroCount = 0;
  let positive = EMPTY_BUCKETS, negative = EMPTY_BUCKETS;
  ATTRS.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10: writeKeyValue(r, end, ATTRS, 0); break;
      case 17: r.fixed64(); startUs = nanosToMicros(r.lo, r.hi); break;
      case 25: r.fixed64(); timeUs = nanosToMicros(r.lo, r.hi); break;
      case 33: count = r.fixed64Number(); break;
      case 41: sum = r.double(); break;
      case 48: scale = r.sint32(); break;
      case 57: zeroCount = r.fixed64Number(); break;
      case 66: positive = bucketsJson(r, r.lenEnd(end)); break;
      case 74: negative = bucketsJson(r, r.lenEnd(end)); break;
      case 97: min = r.double(); break;
      case 105: max = r.double(); break;
      default: r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  const detail = '{"scale":' + scale + ',"zeroCount":' + zeroCount + ',"positive":' + positive + ',"negative":' + negative + '}';
  pushPoint(b, startUs, timeUs, NaN, count, sum, min, max, detail);
}

const EMPTY_BUCKETS = '{"offset":0,"counts":[]}';

/** ExponentialHistogramDataPoint.Buckets: 1 offset (sint32), 2 bucket_counts (uint64 varints). */
function bucketsJson(r: WireReader, end: number): string {
  let offset = 0, counts = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 8) {
      offset = r.sint32();
    } else if (tag === 18) {
      const e = r.lenEnd(end);
      while (r.pos < e) counts = counts === '' ? String(r.uint64()) : counts + ',' + r.uint64();
      r.finish(e);
    } else if (tag === 16) {
      counts = counts === '' ? String(r.uint64()) : counts + ',' + r.uint64();
    } else {
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  return '{"offset":' + offset + ',"counts":[' + counts + ']}';
}

/** SummaryDataPoint: 2 start, 3 time, 4 count, 5 sum, 6 quantile_values, 7 attributes, 8 flags. */
function summaryPoint(r: WireReader, end: number, b: MetricBatch): void {
  let startUs = 0, timeUs = 0, count = 0, sum = 0, quantiles = '';
  ATTRS.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 17: r.fixed64(); startUs = nanosToMicros(r.lo, r.hi); break;
      case 25: r.fixed64(); timeUs = nanosToMicros(r.lo, r.hi); break;
      case 33: count = r.fixed64Number(); break;
      case 41: sum = r.double(); break;
      case 50: {
        // ValueAtQuantile: 1 quantile, 2 value (doubles).
        const e = r.lenEnd(end);
        let q = 0, v = 0;
        while (r.pos < e) {
          const t = r.uint32();
          if (t === 9) q = r.double();
          else if (t === 17) v = r.double();
          else r.skip(t & 7, e);
        }
        r.finish(e);
        const item = '{"q":' + doubleJson(q) + ',"v":' + doubleJson(v) + '}';
        quantiles = quantiles === '' ? item : quantiles + ',' + item;
        break;
      }
      case 58: writeKeyValue(r, end, ATTRS, 0); break;
      default: r.skip(tag & 7, end); // 8 flags, unknown fields
    }
  }
  r.finish(end);
  pushPoint(b, startUs, timeUs, NaN, count, sum, NaN, NaN, '{"quantiles":[' + quantiles + ']}');
}
