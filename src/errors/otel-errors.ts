/**
 * OTel errors: span events named `exception` and log records carrying `exception.*` attributes
 * (OTel semantic conventions) become ErrorEvents, grouped with the Sentry ones. They belong to the
 * default project — OTel data has no DSN — and keep the span's / record's trace and span ids.
 */
import { createHash } from 'node:crypto';
import type { LogBatch, SpanBatch, TelemetryBatches } from '../telemetry/index.js';
import { idAt } from '../telemetry/packed-ids.js';
import type { ErrorEvent, StackFrame } from './model.js';
import { newEventId } from './sentry-event.js';
import { textOf } from '../core/text.js';

type Attrs = Record<string, unknown>;

const JS_FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;
const PY_FRAME = /^\s*File "(.+)", line (\d+), in (.+)$/;
const JAVA_FRAME = /^\s*at ([\w$.<>]+)\.([\w$<>]+)\(([^:)]+)(?::(\d+))?\)$/;

function inApp(file: string): boolean {
  return !file.includes('node_modules') && !file.startsWith('node:') && !file.includes('site-packages') && !file.startsWith('internal/');
}

/** Parses a stack trace string (JS, Python or Java shape) into frames, crashing frame last. */
export function parseStacktrace(stack: string): StackFrame[] {
  const frames: StackFrame[] = [];
  let newestFirst = true;
  for (const line of stack.split('\n')) {
    let m = JS_FRAME.exec(line);
    if (m !== null) {
      frames.push({ function: m[1] ?? '?', filename: m[2], lineno: Number(m[3]), colno: Number(m[4]), inApp: inApp(m[2]) });
      continue;
    }
    m = PY_FRAME.exec(line);
    if (m !== null) {
      newestFirst = false; // Python prints the innermost call last
      frames.push({ function: m[3], filename: m[1], lineno: Number(m[2]), inApp: inApp(m[1]) });
      continue;
    }
    m = JAVA_FRAME.exec(line);
    if (m !== null) {
      const runtime = /^(?:java|javax|sun|jdk)\./.test(m[1]);
      frames.push({ module: m[1], function: m[2], filename: m[3], lineno: m[4] === undefined ? undefined : Number(m[4]), inApp: !runtime });
    }
  }
  return newestFirst ? frames.reverse() : frames;
}

function parse(json: string): unknown {
  try { return JSON.parse(json); } catch { return undefined; } // an attribute that is not JSON carries no frames
}

const str = (v: unknown): string => textOf(v);

function toEvent(
  attrs: Attrs, base: { eventId?: string; projectId: number; timeUs: number; traceId: string; spanId: string; service: string; release: string;
    environment: string; transaction: string; source: string; extraAttrs: Attrs },
): ErrorEvent {
  const type = str(attrs['exception.type']);
  const value = str(attrs['exception.message']);
  const stack = str(attrs['exception.stacktrace']);
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(base.extraAttrs)) if (typeof v !== 'object') tags[k] = str(v);
  return {
    eventId: base.eventId ?? newEventId(),
    projectId: base.projectId,
    timeUs: base.timeUs,
    service: base.service,
    release: base.release,
    environment: base.environment || 'production',
    level: 'error',
    platform: 'otel',
    traceId: base.traceId,
    spanId: base.spanId,
    exceptions: [{ type: type || 'Error', value, frames: stack === '' ? [] : parseStacktrace(stack), handled: attrs['exception.escaped'] !== true }],
    message: value,
    transaction: base.transaction,
    user: null,
    tags,
    request: null,
    source: base.source,
    payload: JSON.stringify({ attributes: attrs, context: base.extraAttrs }),
  };
}

/**
 * A span exception's event id is derived from the span (trace, span, event index, time): the
 * same span read again after a crash (otel-feed.ts) yields the same id, so replays skip it.
 */
function spanEventId(traceId: string, spanId: string, index: number, timeUs: number): string {
  return createHash('sha256').update(`${traceId}/${spanId}/${index}/${timeUs}`).digest('hex').slice(0, 32);
}

function fromSpans(b: SpanBatch, projectId: number, out: ErrorEvent[]): void {
  for (let i = 0; i < b.length; i++) {
    const ev = b.events[i];
    // Cheap test first: most spans have no exception event and are not parsed at all.
    if (ev.length < 3 || !ev.includes('"exception"')) continue;
    const list = parse(ev);
    if (!Array.isArray(list)) continue;
    for (let k = 0; k < list.length; k++) {
      const e = list[k] as { timeUs?: number; name?: string; attrs?: Attrs };
      if (e.name !== 'exception' || typeof e.attrs !== 'object') continue;
      // Ids one row at a time: the decoder's id columns stay words (telemetry/packed-ids.ts).
      const traceId = idAt(b, 'traceId', i), spanId = idAt(b, 'spanId', i);
      out.push(toEvent(e.attrs, {
        eventId: spanEventId(traceId, spanId, k, e.timeUs ?? b.startUs[i]), projectId, timeUs: e.timeUs ?? b.startUs[i], traceId, spanId, service: b.service[i],
        release: b.version[i], environment: b.environment[i], transaction: b.name[i], source: 'otel-span', extraAttrs: {},
      }));
    }
  }
}

function fromLogs(b: LogBatch, projectId: number, out: ErrorEvent[]): void {
  for (let i = 0; i < b.length; i++) {
    const a = b.attrs[i];
    if (!a.includes('"exception.')) continue;
    const attrs = parse(a) as Attrs | undefined;
    if (attrs === undefined || (attrs['exception.type'] === undefined && attrs['exception.message'] === undefined)) continue;
    const ev = toEvent(attrs, {
      projectId, timeUs: b.timeUs[i], traceId: b.traceId[i], spanId: b.spanId[i], service: b.service[i],
      release: b.version[i], environment: b.environment[i], transaction: '', source: 'otel-log', extraAttrs: {},
    });
    if (ev.message === '') ev.message = b.body[i];
    out.push(ev);
  }
}

/** Error events of exception span events (empty for the usual, error-free batch). */
export function errorsFromSpans(batches: readonly SpanBatch[], projectId: number): ErrorEvent[] {
  const out: ErrorEvent[] = [];
  for (const b of batches) fromSpans(b, projectId, out);
  return out;
}

/** Error events of log records with `exception.*` attributes. */
export function errorsFromLogs(b: LogBatch, projectId: number): ErrorEvent[] {
  const out: ErrorEvent[] = [];
  fromLogs(b, projectId, out);
  return out;
}

/** Error events hidden in decoded OTLP batches (empty for the usual, error-free batch). */
export function errorsFromTelemetry(batches: TelemetryBatches, projectId: number): ErrorEvent[] {
  const out: ErrorEvent[] = [];
  if (batches.spans !== undefined) fromSpans(batches.spans, projectId, out);
  if (batches.logs !== undefined) fromLogs(batches.logs, projectId, out);
  return out;
}
