import {
  emptyLogBatch, emptyMetricBatch, emptySpanBatch, type LogBatch, type MetricBatch, type MetricType, type SpanBatch,
} from '../telemetry/batch.js';
import { fillResource, fillScope, Rejections, type DecodeResult, type ResourceInfo } from './common.js';
import { rethrowUnder } from './error.js';
import {
  arrayField, asObject, attributesJson, bodyText, boolField, doubleField, doubleValue, enumField, field,
  hexIdField, intField, intValue, isZeroId, Nanos, objectField, parseJsonBody, resourceField, scopeField,
  SEVERITY, SPAN_KIND, STATUS_CODE, stringField, TEMPORALITY, type JsonObject,
} from './json.js';
import { doubleJson } from './wire.js';

/**
 * OTLP/JSON ExportTrace/Logs/MetricsServiceRequest into the same column batches as the
 * protobuf decoders, with the same validation and rejection rules.
 */

/** Walks resource → scope → items, prefixing error paths at each array level. */
function walk<B extends { length: number } & Parameters<typeof fillResource>[0]>(
  root: JsonObject, b: B, names: readonly [string, string, string, string, string, string],
  item: (o: JsonObject, b: B, where: string) => void,
): void {
  const [resCamel, resSnake, scopeCamel, scopeSnake, itemCamel, itemSnake] = names;
  const resources = arrayField(root, resCamel, resSnake);
  for (let ri = 0; ri < resources.length; ri++) {
    try {
      const rs = asObject(resources[ri], '');
      const res: ResourceInfo = resourceField(rs);
      const scopes = arrayField(rs, scopeCamel, scopeSnake);
      for (let si = 0; si < scopes.length; si++) {
        try {
          const ss = asObject(scopes[si], '');
          const scope = scopeField(ss);
          const items = arrayField(ss, itemCamel, itemSnake);
          for (let i = 0; i < items.length; i++) {
            try {
              item(asObject(items[i], ''), b, `${resCamel}[${ri}].${scopeCamel}[${si}].${itemCamel}[${i}]`);
            } catch (err) {
              rethrowUnder(err, `${itemCamel}[${i}]`);
            }
          }
          fillScope(b, scope.name, scope.version);
        } catch (err) {
          rethrowUnder(err, `${scopeCamel}[${si}]`);
        }
      }
      fillResource(b, res);
    } catch (err) {
      rethrowUnder(err, `${resCamel}[${ri}]`);
    }
  }
}

// --- traces ------------------------------------------------------------------------------------

const start = new Nanos();
const end = new Nanos();

export function decodeTracesJson(body: Uint8Array): DecodeResult<SpanBatch> {
  const b = emptySpanBatch();
  const rej = new Rejections();
  walk(parseJsonBody(body), b, ['resourceSpans', 'resource_spans', 'scopeSpans', 'scope_spans', 'spans', 'spans'],
    (s, batch, where) => span(s, batch, where, rej));
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('span') };
}

function span(s: JsonObject, b: SpanBatch, where: string, rej: Rejections): void {
  // Read (and type-check) everything first: a malformed field fails the request even on a span
  // that would be rejected anyway, exactly as a malformed protobuf field would.
  const traceId = hexIdField(s, 'traceId', 'trace_id', 32);
  const spanId = hexIdField(s, 'spanId', 'span_id', 16);
  const parent = hexIdField(s, 'parentSpanId', 'parent_span_id', 16);
  const traceState = stringField(s, 'traceState', 'trace_state');
  const name = stringField(s, 'name', 'name');
  const kind = enumField(s, 'kind', 'kind', SPAN_KIND, 5);
  start.read(s, 'startTimeUnixNano', 'start_time_unix_nano');
  end.read(s, 'endTimeUnixNano', 'end_time_unix_nano');
  const attrs = attributesJson(s);
  const events = eventsJson(s);
  const links = linksJson(s);
  let statusCode = 0, statusMessage = '';
  const status = objectField(s, 'status', 'status');
  if (status !== undefined) {
    try {
      statusCode = enumField(status, 'code', 'code', STATUS_CODE, 2);
      statusMessage = stringField(status, 'message', 'message');
    } catch (err) {
      rethrowUnder(err, 'status');
    }
  }

  if (traceId === '' || isZeroId(traceId)) return rej.add(where, 'trace_id must be 16 bytes and not all zero');
  if (spanId === '' || isZeroId(spanId)) return rej.add(where, 'span_id must be 8 bytes and not all zero');
  b.traceId.push(traceId);
  b.spanId.push(spanId);
  b.parentSpanId.push(isZeroId(parent) ? '' : parent);
  b.traceState.push(traceState);
  b.name.push(name);
  b.kind.push(kind);
  b.startUs.push(start.micros);
  const d = end.since(start);
  b.durationNs.push(d > 0 ? d : 0);
  b.statusCode.push(statusCode);
  b.statusMessage.push(statusMessage);
  b.attrs.push(attrs);
  b.events.push(events);
  b.links.push(links);
  b.length++;
}

