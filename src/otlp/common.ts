import type { ResourceColumns } from '../telemetry/batch.js';
import { JsonText } from './jsontext.js';
import { doubleJson, int64Json, WireReader } from './wire.js';

/**
 * Pieces every OTLP signal shares: AnyValue/KeyValue straight to JSON text (protobuf side),
 * the resource and scope columns, and the rejected-item tally. Field numbers are from
 * opentelemetry-proto v1 common.proto and resource.proto.
 */

/** Deeper AnyValue nesting is refused: real data nests a few levels; hostile data would blow the stack. */
export const MAX_ANY_VALUE_DEPTH = 32;

/** The OTel key columns plus the full attribute JSON of one Resource. */
export interface ResourceInfo {
  readonly service: string;
  readonly version: string;
  readonly environment: string;
  readonly attrs: string;
}

/** batch.ts: service is `service.name`, else this. */
const DEFAULT_SERVICE = 'unknown_service';

/**
 * Resources repeat from request to request (one per service instance), and a request of a busy
 * collector carries ~150 of them: parsing each one's JSON again was ~3 % of the decode time.
 * Bounded: cleared when full (a new entry costs one JSON.parse, as before the cache).
 */
const RESOURCE_CACHE_MAX = 4096;
const resourceCache = new Map<string, ResourceInfo>();

/** Picks the OTel key columns out of resource attribute JSON text (once per resource, not per row). */
export function resourceInfo(attrsJson: string): ResourceInfo {
  const hit = resourceCache.get(attrsJson);
  if (hit !== undefined) return hit;
  const info = parseResourceInfo(attrsJson);
  if (resourceCache.size >= RESOURCE_CACHE_MAX) resourceCache.clear();
  resourceCache.set(attrsJson, info);
  return info;
}

function parseResourceInfo(attrsJson: string): ResourceInfo {
  const attrs = JSON.parse(attrsJson) as Record<string, unknown>;
  const str = (k: string): string => (typeof attrs[k] === 'string' ? attrs[k] : '');
  return {
    service: str('service.name') || DEFAULT_SERVICE,
    version: str('service.version'),
    environment: str('deployment.environment.name') || str('deployment.environment'),
    attrs: attrsJson,
  };
}

export const EMPTY_RESOURCE: ResourceInfo = resourceInfo('{}');

/**
 * Resource and scope columns are appended after their message is fully read (fields may come
 * in any order), covering every row added since: each column's own length marks where it lags.
 */
export function fillResource(b: ResourceColumns & { length: number }, res: ResourceInfo): void {
  for (let i = b.service.length; i < b.length; i++) {
    b.service.push(res.service);
    b.version.push(res.version);
    b.environment.push(res.environment);
    b.resourceAttrs.push(res.attrs);
  }
}

export function fillScope(b: ResourceColumns & { length: number }, name: string, version: string): void {
  for (let i = b.scopeName.length; i < b.length; i++) {
    b.scopeName.push(name);
    b.scopeVersion.push(version);
  }
}

/** Counts dropped items; keeps the first reason (one message is what OTLP's partial success carries). */
export class Rejections {
  count = 0;
  private first = '';

  add(where: string, reason: string): void {
    if (this.count++ === 0) this.first = `${where}: ${reason}`;
  }

  /** `n` more items dropped for the same reason (e.g. every data point of a nameless metric). */
  addMany(n: number, where: string, reason: string): void {
    if (n <= 0) return;
    if (this.count === 0) this.first = `${where}: ${reason}`;
    this.count += n;
  }

  message(noun: string): string {
    if (this.count === 0) return '';
    return this.count === 1 ? `1 ${noun} rejected: ${this.first}` : `${this.count} ${noun}s rejected; first: ${this.first}`;
  }
}

/** What each decode entry point returns. */
export interface DecodeResult<B> {
  batch: B;
  /** Items dropped as unacceptable (for OTLP partial success). */
  rejected: number;
  /** Human-readable reason; '' when nothing was rejected. */
  rejectMessage: string;
}

// --- protobuf: common.proto -------------------------------------------------------------------

/**
 * Scratch JSON writers, one per kind of text that can be in progress at once (a span's
 * attributes, events and links may interleave on the wire). Decoding is synchronous, so
 * module-level scratch is safe and saves allocating buffers per request.
 */
export const ATTRS = new JsonText();
export const EVENTS = new JsonText();
export const LINKS = new JsonText();
/** Resource attributes, log bodies: never in progress together. */
export const AUX = new JsonText();

export const OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;

/**
 * Writes one KeyValue as a `"key":value` member into the object open in `w`.
 * KeyValue: 1 key, 2 value (AnyValue). Both are located first and written after, so a value
 * arriving before its key (legal, if unusual) still comes out right.
 */
