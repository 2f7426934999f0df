/**
 * Sentry `span` items → spans in the telemetry store. Sentry SDKs from 11 on stream spans by
 * default (`traceLifecycle: 'stream'`) instead of sending `transaction` events: one envelope item
 * of type `span` with content type `application/vnd.sentry.items.span.v2+json` holds a container
 *
 *     {"version": 2, "items": [ {span}, ... ]}
 *
 * and each span is flat: `trace_id` (32 hex), `span_id` (16 hex), `parent_span_id`, `name`,
 * `start_timestamp` / `end_timestamp` (seconds, fractional), `status` (`ok` | `error`),
 * `is_segment` (the local root, what a transaction was), `attributes` typed as
 * `{"key": {"type": "string|integer|double|boolean|array", "value": ..., "unit"?: ...}}` and
 * `links`. Release, environment and op travel as the attributes `sentry.release`,
 * `sentry.environment` and `sentry.op`.
 */
import { apiError } from '../core/app-error.js';
import type { SpanBatch } from '../telemetry/index.js';
import { sentryTimeUs } from './sentry-event.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** The content type of a span container item; other content types of `span` items are refused. */
export const SPAN_V2_CONTENT_TYPE = 'application/vnd.sentry.items.span.v2+json';
/** Most spans in one container (the SDKs flush at 1,000). */
export const MAX_SPANS_PER_ITEM = 1000;
/** Span names and string attribute values are cut here, with a marker (as OTel SDK limits do). */
export const MAX_TEXT_CHARS = 4096;
const MAX_ATTRIBUTES = 128;

export function truncate(s: string, max = MAX_TEXT_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[truncated ${s.length - max} chars]`;
}

/** A typed attribute value (`{type, value}`), or a plain value from older SDKs. */
function plain(v: unknown): unknown {
  const o = obj(v);
  const raw = 'value' in o ? o.value : v;
  if (typeof raw === 'string') return truncate(raw);
  if (typeof raw === 'number' || typeof raw === 'boolean') return raw;
  if (Array.isArray(raw)) return (raw as unknown[]).slice(0, MAX_ATTRIBUTES).map((x) => (typeof x === 'string' ? truncate(x) : x));
  return undefined;
}

const KINDS: Record<string, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

function kindOf(attrs: Json, op: string, isSegment: boolean): number {
  const k = KINDS[text(attrs['sentry.kind']).toLowerCase()];
  if (k !== undefined) return k;
  if (op.startsWith('http.server') || (isSegment && op === '')) return 2;
  if (op.startsWith('http.client') || op.startsWith('db')) return 3;
  return 1;
}

export interface SpanItemContext {
  service: string;
  nowUs: number;
}

/**
 * Appends the spans of one `span` item's payload to `batch`; returns how many were added.
 * Spans without valid ids are skipped (counted by the caller as the difference).
 */
export function appendSpanItem(container: Json, contentType: string, batch: SpanBatch, ctx: SpanItemContext): { added: number; skipped: number } {
  if (contentType !== '' && contentType.split(';')[0].trim().toLowerCase() !== SPAN_V2_CONTENT_TYPE) {
    throw apiError('unsupported_item', `span item content type '${contentType}' is not supported (use ${SPAN_V2_CONTENT_TYPE})`);
  }
  const items = container.items;
  if (!Array.isArray(items)) throw apiError('invalid_envelope', 'malformed envelope: span item has no items array');
  if (items.length > MAX_SPANS_PER_ITEM) {
    throw apiError('too_many_items', `span item holds ${items.length} spans; the limit is ${MAX_SPANS_PER_ITEM}`);
  }
  let added = 0;
  for (const item of items) {
    const s = obj(item);
    const traceId = text(s.trace_id).toLowerCase();
    const spanId = text(s.span_id).toLowerCase();
    if (!HEX32.test(traceId) || !HEX16.test(spanId)) continue;
    const attrs: Json = {};
    let n = 0;
    for (const [k, v] of Object.entries(obj(s.attributes))) {
      if (n++ >= MAX_ATTRIBUTES) break;
      const p = plain(v);
      if (p !== undefined) attrs[truncate(k, 256)] = p;
    }
    const release = text(attrs['sentry.release']);
    const environment = text(attrs['sentry.environment']) || 'production';
    const op = text(attrs['sentry.op']);
    const start = sentryTimeUs(s.start_timestamp, ctx.nowUs);
    const end = sentryTimeUs(s.end_timestamp, start);
    const status = text(s.status);
    const code = status === 'error' ? 2 : status === 'ok' ? 1 : 0;
    const parent = text(s.parent_span_id).toLowerCase();
    batch.service.push(ctx.service);
    batch.version.push(release);
    batch.environment.push(environment);
    batch.resourceAttrs.push(JSON.stringify({ 'service.name': ctx.service, 'service.version': release, 'deployment.environment': environment }));
    batch.scopeName.push('sentry');
    batch.scopeVersion.push('');
    batch.traceId.push(traceId);
    batch.spanId.push(spanId);
    batch.parentSpanId.push(HEX16.test(parent) ? parent : '');
    batch.traceState.push('');
    batch.name.push(truncate(text(s.name)) || op || 'span');
    batch.kind.push(kindOf(attrs, op, s.is_segment === true));
    batch.startUs.push(start);
    batch.durationNs.push(Math.max(0, end - start) * 1000);
    batch.statusCode.push(code);
    batch.statusMessage.push(code === 2 ? text(attrs['sentry.status.message']) || 'error' : '');
    batch.attrs.push(JSON.stringify(attrs));
    batch.events.push('[]');
    batch.links.push(JSON.stringify(links(s.links)));
    batch.length++;
    added++;
  }
  return { added, skipped: items.length - added };
}

function links(v: unknown): Json[] {
  if (!Array.isArray(v)) return [];
  const out: Json[] = [];
  for (const l of v.slice(0, MAX_ATTRIBUTES)) {
    const o = obj(l);
    const traceId = text(o.trace_id).toLowerCase();
    const spanId = text(o.span_id).toLowerCase();
    if (HEX32.test(traceId) && HEX16.test(spanId)) out.push({ traceId, spanId, traceState: '', attrs: {} });
  }
  return out;
}
