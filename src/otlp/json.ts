import { MAX_ANY_VALUE_DEPTH, resourceInfo, type ResourceInfo } from './common.js';
import { noteUtf8 } from './limits.js';
import { OtlpDecodeError, rethrowUnder } from './error.js';
import { doubleJson } from './wire.js';

/**
 * OTLP/JSON reading helpers (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
 * lowerCamelCase keys (the proto snake_case names are accepted too), ids as hex, 64-bit
 * integers as strings or numbers, enums as integers or their names, null as absent, unknown
 * keys ignored. Every type error throws OtlpDecodeError naming the field; callers prefix the
 * enclosing path (`spans[3]`) on the way out, so a valid body pays nothing for paths.
 */

export type JsonObject = Record<string, unknown>;

const EMPTY: readonly unknown[] = [];

export function parseJsonBody(body: Uint8Array): JsonObject {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let root: unknown;
  try {
    const text = noteUtf8(buf.toString('utf8'), buf, 0, buf.length);
    // A UTF-8 byte order mark is legal in a body but not in JSON.parse's input.
    root = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new OtlpDecodeError(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(root)) throw new OtlpDecodeError('expected a JSON object at the top level');
  return root;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A field by its lowerCamelCase name, else its proto name; `undefined` when absent or null. */
export function field(o: JsonObject, camel: string, snake: string): unknown {
  const v = Object.hasOwn(o, camel) ? o[camel] : Object.hasOwn(o, snake) ? o[snake] : undefined;
  return v === null ? undefined : v;
}

export function asObject(v: unknown, path: string): JsonObject {
  if (!isObject(v)) throw new OtlpDecodeError(`expected an object, got ${typeName(v)}`, path);
  return v;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

export function arrayField(o: JsonObject, camel: string, snake: string): readonly unknown[] {
  const v = field(o, camel, snake);
  if (v === undefined) return EMPTY;
  if (!Array.isArray(v)) throw new OtlpDecodeError(`expected an array, got ${typeName(v)}`, camel);
  return v;
}

export function objectField(o: JsonObject, camel: string, snake: string): JsonObject | undefined {
  const v = field(o, camel, snake);
  return v === undefined ? undefined : asObject(v, camel);
}

export function stringField(o: JsonObject, camel: string, snake: string): string {
  const v = field(o, camel, snake);
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new OtlpDecodeError(`expected a string, got ${typeName(v)}`, camel);
  return v;
}

export function boolField(o: JsonObject, camel: string, snake: string): boolean {
  const v = field(o, camel, snake);
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new OtlpDecodeError(`expected a boolean, got ${typeName(v)}`, camel);
  return v;
}

const INT_RE = /^-?\d+$/;
const UINT_RE = /^\d+$/;

/** int32/uint32/int64/uint64 as a number: a JSON number or a decimal string. */
export function intValue(v: unknown, path: string, unsigned: boolean): number {
  if (typeof v === 'number' && Number.isInteger(v) && (!unsigned || v >= 0)) return v;
  if (typeof v === 'string' && v.length <= 20 && (unsigned ? UINT_RE : INT_RE).test(v)) return Number(v);
  throw new OtlpDecodeError(`expected ${unsigned ? 'a non-negative' : 'an'} integer (number or decimal string)`, path);
}

export function intField(o: JsonObject, camel: string, snake: string, unsigned: boolean): number {
  const v = field(o, camel, snake);
  return v === undefined ? 0 : intValue(v, camel, unsigned);
}

/** double: a JSON number, or a string ("NaN", "Infinity", "-Infinity" or a decimal). */
export function doubleValue(v: unknown, path: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isNaN(n)) return n;
  }
  throw new OtlpDecodeError('expected a number', path);
}

export function doubleField(o: JsonObject, camel: string, snake: string, absent: number): number {
  const v = field(o, camel, snake);
  return v === undefined ? absent : doubleValue(v, camel);
}

/**
 * Unix nanoseconds split into whole seconds and the nanosecond remainder: both exact as numbers,
 * so microseconds and durations come out exact without BigInt.
 */
export class Nanos {
  sec = 0;
  sub = 0;

  get micros(): number {
    return this.sec * 1e6 + Math.floor(this.sub / 1000);
  }

  /** this - earlier, in nanoseconds. */
  since(earlier: Nanos): number {
    return (this.sec - earlier.sec) * 1e9 + (this.sub - earlier.sub);
  }

  /** Reads a fixed64 time field (string or number); absent is 0. */
  read(o: JsonObject, camel: string, snake: string): this {
    const v = field(o, camel, snake);
    let s: string;
    if (v === undefined) s = '0';
    else if (typeof v === 'string' && UINT_RE.test(v) && v.length <= 20) s = v;
    // Numbers below 1e21 print as plain digits; exact as far as the sender's number was.
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 1e21) s = String(v);
    else throw new OtlpDecodeError('expected unix nanoseconds (non-negative integer, number or decimal string)', camel);
    if (s.length <= 9) {
      this.sec = 0;
      this.sub = Number(s);
    } else {
      this.sec = Number(s.slice(0, -9));
      this.sub = Number(s.slice(-9));
    }
    return this;
  }
}