export function writeKeyValue(r: WireReader, parentEnd: number, w: JsonText, depth: number): void {
  const end = r.lenEnd(parentEnd);
  let keyAt = 0, keyEnd = 0, valueAt = -1, valueEnd = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      keyEnd = r.lenEnd(end);
      keyAt = r.pos;
      r.pos = keyEnd;
    } else if (tag === 18) {
      valueEnd = r.lenEnd(end);
      valueAt = r.pos;
      r.pos = valueEnd;
    } else {
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  w.sep();
  w.quoted(r.buf, keyAt, keyEnd);
  w.byte(COLON);
  if (valueAt < 0) {
    w.raw('null');
  } else {
    r.pos = valueAt;
    writeAnyValue(r, valueEnd, w, depth);
    r.pos = end;
  }
}

/**
 * AnyValue [pos, end) as JSON into `w`: 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue,
 * 6 KeyValueList, 7 bytes (base64). A oneof, so the last value present wins (each rewinds to
 * `at`); an empty AnyValue is `null`.
 */
export function writeAnyValue(r: WireReader, end: number, w: JsonText, depth: number): void {
  if (depth >= MAX_ANY_VALUE_DEPTH) r.fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  const at = w.p;
  let wrote = false;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10: { // 1 string_value
        const e = r.lenEnd(end);
        w.p = at;
        w.quoted(r.buf, r.pos, e);
        r.pos = e;
        wrote = true;
        break;
      }
      case 16: // 2 bool_value
        r.varint64();
        w.p = at;
        w.raw((r.lo | r.hi) !== 0 ? 'true' : 'false');
        wrote = true;
        break;
      case 24: // 3 int_value
        r.varint64();
        w.p = at;
        if (r.hi === 0 && r.lo <= 0x7fffffff) w.int(r.lo);
        else w.raw(int64Json(r.lo, r.hi));
        wrote = true;
        break;
      case 33: // 4 double_value
        w.p = at;
        w.raw(doubleJson(r.double()));
        wrote = true;
        break;
      case 42: { // 5 array_value; ArrayValue: 1 values
        const e = r.lenEnd(end);
        w.p = at;
        w.byte(OPEN_BRACKET);
        while (r.pos < e) {
          const t = r.uint32();
          if (t === 10) {
            w.sep();
            writeAnyValue(r, r.lenEnd(e), w, depth + 1);
          } else {
            r.skip(t & 7, e);
          }
        }
        r.finish(e);
        w.byte(CLOSE_BRACKET);
        wrote = true;
        break;
      }
      case 50: { // 6 kvlist_value; KeyValueList: 1 values
        const e = r.lenEnd(end);
        w.p = at;
        w.byte(OPEN_BRACE);
        while (r.pos < e) {
          const t = r.uint32();
          if (t === 10) writeKeyValue(r, e, w, depth + 1);
          else r.skip(t & 7, e);
        }
        r.finish(e);
        w.byte(CLOSE_BRACE);
        wrote = true;
        break;
      }
      case 58: { // 7 bytes_value
        const e = r.lenEnd(end);
        w.p = at;
        w.raw('"' + r.base64(r.pos, e) + '"');
        r.pos = e;
        wrote = true;
        break;
      }
      default:
        r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  if (!wrote) {
    w.p = at;
    w.raw('null');
  }
}

/**
 * A log body: a string AnyValue as the raw string, any other value as JSON text, '' when absent.
 * The string case (by far the most common) is found by a scan that makes no JSON at all.
 */
export function bodyText(r: WireReader, end: number): string {
  const start = r.pos;
  let str: string | null = null;
  let other = false;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      str = r.string(end);
      other = false;
    } else {
      const field = tag >>> 3;
      if (field >= 2 && field <= 7) other = true;
      r.skip(tag & 7, end);
    }
  }
  r.finish(end);
  if (!other) return str ?? '';
  r.pos = start;
  AUX.reset();
  writeAnyValue(r, end, AUX, 0);
  return AUX.text();
}

/** Resource: 1 attributes (repeated KeyValue); 2 dropped_attributes_count and 3 entity_refs skipped. */
export function readResource(r: WireReader, end: number): ResourceInfo {
  AUX.open(OPEN_BRACE);
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) writeKeyValue(r, end, AUX, 0);
    else r.skip(tag & 7, end);
  }
  r.finish(end);
  return resourceInfo(AUX.close(CLOSE_BRACE, '{}'));
}

/** Scope name and version out of one InstrumentationScope (1 name, 2 version; attributes skipped). */
export class ScopeInfo {
  name = '';
  version = '';

  read(r: WireReader, end: number): void {
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag === 10) this.name = r.string(end);
      else if (tag === 18) this.version = r.string(end);
      else r.skip(tag & 7, end);
    }
    r.finish(end);
  }
}
