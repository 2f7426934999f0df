/**
 * Size limits applied to every decoded OTLP batch (on ingest and on replay of the ingest log,
 * so both see the same rows), in the manner of the OTel SDKs' attribute limits: an over-long
 * string is cut and ends with a marker saying how much was cut; attributes past the count
 * limit are dropped. Without them one request of 20 spans with 8 MiB service names makes every
 * trace listing answer hundreds of MiB. What was cut or dropped is counted (ingestCounters,
 * shown by /api/health).
 */
import { isUtf8 } from 'node:buffer';
import { at } from '../core/indexed.js';
import type { LogBatch, MetricBatch, ResourceColumns, SpanBatch } from '../telemetry/batch.js';
import { packedColumns, unpackColumn, type PackedText } from '../telemetry/packed-text.js';

export const LIMITS = {
  /** Names and identifiers: service, version, environment, span/metric/scope names, units, severity text. */
  name: 1024,
  /** One attribute value (a string, or each string inside an array or map). */
  value: 16 * 1024,
  /** Attributes per span, record, point, event, link or resource (OTel's default). */
  attributes: 128,
  /** Events and links per span (OTel's defaults). */
  events: 128,
  links: 128,
  /** A log record's body. */
  body: 64 * 1024,
  /** All string content of one attribute set, event list or link list together. */
  total: 256 * 1024,
} as const;

/** What ingest had to change; cumulative since start. */
export const ingestCounters = {
  /** Strings cut to a limit. */
  truncatedValues: 0,
  /** Attributes, events and links dropped past the count limits. */
  droppedItems: 0,
  /** Strings or request bodies whose invalid UTF-8 was replaced with U+FFFD. */
  invalidUtf8: 0,
};

/**
 * Counts `text` (decoded from bytes [start, end) of `buf`) when it holds a U+FFFD that the
 * decoder put there for invalid UTF-8 (a U+FFFD the client sent itself is valid UTF-8).
 */
export function noteUtf8(text: string, buf: Uint8Array, start: number, end: number): string {
  if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) ingestCounters.invalidUtf8++;
  return text;
}

const RESOURCE_NAME_KEYS = new Set(['service.name', 'service.version', 'deployment.environment', 'deployment.environment.name']);

/** `s` cut to `max` characters plus a marker (never splitting a surrogate pair). */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = max;
  const c = s.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  ingestCounters.truncatedValues++;
  return `${s.slice(0, cut)}…[truncated ${s.length - cut} chars]`;
}

/** Limits every string of a JSON value in place (within `budget`), returning the new value. */
function limitValue(v: unknown, budget: { left: number }, max = LIMITS.value): unknown {
  if (typeof v === 'string') {
    const out = truncate(v, Math.max(0, Math.min(max, budget.left)));
    budget.left -= out.length;
    return out;
  }
  if (Array.isArray(v)) {
    if (v.length > LIMITS.attributes) {
      ingestCounters.droppedItems += v.length - LIMITS.attributes;
      v.length = LIMITS.attributes;
    }
    for (let i = 0; i < v.length; i++) v[i] = limitValue(v[i], budget);
    return v;
  }
  if (typeof v === 'object' && v !== null) return limitAttrs(v as Record<string, unknown>, budget);
  return v;
}

function limitAttrs(o: Record<string, unknown>, budget: { left: number }, nameKeys?: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(o)) {
    if (n++ >= LIMITS.attributes) { ingestCounters.droppedItems++; continue; }
    const key = truncate(k, LIMITS.name);
    budget.left -= key.length;
    out[key] = limitValue(v, budget, nameKeys?.has(k) === true ? LIMITS.name : LIMITS.value);
  }
  return out;
}

/**
 * Could this JSON text exceed a limit? Commas bound the member count from above, so a short
 * text with few commas is certainly within limits and is not parsed.
 */
function mayExceed(text: string): boolean {
  if (text.length > LIMITS.value) return true;
  let commas = 0;
  for (let i = text.indexOf(','); i >= 0; i = text.indexOf(',', i + 1)) if (++commas >= LIMITS.attributes - 1) return true;
  return false;
}

