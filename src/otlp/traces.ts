import { emptySpanBatch, type SpanBatch } from '../telemetry/batch.js';
import { IdColumnWriter, packIds } from '../telemetry/packed-ids.js';
import { packColumns } from '../telemetry/packed-text.js';
import {
  CLOSE_BRACE, CLOSE_BRACKET, EMPTY_RESOURCE, fillResource, fillScope, OPEN_BRACE, OPEN_BRACKET,
  readResource, Rejections, ScopeInfo, writeKeyValue, type DecodeResult,
} from './common.js';
import { JsonColumn, type JsonText } from './jsontext.js';
import { nanosBetween, nanosToMicros, WireReader } from './wire.js';

/**
 * ExportTraceServiceRequest (protobuf) straight into a SpanBatch.
 * Field numbers: opentelemetry-proto v1 trace.proto and collector/trace/v1/trace_service.proto.
 * Case labels are whole tags, `field << 3 | wire type` (0 varint, 1 i64, 2 len, 5 i32).
 */

/**
 * The columns a span carries to the store as bytes: texts as UTF-8 (telemetry/packed-text.ts),
 * ids as words (telemetry/packed-ids.ts); the batch's `attrs`, `events`, `links`, `traceId`,
 * `spanId` and `parentSpanId` read them as strings.
 */
interface SpanText {
  attrs: JsonColumn; events: JsonColumn; links: JsonColumn;
  traceId: IdColumnWriter; spanId: IdColumnWriter; parentSpanId: IdColumnWriter;
}

export function decodeTracesProtobuf(body: Uint8Array): DecodeResult<SpanBatch> {
  const r = new WireReader(body);
  const b = emptySpanBatch();
  // Sized from the body: a span's attributes are usually most of its bytes; a span is ≥ ~40 bytes.
  const rows = Math.min(65_536, Math.ceil(body.length / 64));
  const text: SpanText = {
    attrs: new JsonColumn(body.length), events: new JsonColumn(Math.min(4096, body.length)), links: new JsonColumn(Math.min(1024, body.length)),
    traceId: new IdColumnWriter(4, rows), spanId: new IdColumnWriter(2, rows), parentSpanId: new IdColumnWriter(2, rows),
  };
  const done = decodeInto(r, b, text);
  packColumns(b, { attrs: text.attrs.finish(), events: text.events.finish(), links: text.links.finish() });
  packIds(b, { traceId: text.traceId.finish(), spanId: text.spanId.finish(), parentSpanId: text.parentSpanId.finish() });
  return done;
}

function decodeInto(r: WireReader, b: SpanBatch, text: SpanText): DecodeResult<SpanBatch> {
  const rej = new Rejections();
  const end = r.len;
  let ri = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) resourceSpans(r, r.lenEnd(end), b, text, rej, ri++); // 1 resource_spans
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  return { batch: b, rejected: rej.count, rejectMessage: rej.message('span') };
}

/** ResourceSpans: 1 resource, 2 scope_spans, 3 schema_url (skipped). */
function resourceSpans(r: WireReader, end: number, b: SpanBatch, text: SpanText, rej: Rejections, ri: number): void {
  let res = EMPTY_RESOURCE;
  let si = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) res = readResource(r, r.lenEnd(end));
    else if (tag === 18) scopeSpans(r, r.lenEnd(end), b, text, rej, ri, si++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillResource(b, res);
}

/** ScopeSpans: 1 scope, 2 spans, 3 schema_url (skipped). */
function scopeSpans(r: WireReader, end: number, b: SpanBatch, text: SpanText, rej: Rejections, ri: number, si: number): void {
  const scope = new ScopeInfo();
  let i = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) scope.read(r, r.lenEnd(end));
    else if (tag === 18) span(r, r.lenEnd(end), b, text, rej, ri, si, i++);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  fillScope(b, scope.name, scope.version);
}

