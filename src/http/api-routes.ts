import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LogFilter, MetricAgg, TelemetryStore } from '../telemetry/index.js';
import { badRequest, notFound } from '../core/app-error.js';
import { hexId, int, num, oneOf, type Query, RESPONSE_BUDGET_CHARS, severity, step, str, timeRange, withinBudget } from './params.js';
import { openApiDocument } from './openapi.js';

/** The read API over telemetry: services, RED, traces, logs, metrics. */

const METRIC_AGGS: readonly MetricAgg[] = ['sum', 'avg', 'min', 'max', 'rate', 'p50', 'p95', 'p99'];
const LABEL_RE = /^[A-Za-z0-9_.\-/]{1,128}$/;

export interface ApiRouteOptions {
  /** Errors raised in a trace (errors/), added to GET /api/traces/:id when present. */
  errorsForTrace?: (traceId: string) => Promise<unknown[]>;
}

/** The filters shared by GET /api/logs and /api/logs/volume. */
function logFilter(q: Query, defaultS: number): LogFilter {
  const { fromUs, toUs } = timeRange(q, defaultS);
  const attrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(q)) {
    if (!key.startsWith('attr.')) continue;
    const name = key.slice(5);
    if (!LABEL_RE.test(name)) throw badRequest(`parameter '${key}': invalid attribute key`);
    if (typeof value !== 'string') throw badRequest(`parameter '${key}' given more than once`);
    attrs[name] = value;
  }
  const traceId = str(q, 'traceId');
  return {
    q: str(q, 'q'),
    service: str(q, 'service'),
    eventName: str(q, 'eventName'),
    minSeverity: severity(q, 'severity'),
    traceId: traceId === undefined ? undefined : hexId(traceId, 'traceId', 32),
    attrs,
    fromUs, toUs,
  };
}

export function registerApiRoutes(app: FastifyInstance, store: TelemetryStore, opts: ApiRouteOptions = {}): void {
  app.get('/api/openapi.json', () => openApiDocument);

  // Who the token belongs to (the console shows only the controls this role may use).
  app.get('/api/me', (req) => {
    const p = req.principal;
    return p === undefined ? null : { id: p.userId, name: p.userName, role: p.role };
  });

  app.get('/api/services', async (req) => {
    const q = req.query as Query;
    const { fromUs, toUs } = timeRange(q, 15 * 60);
    return { from: fromUs / 1000, to: toUs / 1000, services: await store.services(fromUs, toUs) };
  });

  app.get('/api/services/:service/red', async (req: FastifyRequest<{ Params: { service: string } }>) => {
    const q = req.query as Query;
    const { fromUs, toUs } = timeRange(q, 60 * 60);
    const stepS = step(q, fromUs, toUs);
    const buckets = await store.red({
      service: req.params.service,
      version: str(q, 'version'),
      environment: str(q, 'environment'),
      operation: str(q, 'operation'),
      fromUs, toUs, stepS,
    });
    return { service: req.params.service, step: stepS, buckets };
  });

  app.get('/api/traces/:traceId', async (req: FastifyRequest<{ Params: { traceId: string } }>) => {
    const traceId = hexId(req.params.traceId, 'traceId', 32);
    const all = await store.getTrace(traceId);
    if (all.length === 0) throw notFound(`trace ${traceId} not found`);
    // Spans and logs share one response budget; `truncated` says rows were left out.
    const spans = withinBudget(all);
    const logs = withinBudget(await store.searchLogs({ traceId, fromUs: 0, toUs: Number.MAX_SAFE_INTEGER, limit: 1000 }), RESPONSE_BUDGET_CHARS / 4);
    const out = { traceId, spans: spans.rows, logs: logs.rows, ...(spans.truncated || logs.truncated ? { truncated: true } : {}) };
    if (opts.errorsForTrace === undefined) return out;
    return { ...out, errors: await opts.errorsForTrace(traceId) };
  });

  app.get('/api/traces', async (req) => {
    const q = req.query as Query;
    const { fromUs, toUs } = timeRange(q, 60 * 60);
    const minMs = num(q, 'minDurationMs', 0);
    const traces = await store.searchTraces({
      service: str(q, 'service'),
      operation: str(q, 'operation'),
      minDurationNs: minMs === undefined ? undefined : minMs * 1e6,
      status: oneOf(q, 'status', ['error', 'ok'] as const),
      fromUs, toUs,
      limit: int(q, 'limit', 1, 1000) ?? 50,
    });
    const { rows, truncated } = withinBudget(traces);
    return truncated ? { traces: rows, truncated } : { traces: rows };
  });

  app.get('/api/logs', async (req) => {
    const q = req.query as Query;
    const logs = await store.searchLogs({ ...logFilter(q, 60 * 60), limit: int(q, 'limit', 1, 5000) ?? 100 });
    const { rows, truncated } = withinBudget(logs);
    return truncated ? { logs: rows, truncated } : { logs: rows };
  });

  // Every matching line counted per bucket (the search above stops at its limit): the console's histogram.
  app.get('/api/logs/volume', async (req) => {
    const q = req.query as Query;
    const filter = logFilter(q, 60 * 60);
    const n = int(q, 'buckets', 1, 1000) ?? 60;
    const stepUs = Math.max(1, Math.ceil((filter.toUs - filter.fromUs) / n));
    const buckets = await store.logVolume({ ...filter, stepUs });
    return { from: filter.fromUs / 1000, to: filter.toUs / 1000, stepMs: stepUs / 1000, total: buckets.reduce((a, b) => a + b.count, 0), buckets: buckets.map((b) => ({ time: b.timeUs / 1000, count: b.count, errors: b.errors })) };
  });

  app.get('/api/metrics/query', async (req) => {
    const q = req.query as Query;
    const name = str(q, 'name');
    if (name === undefined || name === '') throw badRequest(`parameter 'name' is required`);
    const { fromUs, toUs } = timeRange(q, 60 * 60);
    const groupBy = (str(q, 'groupBy') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const g of groupBy) if (!LABEL_RE.test(g)) throw badRequest(`parameter 'groupBy': invalid label '${g}'`);
    const stepS = step(q, fromUs, toUs);
    const series = await store.queryMetric({
      name,
      service: str(q, 'service'),
      agg: oneOf(q, 'agg', METRIC_AGGS) ?? 'avg',
      groupBy,
      fromUs, toUs, stepS,
    });
    return { name, step: stepS, series };
  });
}