/**
 * mayExceed() over a column kept as bytes (packed-text.ts): a byte count above the limit is
 * the conservative test (a text has at most as many chars as bytes), and a comma is one byte.
 */
function packedMayExceed(col: PackedText): boolean {
  const b = col.bytes;
  let s = 0;
  for (let i = 0; i < col.length; i++) {
    const e = at(col.ends, i);
    if (e - s > LIMITS.value) return true;
    if (e - s > 2 * (LIMITS.attributes - 1)) {
      let commas = 0;
      for (let k = b.indexOf(0x2c, s); k >= 0 && k < e; k = b.indexOf(0x2c, k + 1)) if (++commas >= LIMITS.attributes - 1) return true;
    }
    s = e;
  }
  return false;
}

/**
 * Applies `f` to a JSON text column; a column kept as bytes is left as bytes when no value of
 * it can exceed a limit (the usual case), else made a plain string column first.
 */
function mapJsonColumn(b: object, field: 'attrs' | 'events' | 'links', col: () => string[], f: (s: string) => string): void {
  const packed = packedColumns(b)?.[field];
  if (packed !== undefined) {
    if (!packedMayExceed(packed)) return;
    unpackColumn(b, field);
  }
  mapColumn(col(), f);
}

function limitJsonText(text: string, kind: 'attrs' | 'resource' | 'list', listMax = 0): string {
  if (!mayExceed(text)) return text;
  let v: unknown;
  try { v = JSON.parse(text); } catch { return text; } // not JSON: limited as plain text by the caller
  const budget = { left: LIMITS.total };
  if (kind === 'list' && Array.isArray(v)) {
    if (v.length > listMax) { ingestCounters.droppedItems += v.length - listMax; v.length = listMax; }
    for (let i = 0; i < v.length; i++) v[i] = limitValue(v[i], budget);
  } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    v = limitAttrs(v as Record<string, unknown>, budget, kind === 'resource' ? RESOURCE_NAME_KEYS : undefined);
  } else {
    return text;
  }
  return JSON.stringify(v);
}

/** Applies `f` to every string of a column. */
function mapColumn(col: string[], f: (s: string) => string): void {
  col.forEach((s, i) => { col[i] = f(s); });
}

/** Applies `f` once per run of one value (resource and scope columns repeat it on every row). */
function mapRuns(col: string[], f: (s: string) => string): void {
  let lastIn: string | undefined;
  let lastOut = '';
  col.forEach((s, i) => {
    if (s !== lastIn) { lastIn = s; lastOut = f(s); }
    col[i] = lastOut;
  });
}

const name = (s: string): string => truncate(s, LIMITS.name);

function limitResource(b: ResourceColumns): void {
  for (const col of [b.service, b.version, b.environment, b.scopeName, b.scopeVersion]) mapRuns(col, name);
  mapRuns(b.resourceAttrs, (s) => limitJsonText(s, 'resource'));
}

export function limitSpans(b: SpanBatch): SpanBatch {
  limitResource(b);
  mapColumn(b.name, name);
  mapColumn(b.traceState, name);
  mapColumn(b.statusMessage, (s) => truncate(s, LIMITS.value));
  mapJsonColumn(b, 'attrs', () => b.attrs, (s) => limitJsonText(s, 'attrs'));
  mapJsonColumn(b, 'events', () => b.events, (s) => limitJsonText(s, 'list', LIMITS.events));
  mapJsonColumn(b, 'links', () => b.links, (s) => limitJsonText(s, 'list', LIMITS.links));
  return b;
}

export function limitLogs(b: LogBatch): LogBatch {
  limitResource(b);
  mapColumn(b.severityText, name);
  mapColumn(b.body, (s) => truncate(s, LIMITS.body));
  mapColumn(b.attrs, (s) => limitJsonText(s, 'attrs'));
  return b;
}

export function limitMetrics(b: MetricBatch): MetricBatch {
  limitResource(b);
  mapColumn(b.name, name);
  mapColumn(b.unit, name);
  mapColumn(b.description, (s) => truncate(s, LIMITS.value));
  mapColumn(b.attrs, (s) => limitJsonText(s, 'attrs'));
  return b;
}
