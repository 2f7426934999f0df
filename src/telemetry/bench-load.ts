/**
 * loadSynthetic: bulk-loads realistic spans and logs into a TelemetryStore for benchmarks.
 *
 * Traces of five spans (two of them entry spans, so rollups get real work) across four services
 * with two versions each, log-normal latencies per operation, ~2% errors, spread evenly over the
 * last `hours` and appended in time order in large batches (as a steady ingest would store them).
 * Logs use a handful of message templates with variable parts; about 0.2% contain the returned
 * search term, and every 10th log carries the trace id of a nearby trace.
 */
import { randomBytes } from 'node:crypto';
import { emptyLogBatch, emptySpanBatch, type LogBatch, type SpanBatch } from './batch.js';
import type { TelemetryStore } from './store.js';

export interface SyntheticLoad {
  spans: number;
  logs: number;
  /** Spread over the last `hours` hours. Default 24. */
  hours?: number;
  /** Rows per append() call. Default 50,000. */
  batchRows?: number;
  /** End of the range (µs). Default now. */
  endUs?: number;
}

export interface SyntheticSample {
  /** A trace in the middle of the range. */
  traceId: string;
  /** 64 traces spread evenly over the range (benchmarks vary the trace per repetition). */
  traceIds: string[];
  /** A case-insensitive substring found in ~0.2% of log bodies. */
  logTerm: string;
  /** A service with entry spans (for RED queries). */
  service: string;
}

const SERVICES = ['checkout', 'payments', 'inventory'] as const;
const FRONT_OPS = ['GET /', 'GET /product/{id}', 'POST /cart', 'POST /checkout'];
const FRONT_MS = [12, 25, 30, 140];
const BACK_OPS: Record<string, string[]> = {
  checkout: ['PlaceOrder', 'GetCart'], payments: ['Charge', 'Refund'], inventory: ['Reserve', 'GetStock'],
};
const CALLS: Record<string, Record<string, string>> = Object.fromEntries(
  Object.entries(BACK_OPS).map(([svc, ops]) => [svc, Object.fromEntries(ops.map((op) => [op, `${svc}.${op}`]))]));
const LOG_TERM = 'connection reset by peer';

/** Deterministic PRNG (mulberry32) so runs are comparable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resource JSON per service and version, built once (the same string for every span). */
const resources = new Map<string, Map<string, string>>();
function resourceOf(service: string, version: string): string {
  let byVersion = resources.get(service);
  if (!byVersion) { byVersion = new Map(); resources.set(service, byVersion); }
  let r = byVersion.get(version);
  if (r === undefined) {
    r = JSON.stringify({
      'service.name': service, 'service.version': version, 'deployment.environment.name': 'prod',
      'host.name': `${service}-7d9f8c-${version.replace(/\./g, '')}`, 'telemetry.sdk.language': 'nodejs',
    });
    byVersion.set(version, r);
  }
  return r;
}

class SpanWriter {
  b: SpanBatch = emptySpanBatch();
  constructor(private readonly random: () => number) {}

  push(traceId: string, spanId: string, parent: string, service: string, version: string, name: string,
    kind: number, startUs: number, durationNs: number, error: boolean, attrs: string): void {
    const b = this.b;
    b.service.push(service); b.version.push(version); b.environment.push('prod');
    b.resourceAttrs.push(resourceOf(service, version));
    b.scopeName.push('@opentelemetry/instrumentation-http'); b.scopeVersion.push('0.52.1');
    b.traceId.push(traceId); b.spanId.push(spanId); b.parentSpanId.push(parent); b.traceState.push('');
    b.name.push(name); b.kind.push(kind); b.startUs.push(Math.floor(startUs)); b.durationNs.push(Math.floor(durationNs));
    b.statusCode.push(error ? 2 : 0); b.statusMessage.push(error ? 'upstream failed' : '');
    b.attrs.push(attrs);
    b.events.push(error ? `[{"timeUs":${Math.floor(startUs)},"name":"exception","attrs":{"exception.type":"Error"}}]` : '[]');
    b.links.push('[]');
    b.length++;
  }

  latencyNs(medianMs: number): number {
    // Log-normal (Box–Muller), sigma 0.6.
    const z = Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
    return medianMs * 1e6 * Math.exp(0.6 * z);
  }
}