const HEX_RE = /^[0-9a-fA-F]*$/;

/** A trace (32 chars) or span (16 chars) id as lowercase hex; '' when absent or empty. */
export function hexIdField(o: JsonObject, camel: string, snake: string, chars: 32 | 16): string {
  const v = field(o, camel, snake);
  if (v === undefined || v === '') return '';
  if (typeof v !== 'string' || v.length !== chars || !HEX_RE.test(v)) {
    throw new OtlpDecodeError(`expected ${chars} hex chars`, camel);
  }
  return v.toLowerCase();
}

export function isZeroId(id: string): boolean {
  return id === '00000000000000000000000000000000' || id === '0000000000000000';
}

/** An enum as its integer or its name; integers outside 0..max are stored as 0 (as in protobuf). */
export function enumField(o: JsonObject, camel: string, snake: string, names: ReadonlyMap<string, number>, max: number): number {
  const v = field(o, camel, snake);
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v >= 0 && v <= max ? v : 0;
  if (typeof v === 'string') {
    const n = names.get(v);
    if (n !== undefined) return n;
  }
  throw new OtlpDecodeError(`expected an enum value (integer or name), got ${JSON.stringify(v)}`, camel);
}

function enumNames(prefix: string, names: readonly string[]): ReadonlyMap<string, number> {
  return new Map(names.map((n, i) => [prefix + n, i]));
}

