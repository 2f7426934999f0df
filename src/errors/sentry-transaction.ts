/**
 * Sentry `transaction` items → spans in the telemetry store, so apps that only ship the Sentry
 * SDK still get traces (and RED rollups). The transaction itself is the root span
 * (`contexts.trace`), its `spans` array the children.
 */
import { emptySpanBatch, type SpanBatch } from '../telemetry/index.js';
import { sentryTimeUs } from './sentry-event.js';
import { truncate } from './sentry-span.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** Sentry span status → OTLP StatusCode (0 unset, 1 ok, 2 error). */
function statusCode(s: string): number {
  if (s === '' || s === 'unknown') return 0;
  return s === 'ok' ? 1 : 2;
}

export interface TransactionContext {
  service: string;
  nowUs: number;
}

/** Appends the transaction's spans to `batch`; returns how many were added (0 if unusable). */
export function appendTransaction(ev: Json, batch: SpanBatch, ctx: TransactionContext): number {
  const trace = obj(obj(ev.contexts).trace);
  const traceId = text(trace.trace_id).toLowerCase();
  if (!HEX32.test(traceId)) return 0;
  const release = text(ev.release);
  const environment = text(ev.environment) || 'production';
  const resource = JSON.stringify({ 'service.name': ctx.service, 'service.version': release, 'deployment.environment': environment });
  const before = batch.length;
  const add = (s: Json, name: string, kind: number, parent: string): void => {
    const spanId = text(s.span_id).toLowerCase();
    if (!HEX16.test(spanId)) return;
    const start = sentryTimeUs(s.start_timestamp, ctx.nowUs);
    const end = sentryTimeUs(s.timestamp, start);
    const attrs: Json = { ...obj(s.data) };
    if (typeof s.op === 'string') attrs['sentry.op'] = s.op;
    batch.service.push(ctx.service);
    batch.version.push(release);
    batch.environment.push(environment);
    batch.resourceAttrs.push(resource);
    batch.scopeName.push('sentry');
    batch.scopeVersion.push('');
    batch.traceId.push(traceId);
    batch.spanId.push(spanId);
    batch.parentSpanId.push(HEX16.test(parent) ? parent : '');
    batch.traceState.push('');
    batch.name.push(truncate(name) || truncate(text(s.op)) || 'span');
    batch.kind.push(kind);
    batch.startUs.push(start);
    batch.durationNs.push(Math.max(0, end - start) * 1000);
    const status = text(s.status);
    batch.statusCode.push(statusCode(status));
    batch.statusMessage.push(statusCode(status) === 2 ? status : '');
    batch.attrs.push(JSON.stringify(attrs));
    batch.events.push('[]');
    batch.links.push('[]');
    batch.length++;
  };
  const root: Json = { ...trace, start_timestamp: ev.start_timestamp, timestamp: ev.timestamp };
  const op = text(trace.op);
  add(root, text(ev.transaction), op.startsWith('http.server') ? 2 : 1, text(trace.parent_span_id).toLowerCase());
  for (const child of Array.isArray(ev.spans) ? ev.spans : []) {
    const c = obj(child);
    add(c, text(c.description), text(c.op).startsWith('http.client') || text(c.op).startsWith('db') ? 3 : 1, text(c.parent_span_id).toLowerCase());
  }
  return batch.length - before;
}

export function newSpanBatch(): SpanBatch {
  return emptySpanBatch();
}