const eventTime = new Nanos();

function eventsJson(s: JsonObject): string {
  const list = arrayField(s, 'events', 'events');
  let out = '';
  for (let i = 0; i < list.length; i++) {
    try {
      const e = asObject(list[i], '');
      const t = eventTime.read(e, 'timeUnixNano', 'time_unix_nano').micros;
      const ev = '{"timeUs":' + t + ',"name":' + JSON.stringify(stringField(e, 'name', 'name')) +
        ',"attrs":' + attributesJson(e) + '}';
      out = i === 0 ? ev : out + ',' + ev;
    } catch (err) {
      rethrowUnder(err, `events[${i}]`);
    }
  }
  return '[' + out + ']';
}

/** Links without both ids cannot point anywhere and are left out, as in the protobuf decoder. */
function linksJson(s: JsonObject): string {
  const list = arrayField(s, 'links', 'links');
  let out = '';
  for (let i = 0; i < list.length; i++) {
    try {
      const l = asObject(list[i], '');
      const traceId = hexIdField(l, 'traceId', 'trace_id', 32);
      const spanId = hexIdField(l, 'spanId', 'span_id', 16);
      const traceState = stringField(l, 'traceState', 'trace_state');
      const attrs = attributesJson(l);
      if (traceId === '' || spanId === '') continue;
      const link = '{"traceId":"' + traceId + '","spanId":"' + spanId + '","traceState":' + JSON.stringify(traceState) +
        ',"attrs":' + attrs + '}';
      out = out === '' ? link : out + ',' + link;
    } catch (err) {
      rethrowUnder(err, `links[${i}]`);
    }
  }
  return '[' + out + ']';
}

// --- logs --------------------------------------------------------------------------------------

const logTime = new Nanos();
const observedTime = new Nanos();

export function decodeLogsJson(body: Uint8Array): DecodeResult<LogBatch> {
  const b = emptyLogBatch();
  const rej = new Rejections();
  walk(parseJsonBody(body), b, ['resourceLogs', 'resource_logs', 'scopeLogs', 'scope_logs', 'logRecords', 'log_records'],
    (o, batch) => logRecord(o, batch));
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('log record') };
}

function logRecord(o: JsonObject, b: LogBatch): void {
  // Bad id lengths in JSON are type errors (they throw), so no log record is ever rejected here.
  const traceId = hexIdField(o, 'traceId', 'trace_id', 32);
  const spanId = hexIdField(o, 'spanId', 'span_id', 16);
  const timeUs = logTime.read(o, 'timeUnixNano', 'time_unix_nano').micros;
  const observedUs = observedTime.read(o, 'observedTimeUnixNano', 'observed_time_unix_nano').micros;
  const severity = enumField(o, 'severityNumber', 'severity_number', SEVERITY, 24);
  const severityText = stringField(o, 'severityText', 'severity_text');
  const body = bodyText(o);
  const attrs = attributesJson(o);
  const flags = intField(o, 'flags', 'flags', true) >>> 0;
  const eventName = stringField(o, 'eventName', 'event_name');
  b.timeUs.push(timeUs !== 0 ? timeUs : observedUs);
  b.observedTimeUs.push(observedUs);
  b.severityNumber.push(severity);
  b.severityText.push(severityText);
  b.body.push(body);
  b.traceId.push(isZeroId(traceId) ? '' : traceId);
  b.spanId.push(isZeroId(spanId) ? '' : spanId);
  b.flags.push(flags);
  b.attrs.push(attrs);
  b.eventName.push(eventName);
  b.length++;
}

// --- metrics -----------------------------------------------------------------------------------

const NO_RECORDED_VALUE = 1;
const pointStart = new Nanos();
const pointTime = new Nanos();

const DATA_KINDS: ReadonlyArray<readonly [string, string, MetricType]> = [
  ['gauge', 'gauge', 'gauge'], ['sum', 'sum', 'sum'], ['histogram', 'histogram', 'histogram'],
  ['exponentialHistogram', 'exponential_histogram', 'exp_histogram'], ['summary', 'summary', 'summary'],
];

export function decodeMetricsJson(body: Uint8Array): DecodeResult<MetricBatch> {
  const b = emptyMetricBatch();
  const rej = new Rejections();
  walk(parseJsonBody(body), b, ['resourceMetrics', 'resource_metrics', 'scopeMetrics', 'scope_metrics', 'metrics', 'metrics'],
    (m, batch, where) => metric(m, batch, where, rej));
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('data point') };
}

