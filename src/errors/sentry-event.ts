/**
 * Sentry event JSON (the `event` item of an envelope, or the body of /store/) → ErrorEvent.
 * Only the fields grouping, the group record and the API need are read; the whole payload is
 * kept as received for the detail view.
 */
import { apiError } from '../core/app-error.js';
import type { ErrorEvent, ExceptionInfo, RawSentryEvent, StackFrame } from './model.js';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Sentry timestamps are RFC 3339 strings or float seconds. */
export function sentryTimeUs(v: unknown, fallbackUs: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1e6);
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms * 1000;
  }
  return fallbackUs;
}

function frame(v: unknown): StackFrame | undefined {
  const f = obj(v);
  if (f === undefined) return undefined;
  const out: StackFrame = {};
  if (typeof f.module === 'string') out.module = f.module;
  const file = text(f.filename) || text(f.abs_path);
  if (file !== '') out.filename = file;
  if (typeof f.function === 'string') out.function = f.function;
  if (typeof f.lineno === 'number') out.lineno = f.lineno;
  if (typeof f.colno === 'number') out.colno = f.colno;
  if (typeof f.in_app === 'boolean') out.inApp = f.in_app;
  return out;
}

function exceptions(ev: Json): ExceptionInfo[] {
  const ex = ev.exception;
  const values = Array.isArray(ex) ? ex : arr(obj(ex)?.values);
  const out: ExceptionInfo[] = [];
  for (const v of values) {
    const e = obj(v);
    if (e === undefined) continue;
    const frames: StackFrame[] = [];
    for (const f of arr(obj(e.stacktrace)?.frames)) {
      const fr = frame(f);
      if (fr !== undefined) frames.push(fr);
    }
    const mech = obj(e.mechanism);
    // captureMessage in SDKs 11 attaches its call stack as a synthetic exception without a type:
    // a message, grouped and titled by its text as before, not an exception named "Error".
    if (mech?.synthetic === true && text(e.type) === '' && messageOf(ev) !== '') continue;
    out.push({
      type: text(e.type) || 'Error',
      value: text(e.value),
      frames,
      handled: typeof mech?.handled === 'boolean' ? mech.handled : undefined,
    });
  }
  return out;
}

function messageOf(ev: Json): string {
  const le = obj(ev.logentry) ?? obj(ev['sentry.interfaces.Message']);
  if (le !== undefined) return text(le.message) || text(le.formatted);
  const m = ev.message;
  if (typeof m === 'string') return m;
  const mo = obj(m);
  return mo === undefined ? '' : text(mo.message) || text(mo.formatted);
}

function tagsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const pair of v) if (Array.isArray(pair) && pair.length === 2) out[text(pair[0])] = text(pair[1]);
  } else {
    for (const [k, val] of Object.entries(obj(v) ?? {})) out[k] = text(val) || JSON.stringify(val);
  }
  return out;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** A fresh event id (32 hex) for events that arrive without one. */
export function newEventId(): string {
  return crypto.randomUUID().replace(/-/g, '');
}

/** Maps a parsed Sentry event; `service` is the project's name unless the SDK says otherwise. */
export function fromSentryEvent(ev: Json, payload: string, projectId: number, service: string, nowUs: number): ErrorEvent {
  const contexts = obj(ev.contexts) ?? {};
  const trace = obj(contexts.trace) ?? {};
  const traceId = text(trace.trace_id).toLowerCase();
  const spanId = text(trace.span_id).toLowerCase();
  const eventId = text(ev.event_id).toLowerCase().replace(/-/g, '');
  const resource = obj(obj(contexts.otel)?.resource);
  const fp = Array.isArray(ev.fingerprint) ? ev.fingerprint.map((x) => text(x)) : undefined;
  return {
    eventId: HEX32.test(eventId) ? eventId : newEventId(),
    projectId,
    timeUs: sentryTimeUs(ev.timestamp, nowUs),
    service: text(resource?.['service.name']) || service,
    release: text(ev.release),
    environment: text(ev.environment) || 'production',
    level: text(ev.level) || 'error',
    platform: text(ev.platform) || 'other',
    traceId: HEX32.test(traceId) ? traceId : '',
    spanId: HEX16.test(spanId) ? spanId : '',
    exceptions: exceptions(ev),
    message: messageOf(ev),
    fingerprint: fp !== undefined && fp.length > 0 ? fp : undefined,
    transaction: text(ev.transaction) || text(ev.culprit),
    user: obj(ev.user) ?? null,
    tags: tagsOf(ev.tags),
    request: obj(ev.request) ?? null,
    source: 'sentry',
    payload,
  };
}

/**
 * Parses and maps a Sentry event item that arrived as bytes (where the commit runs). Not JSON or
 * not an object → AppError 400 `invalid_envelope`, the message the route gave before.
 */
export function fromRawSentryEvent(r: RawSentryEvent): ErrorEvent {
  const bytes = r.raw;
  const json = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8');
  let v: unknown;
  try { v = JSON.parse(json); } catch { throw apiError('invalid_envelope', 'malformed envelope: event item is not JSON'); }
  const ev = obj(v);
  if (ev === undefined) throw apiError('invalid_envelope', 'malformed envelope: event item is not a JSON object');
  // With the sender's compressed copy stored, the 50 KB text is not kept: the batch holds its
  // events until the commit, long enough for the young generation to promote them.
  const out = fromSentryEvent(ev, r.compressed === undefined ? json : '', r.projectId, r.service, r.nowUs);
  if (r.compressed !== undefined) out.compressed = r.compressed;
  return out;
}
