import { emptyLogBatch, type LogBatch } from '../telemetry/batch.js';
import {
  ATTRS, bodyText, CLOSE_BRACE, EMPTY_RESOURCE, fillResource, fillScope, OPEN_BRACE, readResource, Rejections, ScopeInfo,
  writeKeyValue, type DecodeResult,
} from './common.js';
import { nanosToMicros, WireReader } from './wire.js';

/**
 * ExportLogsServiceRequest (protobuf) straight into a LogBatch.
 * Field numbers: opentelemetry-proto v1 logs.proto and collector/logs/v1/logs_service.proto.
 * Case labels are whole tags, `field << 3 | wire type`.
 */

export function decodeLogsProtobuf(body: Uint8Array): DecodeResult<LogBatch> {
  const r = new WireReader(body);
  const b = emptyLogBatch();
  const rej = new Rejections();
  const end = r.len;
  let ri = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) resourceLogs(r, r.lenEnd(end), b, rej, ri++); // 1 resource_logs
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('log record') };
}

/** ResourceLogs: 1 resource, 2 scope_logs, 3 schema_url (skipped). */
function resourceLogs(r: WireReader, end: number, b: LogBatch, rej: Rejections, ri: number): void {
  let res = EMPTY_RESOURCE;
  let si = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) res = readResource(r, r.lenEnd(end));
    else if (tag === 18) scopeLogs(r, r.lenEnd(end), b, rej, ri, si++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillResource(b, res);
}

/** ScopeLogs: 1 scope, 2 log_records, 3 schema_url (skipped). */
function scopeLogs(r: WireReader, end: number, b: LogBatch, rej: Rejections, ri: number, si: number): void {
  const scope = new ScopeInfo();
  let i = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) scope.read(r, r.lenEnd(end));
    else if (tag === 18) logRecord(r, r.lenEnd(end), b, rej, ri, si, i++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillScope(b, scope.name, scope.version);
}

/**
 * LogRecord: 1 time_unix_nano, 2 severity_number, 3 severity_text, 5 body, 6 attributes,
 * 7 dropped count, 8 flags, 9 trace_id, 10 span_id, 11 observed_time_unix_nano, 12 event_name.
 */
function logRecord(r: WireReader, end: number, b: LogBatch, rej: Rejections, ri: number, si: number, i: number): void {
  let timeLo = 0, timeHi = 0, obsLo = 0, obsHi = 0;
  let severity = 0, severityText = '', body = '', flags = 0, eventName = '';
  let traceAt = 0, traceLen = 0, spanAt = 0, spanLen = 0;
  ATTRS.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 9:
        r.fixed64();
        timeLo = r.lo;
        timeHi = r.hi;
        break;
      case 16:
        severity = r.uint32();
        break;
      case 26:
        severityText = r.string(end);
        break;
      case 42:
        body = bodyText(r, r.lenEnd(end));
        break;
      case 50:
        writeKeyValue(r, end, ATTRS, 0);
        break;
      case 69:
        flags = r.fixed32();
        break;
      case 74:
        traceLen = r.lenEnd(end) - r.pos;
        traceAt = r.pos;
        r.pos += traceLen;
        break;
      case 82:
        spanLen = r.lenEnd(end) - r.pos;
        spanAt = r.pos;
        r.pos += spanLen;
        break;
      case 89:
        r.fixed64();
        obsLo = r.lo;
        obsHi = r.hi;
        break;
      case 98:
        eventName = r.string(end);
        break;
      default: // 7 dropped count, unknown fields
        r.skip(tag & 7, end);
    }
  }
  r.finish(end);

  // Logs need not belong to a trace, so empty ids are fine; ids of any other length are not.
  if (traceLen !== 0 && traceLen !== 16) {
    rej.add(where(ri, si, i), 'trace_id must be empty or 16 bytes');
    return;
  }
  if (spanLen !== 0 && spanLen !== 8) {
    rej.add(where(ri, si, i), 'span_id must be empty or 8 bytes');
    return;
  }
  const observedUs = nanosToMicros(obsLo, obsHi);
  const timeUs = nanosToMicros(timeLo, timeHi);
  b.timeUs.push(timeUs !== 0 ? timeUs : observedUs);
  b.observedTimeUs.push(observedUs);
  b.severityNumber.push(severity <= 24 ? severity : 0);
  b.severityText.push(severityText);
  b.body.push(body);
  b.traceId.push(traceLen === 16 && !r.isZero(traceAt, 16) ? r.hex(traceAt, 16) : '');
  b.spanId.push(spanLen === 8 && !r.isZero(spanAt, 8) ? r.hex(spanAt, 8) : '');
  b.flags.push(flags);
  b.attrs.push(ATTRS.close(CLOSE_BRACE, '{}'));
  b.eventName.push(eventName);
  b.length++;
}

function where(ri: number, si: number, i: number): string {
  return `resourceLogs[${ri}].scopeLogs[${si}].logRecords[${i}]`;
}