export async function loadSynthetic(store: TelemetryStore, opts: SyntheticLoad): Promise<SyntheticSample> {
  const hours = opts.hours ?? 24;
  const batchRows = opts.batchRows ?? 50_000;
  const endUs = opts.endUs ?? Date.now() * 1000;
  const startUs = endUs - hours * 3600e6;
  const random = rng(42);
  const traces = Math.max(1, Math.ceil(opts.spans / 5));
  const sample = { traceId: '', traceIds: [] as string[], logTerm: LOG_TERM, service: 'frontend' };
  const every = Math.max(1, Math.floor(traces / 64));
  let spansLeft = opts.spans;
  let logsLeft = opts.logs;
  const logsPerTrace = opts.logs / traces;
  let logCarry = 0;
  let recentTrace = '';

  const frontAttrs = FRONT_OPS.map((op) => [200, 500].map((status) => JSON.stringify({
    'http.request.method': op.split(' ')[0], 'http.route': op.split(' ')[1], 'http.response.status_code': status,
    'user_agent.original': 'Mozilla/5.0',
  })));
  const rpcAttrs = Object.fromEntries(SERVICES.map((svc) => [svc, JSON.stringify({ 'rpc.system': 'grpc', 'rpc.service': svc, 'server.address': `${svc}:50051` })]));
  const dbAttrs = JSON.stringify({ 'db.system': 'postgresql', 'db.query.text': 'SELECT id, total FROM orders WHERE customer_id = $1', 'db.namespace': 'shop', 'server.address': 'pg-main' });
  // Generation of the next batch overlaps the previous batch's commit.
  let inflight: Promise<void> | undefined;
  for (let t0 = 0; t0 < traces;) {
    const w = new SpanWriter(random);
    const logs = emptyLogBatch();
    const n = Math.min(traces - t0, Math.ceil(batchRows / 5));
    const hex = randomBytes(n * 48).toString('hex');
    for (let t = 0; t < n && spansLeft > 0; t++) {
      const at = startUs + ((t0 + t) / traces) * (endUs - startUs);
      const id = hex.slice(t * 96, t * 96 + 32);
      const sid = (k: number): string => hex.slice(t * 96 + 32 + k * 16, t * 96 + 48 + k * 16);
      if (t0 + t === Math.floor(traces / 2)) sample.traceId = id;
      if ((t0 + t) % every === 0 && sample.traceIds.length < 64 && spansLeft > 0) sample.traceIds.push(id);
      const op = Math.floor(random() * FRONT_OPS.length);
      const svc = SERVICES[Math.floor(random() * SERVICES.length)];
      const canary = random() < 0.2;
      const fv = canary ? '2.8.0' : '2.7.3', bv = canary ? '1.5.0' : '1.4.2';
      const err = random() < 0.02;
      const rootNs = w.latencyNs(FRONT_MS[op]);
      const backNs = rootNs * 0.7;
      const backOp = BACK_OPS[svc][Math.floor(random() * 2)];
      const s0 = sid(0), s1 = sid(1), s2 = sid(2);
      if (spansLeft-- > 0) w.push(id, s0, '', 'frontend', fv, FRONT_OPS[op], 2, at, rootNs, err, frontAttrs[op][err ? 1 : 0]);
      if (spansLeft-- > 0) w.push(id, s1, s0, 'frontend', fv, CALLS[svc][backOp], 3, at + 200, backNs + 3e5, err, rpcAttrs[svc]);
      if (spansLeft-- > 0) {
        w.push(id, s2, s1, svc, bv, backOp, 2, at + 350, backNs, err,
          `{"rpc.system":"grpc","rpc.method":"${backOp}","app.order_id":"${Math.floor(random() * 1e9)}"}`);
      }
      if (spansLeft-- > 0) w.push(id, sid(3), s2, svc, bv, 'SELECT shop.orders', 3, at + 500, backNs * 0.4, false, dbAttrs);
      if (spansLeft-- > 0) w.push(id, sid(4), s2, svc, bv, 'validate', 1, at + 500 + backNs * 0.0004, backNs * 0.2, false, '{}');
      recentTrace = id;
      logCarry += logsPerTrace;
      for (; logCarry >= 1 && logsLeft > 0; logCarry--, logsLeft--) pushLog(logs, random, at, svc, bv, recentTrace);
    }
    t0 += n;
    const appended = store.append([{ spans: w.b, logs }]);
    appended.catch(() => undefined); // awaited below; this only marks the rejection as handled
    if (inflight) await inflight;
    inflight = appended;
  }
  await inflight;
  while (logsLeft > 0) { // only when there were too few spans to carry the logs
    const logs = emptyLogBatch();
    const n = Math.min(logsLeft, batchRows);
    for (let i = 0; i < n; i++) pushLog(logs, random, startUs + ((opts.logs - logsLeft + i) / opts.logs) * (endUs - startUs), 'frontend', '2.7.3', recentTrace);
    logsLeft -= n;
    await store.append([{ logs }]);
  }
  await store.flush();
  return sample;
}

function pushLog(b: LogBatch, random: () => number, atUs: number, service: string, version: string, traceId: string): void {
  const r = random();
  const n = Math.floor(random() * 100_000);
  let body: string, sev: number;
  if (r < 0.002) { body = `upstream ${service}:50051 ${LOG_TERM} after ${n % 900} ms`; sev = 17; }
  else if (r < 0.02) { body = `slow query took ${n % 5000} ms on shop.orders (customer ${n})`; sev = 13; }
  else if (r < 0.3) { body = `GET /product/${n} 200 in ${n % 300} ms`; sev = 9; }
  else if (r < 0.6) { body = `cache hit ratio ${(n % 100) / 100} for region eu-west-${n % 3}`; sev = 9; }
  else if (r < 0.8) { body = `order ${n} placed by customer ${n * 7 % 100_000} total ${(n % 50_000) / 100} EUR`; sev = 9; }
  else { body = `user ${n} signed in from 10.${n % 255}.${n % 13}.${n % 7}`; sev = 9; }
  const withTrace = random() < 0.1;
  b.timeUs.push(Math.floor(atUs)); b.observedTimeUs.push(Math.floor(atUs) + 1500);
  b.severityNumber.push(sev); b.severityText.push(sev >= 17 ? 'ERROR' : sev >= 13 ? 'WARN' : 'INFO');
  b.body.push(body); b.traceId.push(withTrace ? traceId : ''); b.spanId.push('');
  b.flags.push(withTrace ? 1 : 0);
  b.service.push(service); b.version.push(version); b.environment.push('prod');
  b.resourceAttrs.push(resourceOf(service, version));
  b.scopeName.push('pino'); b.scopeVersion.push('9.0.0');
  b.attrs.push(`{"logger":"${service}","thread.id":${n % 16}}`);
  b.eventName.push('');
  b.length++;
}
