/**
 * Test helpers: build column batches from row objects (missing fields get OTLP-like defaults).
 * Used by the store conformance suite and the store/writer tests.
 */
import {
  emptyLogBatch, emptyMetricBatch, emptySpanBatch, type LogBatch, type MetricBatch, type MetricType, type SpanBatch,
} from './batch.js';

export interface SpanInput {
  traceId: string; spanId: string; parentSpanId?: string; name?: string; kind?: number;
  startUs: number; durationNs?: number; statusCode?: number; statusMessage?: string; traceState?: string;
  service?: string; version?: string; environment?: string; resourceAttrs?: Record<string, unknown>;
  scopeName?: string; scopeVersion?: string; attrs?: Record<string, unknown>;
  events?: Array<{ timeUs: number; name: string; attrs: Record<string, unknown> }>;
  links?: Array<{ traceId: string; spanId: string; traceState: string; attrs: Record<string, unknown> }>;
}

export interface LogInput {
  timeUs: number; observedTimeUs?: number; severityNumber?: number; severityText?: string; body?: string;
  traceId?: string; spanId?: string; flags?: number; service?: string; version?: string; environment?: string;
  resourceAttrs?: Record<string, unknown>; scopeName?: string; attrs?: Record<string, unknown>; eventName?: string;
}

export interface MetricInput {
  name: string; type?: MetricType; timeUs: number; startTimeUs?: number; temporality?: number; isMonotonic?: boolean;
  value?: number; count?: number; sum?: number; min?: number; max?: number;
  /** Histogram bounds and bucket counts (counts.length = bounds.length + 1). */
  bounds?: number[]; counts?: number[];
  service?: string; version?: string; environment?: string; attrs?: Record<string, unknown>; unit?: string;
}

function resource(b: SpanBatch | LogBatch | MetricBatch, r: { service?: string; version?: string; environment?: string; resourceAttrs?: Record<string, unknown> }): void {
  const service = r.service ?? 'unknown_service';
  b.service.push(service);
  b.version.push(r.version ?? '');
  b.environment.push(r.environment ?? '');
  b.resourceAttrs.push(JSON.stringify(r.resourceAttrs ?? { 'service.name': service }));
}

export function spanBatch(rows: SpanInput[]): SpanBatch {
  const b = emptySpanBatch();
  for (const r of rows) {
    resource(b, r);
    b.scopeName.push(r.scopeName ?? 'test-scope');
    b.scopeVersion.push(r.scopeVersion ?? '1.0.0');
    b.traceId.push(r.traceId);
    b.spanId.push(r.spanId);
    b.parentSpanId.push(r.parentSpanId ?? '');
    b.traceState.push(r.traceState ?? '');
    b.name.push(r.name ?? 'op');
    b.kind.push(r.kind ?? (r.parentSpanId ? 1 : 2));
    b.startUs.push(r.startUs);
    b.durationNs.push(r.durationNs ?? 1_000_000);
    b.statusCode.push(r.statusCode ?? 0);
    b.statusMessage.push(r.statusMessage ?? '');
    b.attrs.push(JSON.stringify(r.attrs ?? {}));
    b.events.push(JSON.stringify(r.events ?? []));
    b.links.push(JSON.stringify(r.links ?? []));
    b.length++;
  }
  return b;
}

export function logBatch(rows: LogInput[]): LogBatch {
  const b = emptyLogBatch();
  for (const r of rows) {
    resource(b, r);
    b.scopeName.push(r.scopeName ?? 'test-logger');
    b.scopeVersion.push('');
    b.timeUs.push(r.timeUs);
    b.observedTimeUs.push(r.observedTimeUs ?? r.timeUs);
    b.severityNumber.push(r.severityNumber ?? 9);
    b.severityText.push(r.severityText ?? 'INFO');
    b.body.push(r.body ?? '');
    b.traceId.push(r.traceId ?? '');
    b.spanId.push(r.spanId ?? '');
    b.flags.push(r.flags ?? 0);
    b.attrs.push(JSON.stringify(r.attrs ?? {}));
    b.eventName.push(r.eventName ?? '');
    b.length++;
  }
  return b;
}

export function metricBatch(rows: MetricInput[]): MetricBatch {
  const b = emptyMetricBatch();
  for (const r of rows) {
    resource(b, r);
    b.scopeName.push('test-meter');
    b.scopeVersion.push('');
    const type = r.type ?? 'gauge';
    b.name.push(r.name);
    b.description.push('');
    b.unit.push(r.unit ?? '');
    b.type.push(type);
    b.temporality.push(r.temporality ?? (type === 'gauge' ? 0 : 2));
    b.isMonotonic.push(r.isMonotonic ?? type === 'sum');
    b.timeUs.push(r.timeUs);
    b.startTimeUs.push(r.startTimeUs ?? 0);
    b.value.push(type === 'gauge' || type === 'sum' ? (r.value ?? 0) : NaN);
    const counts = r.counts ?? [];
    b.count.push(r.count ?? counts.reduce((a, c) => a + c, 0));
    b.sum.push(r.sum ?? 0);
    b.min.push(r.min ?? NaN);
    b.max.push(r.max ?? NaN);
    b.detail.push(type === 'histogram' ? JSON.stringify({ bounds: r.bounds ?? [], counts }) : '');
    b.attrs.push(JSON.stringify(r.attrs ?? {}));
    b.length++;
  }
  return b;
}

/** Deterministic hex id of `chars` digits from a number (test ids that sort predictably). */
export function hexOf(n: number, chars: 32 | 16): string {
  return n.toString(16).padStart(chars, '0').slice(-chars);
}

/** Exact q-quantile by the rank rule the sketches use (value at rank floor(q·(n−1))). */
export function exactQuantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))];
}