export const SPAN_KIND = enumNames('SPAN_KIND_', ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER']);
export const STATUS_CODE = enumNames('STATUS_CODE_', ['UNSET', 'OK', 'ERROR']);
export const TEMPORALITY = enumNames('AGGREGATION_TEMPORALITY_', ['UNSPECIFIED', 'DELTA', 'CUMULATIVE']);
export const SEVERITY = enumNames('SEVERITY_NUMBER_', ['UNSPECIFIED',
  ...['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].flatMap((l) => [l, `${l}2`, `${l}3`, `${l}4`])]);

// --- AnyValue / KeyValue -----------------------------------------------------------------------

const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** An AnyValue object as JSON text (batch.ts conventions); `{}` is null. */
export function anyValueJson(v: unknown, depth: number): string {
  if (depth >= MAX_ANY_VALUE_DEPTH) throw new OtlpDecodeError(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  const o = asObject(v, '');
  let x = field(o, 'stringValue', 'string_value');
  if (x !== undefined) {
    if (typeof x !== 'string') throw new OtlpDecodeError('expected a string', 'stringValue');
    return JSON.stringify(x);
  }
  x = field(o, 'boolValue', 'bool_value');
  if (x !== undefined) {
    if (typeof x !== 'boolean') throw new OtlpDecodeError('expected a boolean', 'boolValue');
    return x ? 'true' : 'false';
  }
  x = field(o, 'intValue', 'int_value');
  if (x !== undefined) {
    const n = intValue(x, 'intValue', false);
    if (Number.isSafeInteger(n)) return String(n);
    // Beyond ±2^53 a JSON number would silently change: keep the sender's digits (or the exact
    // integer its double holds; String() would round to the shortest form) as a string.
    return '"' + (typeof x === 'string' ? BigInt(x).toString() : BigInt(n).toString()) + '"';
  }
  x = field(o, 'doubleValue', 'double_value');
  if (x !== undefined) return doubleJson(doubleValue(x, 'doubleValue'));
  x = field(o, 'arrayValue', 'array_value');
  if (x !== undefined) {
    let out = '';
    try {
      const vals = arrayField(asObject(x, ''), 'values', 'values');
      for (let i = 0; i < vals.length; i++) {
        let item: string;
        try {
          item = anyValueJson(vals[i], depth + 1);
        } catch (err) {
          rethrowUnder(err, `values[${i}]`);
        }
        out = i === 0 ? item : out + ',' + item;
      }
    } catch (err) {
      rethrowUnder(err, 'arrayValue');
    }
    return '[' + out + ']';
  }
  x = field(o, 'kvlistValue', 'kvlist_value');
  if (x !== undefined) {
    try {
      return keyValuesJson(arrayField(asObject(x, ''), 'values', 'values'), depth + 1, 'values');
    } catch (err) {
      rethrowUnder(err, 'kvlistValue');
    }
  }
  x = field(o, 'bytesValue', 'bytes_value');
  if (x !== undefined) {
    if (typeof x !== 'string' || !BASE64_RE.test(x)) throw new OtlpDecodeError('expected a base64 string', 'bytesValue');
    return '"' + Buffer.from(x, 'base64').toString('base64') + '"';
  }
  return 'null';
}

/** A KeyValue array as a JSON object text; `name` is the array's field name, for paths. */
export function keyValuesJson(list: readonly unknown[], depth: number, name: string): string {
  let out = '';
  for (let i = 0; i < list.length; i++) {
    let member: string;
    try {
      const kv = asObject(list[i], '');
      const value = field(kv, 'value', 'value');
      let valueJson = 'null';
      if (value !== undefined) {
        try {
          valueJson = anyValueJson(value, depth);
        } catch (err) {
          rethrowUnder(err, 'value');
        }
      }
      member = JSON.stringify(stringField(kv, 'key', 'key')) + ':' + valueJson;
    } catch (err) {
      rethrowUnder(err, `${name}[${i}]`);
    }
    out = i === 0 ? member : out + ',' + member;
  }
  return '{' + out + '}';
}

/** `attributes` of any message as JSON object text. */
export function attributesJson(o: JsonObject): string {
  const list = arrayField(o, 'attributes', 'attributes');
  return list.length === 0 ? '{}' : keyValuesJson(list, 0, 'attributes');
}

/** A log body: a stringValue as is, any other AnyValue as JSON text, '' when absent. */
export function bodyText(o: JsonObject): string {
  const v = field(o, 'body', 'body');
  if (v === undefined) return '';
  try {
    const s = field(asObject(v, ''), 'stringValue', 'string_value');
    if (typeof s === 'string') return s;
    const json = anyValueJson(v, 0);
    return json === 'null' ? '' : json;
  } catch (err) {
    rethrowUnder(err, 'body');
  }
}

export function resourceField(o: JsonObject): ResourceInfo {
  try {
    const res = objectField(o, 'resource', 'resource');
    return resourceInfo(res === undefined ? '{}' : attributesJson(res));
  } catch (err) {
    rethrowUnder(err, 'resource');
  }
}

export function scopeField(o: JsonObject): { name: string; version: string } {
  try {
    const scope = objectField(o, 'scope', 'scope');
    if (scope === undefined) return { name: '', version: '' };
    return { name: stringField(scope, 'name', 'name'), version: stringField(scope, 'version', 'version') };
  } catch (err) {
    rethrowUnder(err, 'scope');
  }
}