function metric(m: JsonObject, b: MetricBatch, where: string, rej: Rejections): void {
  const name = stringField(m, 'name', 'name');
  const description = stringField(m, 'description', 'description');
  const unit = stringField(m, 'unit', 'unit');
  const first = b.length;
  for (const [camel, snake, type] of DATA_KINDS) {
    const data = objectField(m, camel, snake);
    if (data === undefined) continue;
    try {
      dataPoints(data, b, type);
    } catch (err) {
      rethrowUnder(err, camel);
    }
    break; // a oneof: the first one present is the metric's data
  }
  if (name === '') {
    // Drop what was just appended (every column is filled up to b.length here).
    const n = b.length - first;
    for (const col of Object.values(b) as unknown[]) if (Array.isArray(col) && col.length > first) col.length = first;
    b.length = first;
    return rej.addMany(n, where, 'metric name must not be empty');
  }
  for (let i = b.name.length; i < b.length; i++) {
    b.name.push(name);
    b.description.push(description);
    b.unit.push(unit);
  }
}

function dataPoints(data: JsonObject, b: MetricBatch, type: MetricType): void {
  const temporality = type === 'gauge' || type === 'summary'
    ? 0 : enumField(data, 'aggregationTemporality', 'aggregation_temporality', TEMPORALITY, 2);
  const monotonic = type === 'sum' && boolField(data, 'isMonotonic', 'is_monotonic');
  const points = arrayField(data, 'dataPoints', 'data_points');
  for (let i = 0; i < points.length; i++) {
    try {
      point(asObject(points[i], ''), b, type);
    } catch (err) {
      rethrowUnder(err, `dataPoints[${i}]`);
    }
    b.type.push(type);
    b.temporality.push(temporality);
    b.isMonotonic.push(monotonic);
  }
}

function point(p: JsonObject, b: MetricBatch, type: MetricType): void {
  const startUs = pointStart.read(p, 'startTimeUnixNano', 'start_time_unix_nano').micros;
  const timeUs = pointTime.read(p, 'timeUnixNano', 'time_unix_nano').micros;
  const attrs = attributesJson(p);
  let value = NaN, count = 0, sum = 0, min = NaN, max = NaN, detail = '';
  if (type === 'gauge' || type === 'sum') {
    const asInt = field(p, 'asInt', 'as_int');
    value = asInt !== undefined ? intValue(asInt, 'asInt', false) : doubleField(p, 'asDouble', 'as_double', NaN);
    if (intField(p, 'flags', 'flags', true) & NO_RECORDED_VALUE) value = NaN;
  } else {
    count = intField(p, 'count', 'count', true);
    sum = doubleField(p, 'sum', 'sum', 0);
    if (type === 'summary') {
      detail = '{"quantiles":[' + listJson(p, 'quantileValues', 'quantile_values', quantileItem) + ']}';
    } else {
      min = doubleField(p, 'min', 'min', NaN);
      max = doubleField(p, 'max', 'max', NaN);
      detail = type === 'histogram'
        ? '{"bounds":[' + listJson(p, 'explicitBounds', 'explicit_bounds', boundItem) +
          '],"counts":[' + listJson(p, 'bucketCounts', 'bucket_counts', countItem) + ']}'
        : '{"scale":' + intField(p, 'scale', 'scale', false) +
          ',"zeroCount":' + intField(p, 'zeroCount', 'zero_count', true) +
          ',"positive":' + bucketsJson(p, 'positive') + ',"negative":' + bucketsJson(p, 'negative') + '}';
    }
  }
  b.startTimeUs.push(startUs);
  b.timeUs.push(timeUs);
  b.value.push(value);
  b.count.push(count);
  b.sum.push(sum);
  b.min.push(min);
  b.max.push(max);
  b.detail.push(detail);
  b.attrs.push(attrs);
  b.length++;
}

const boundItem = (x: unknown, at: string): string => doubleJson(doubleValue(x, at));
const countItem = (x: unknown, at: string): string => String(intValue(x, at, true));
function quantileItem(q: unknown, at: string): string {
  const o = asObject(q, at);
  try {
    return '{"q":' + doubleJson(doubleField(o, 'quantile', 'quantile', 0)) +
      ',"v":' + doubleJson(doubleField(o, 'value', 'value', 0)) + '}';
  } catch (err) {
    rethrowUnder(err, at);
  }
}

/** A JSON array field mapped item by item to JSON text, comma-joined; errors name the item. */
function listJson(o: JsonObject, camel: string, snake: string, item: (v: unknown, at: string) => string): string {
  const list = arrayField(o, camel, snake);
  let out = '';
  for (let i = 0; i < list.length; i++) {
    const s = item(list[i], `${camel}[${i}]`);
    out = i === 0 ? s : out + ',' + s;
  }
  return out;
}

function bucketsJson(p: JsonObject, name: 'positive' | 'negative'): string {
  const bk = objectField(p, name, name);
  if (bk === undefined) return '{"offset":0,"counts":[]}';
  try {
    return '{"offset":' + intField(bk, 'offset', 'offset', false) + ',"counts":[' +
      listJson(bk, 'bucketCounts', 'bucket_counts', countItem) + ']}';
  } catch (err) {
    rethrowUnder(err, name);
  }
}