/** One Span: fields go to locals (any order is legal), then validated, then pushed as a row. */
function span(r: WireReader, end: number, b: SpanBatch, text: SpanText, rej: Rejections, ri: number, si: number, i: number): void {
  // Ids are kept as byte ranges and only turned into hex once the span is known to be valid.
  let traceAt = 0, traceLen = 0, spanAt = 0, spanLen = 0, parentAt = 0, parentLen = 0;
  let traceState = '', name = '', kind = 0;
  let startLo = 0, startHi = 0, endLo = 0, endHi = 0;
  let statusCode = 0, statusMessage = '';
  const attrs = text.attrs, events = text.events, links = text.links;
  const attrsAt = attrs.p, eventsAt = events.p, linksAt = links.p;
  attrs.openRow(OPEN_BRACE);
  events.openRow(OPEN_BRACKET);
  links.openRow(OPEN_BRACKET);
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10: // 1 trace_id
        traceLen = r.lenEnd(end) - r.pos;
        traceAt = r.pos;
        r.pos += traceLen;
        break;
      case 18: // 2 span_id
        spanLen = r.lenEnd(end) - r.pos;
        spanAt = r.pos;
        r.pos += spanLen;
        break;
      case 26: // 3 trace_state
        traceState = r.string(end);
        break;
      case 34: // 4 parent_span_id
        parentLen = r.lenEnd(end) - r.pos;
        parentAt = r.pos;
        r.pos += parentLen;
        break;
      case 42: // 5 name
        name = r.string(end);
        break;
      case 48: // 6 kind
        kind = r.uint32();
        break;
      case 57: // 7 start_time_unix_nano
        r.fixed64();
        startLo = r.lo;
        startHi = r.hi;
        break;
      case 65: // 8 end_time_unix_nano
        r.fixed64();
        endLo = r.lo;
        endHi = r.hi;
        break;
      case 74: // 9 attributes
        writeKeyValue(r, end, attrs, 0);
        break;
      case 90: // 11 events
        writeEvent(r, r.lenEnd(end), events);
        break;
      case 106: // 13 links
        writeLink(r, r.lenEnd(end), links);
        break;
      case 122: { // 15 status: 2 message, 3 code
        const se = r.lenEnd(end);
        while (r.pos < se) {
          const st = r.uint32();
          if (st === 18) statusMessage = r.string(se);
          else if (st === 24) statusCode = r.uint32();
          else r.skip(st & 7, se);
        }
        r.finish(se);
        break;
      }
      default: // 10/12/14 dropped counts, 16 flags, unknown fields
        r.skip(tag & 7, end);
    }
  }
  r.finish(end);

  if (traceLen !== 16 || r.isZero(traceAt, 16)) {
    rej.add(where(ri, si, i), 'trace_id must be 16 bytes and not all zero');
    attrs.p = attrsAt; events.p = eventsAt; links.p = linksAt; // the rejected span's texts
    return;
  }
  if (spanLen !== 8 || r.isZero(spanAt, 8)) {
    rej.add(where(ri, si, i), 'span_id must be 8 bytes and not all zero');
    attrs.p = attrsAt; events.p = eventsAt; links.p = linksAt; // the rejected span's texts
    return;
  }
  if (parentLen !== 0 && parentLen !== 8) {
    rej.add(where(ri, si, i), 'parent_span_id must be empty or 8 bytes');
    attrs.p = attrsAt; events.p = eventsAt; links.p = linksAt; // the rejected span's texts
    return;
  }
  text.traceId.put(r.buf, traceAt);
  text.spanId.put(r.buf, spanAt);
  // Some SDKs send an all-zero parent for roots; that is "no parent", as an absent one (zero words).
  if (parentLen === 8) text.parentSpanId.put(r.buf, parentAt);
  else text.parentSpanId.putNone();
  b.traceState.push(traceState);
  b.name.push(name);
  b.kind.push(kind <= 5 ? kind : 0);
  b.startUs.push(nanosToMicros(startLo, startHi));
  // A missing or earlier end time would give a negative duration; that is no latency at all.
  const d = nanosBetween(startLo, startHi, endLo, endHi);
  b.durationNs.push(d > 0 ? d : 0);
  b.statusCode.push(statusCode <= 2 ? statusCode : 0);
  b.statusMessage.push(statusMessage);
  attrs.closeRow(CLOSE_BRACE, '{}');
  events.closeRow(CLOSE_BRACKET, '[]');
  links.closeRow(CLOSE_BRACKET, '[]');
  b.length++;
}

function where(ri: number, si: number, i: number): string {
  return `resourceSpans[${ri}].scopeSpans[${si}].spans[${i}]`;
}

/**
 * Span.Event: 1 time_unix_nano, 2 name, 3 attributes, 4 dropped count (skipped).
 * Two passes over the event: time and name first, then the attributes, so the JSON has its
 * documented key order whatever the field order on the wire.
 */
function writeEvent(r: WireReader, end: number, w: JsonText): void {
  const start = r.pos;
  let lo = 0, hi = 0, nameAt = 0, nameEnd = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 9) {
      r.fixed64();
      lo = r.lo;
      hi = r.hi;
    } else if (tag === 18) {
      nameEnd = r.lenEnd(end);
      nameAt = r.pos;
      r.pos = nameEnd;
    } else {
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  w.sep();
  w.raw('{"timeUs":');
  w.raw(String(nanosToMicros(lo, hi)));
  w.raw(',"name":');
  w.quoted(r.buf, nameAt, nameEnd);
  w.raw(',"attrs":{');
  attributesPass(r, start, end, 26, w);
  w.raw('}}');
}

/**
 * Span.Link: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes, 5 dropped count, 6 flags.
 * A link whose ids are not 16/8 bytes cannot point anywhere, so it is left out (the span stays).
 */
function writeLink(r: WireReader, end: number, w: JsonText): void {
  const start = r.pos;
  let traceAt = 0, traceLen = 0, spanAt = 0, spanLen = 0, stateAt = 0, stateEnd = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      traceLen = r.lenEnd(end) - r.pos;
      traceAt = r.pos;
      r.pos += traceLen;
    } else if (tag === 18) {
      spanLen = r.lenEnd(end) - r.pos;
      spanAt = r.pos;
      r.pos += spanLen;
    } else if (tag === 26) {
      stateEnd = r.lenEnd(end);
      stateAt = r.pos;
      r.pos = stateEnd;
    } else {
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  if (traceLen !== 16 || spanLen !== 8) return;
  w.sep();
  w.raw('{"traceId":"');
  w.raw(r.hex(traceAt, 16));
  w.raw('","spanId":"');
  w.raw(r.hex(spanAt, 8));
  w.raw('","traceState":');
  w.quoted(r.buf, stateAt, stateEnd);
  w.raw(',"attrs":{');
  attributesPass(r, start, end, 34, w);
  w.raw('}}');
}

/** Second pass over [start, end): writes every KeyValue with tag `attrTag`, skips the rest. */
function attributesPass(r: WireReader, start: number, end: number, attrTag: number, w: JsonText): void {
  r.pos = start;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === attrTag) writeKeyValue(r, end, w, 0);
    else r.skip(tag & 7, end);
  }
}
