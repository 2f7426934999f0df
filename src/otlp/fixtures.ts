import protobuf from 'protobufjs/minimal.js';

/**
 * Realistic OTLP/protobuf trace payloads for tests and benchmarks: one resource (service,
 * version, environment, host, sdk), traces of a SERVER root with a database CLIENT child and an
 * HTTP CLIENT child (so ~1/3 of spans are server roots), ~8 semantic-convention attributes per
 * span, some events, ~5% errors with an exception event. Written with protobufjs's Writer so
 * the decoder is checked against an encoder other than itself.
 *
 * Ids come from a seeded generator whose state carries across calls: every payload is new (a
 * store can ingest several) and the sequence is the same on every run.
 */

type Attr = string | number | boolean;
const { Writer } = protobuf;
type ProtoWriter = protobuf.Writer;

let seed = 0x2f6b_9d31;
/** mulberry32: small, fast, good enough for fixture data. */
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function pick<T>(xs: readonly T[]): T {
  const x = xs[Math.floor(rand() * xs.length)];
  if (x === undefined) throw new Error('pick from an empty list');
  return x;
}

function randomId(bytes: number): Uint8Array {
  const id = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const v = Math.floor(rand() * 256);
    id[i] = i === 0 ? v | 1 : v; // never all zero
  }
  return id;
}

function writeAnyValue(w: ProtoWriter, v: Attr): void {
  w.fork();
  if (typeof v === 'string') w.uint32(10).string(v);
  else if (typeof v === 'boolean') w.uint32(16).bool(v);
  else if (Number.isInteger(v)) w.uint32(24).int64(v);
  else w.uint32(33).double(v);
  w.ldelim();
}

/** Repeated KeyValue under `field`. */
function writeAttrs(w: ProtoWriter, field: number, attrs: Record<string, Attr>): void {
  for (const [k, v] of Object.entries(attrs)) {
    w.uint32((field << 3) | 2).fork().uint32(10).string(k).uint32(18);
    writeAnyValue(w, v);
    w.ldelim();
  }
}

/** fixed64 Unix nanoseconds, written as its two little-endian halves. */
function writeNanos(w: ProtoWriter, field: number, ns: bigint): void {
  w.uint32((field << 3) | 1).fixed32(Number(ns & 0xffffffffn)).fixed32(Number(ns >> 32n));
}

interface FixtureSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId?: Uint8Array;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attrs: Record<string, Attr>;
  events: Array<{ timeNs: bigint; name: string; attrs: Record<string, Attr> }>;
  status?: { code: number; message: string };
}

function writeSpan(w: ProtoWriter, s: FixtureSpan): void {
  w.uint32(18).fork(); // ScopeSpans.spans
  w.uint32(10).bytes(s.traceId).uint32(18).bytes(s.spanId);
  if (s.parentSpanId) w.uint32(34).bytes(s.parentSpanId);
  w.uint32(42).string(s.name).uint32(48).int32(s.kind);
  writeNanos(w, 7, s.startNs);
  writeNanos(w, 8, s.endNs);
  writeAttrs(w, 9, s.attrs);
  for (const e of s.events) {
    w.uint32(90).fork();
    writeNanos(w, 1, e.timeNs);
    w.uint32(18).string(e.name);
    writeAttrs(w, 3, e.attrs);
    w.ldelim();
  }
  if (s.status) w.uint32(122).fork().uint32(18).string(s.status.message).uint32(24).int32(s.status.code).ldelim();
  w.ldelim();
}

const ROUTES = ['/api/users/{id}', '/api/orders', '/api/orders/{id}/items', '/api/cart/checkout', '/health', '/api/search'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const TABLES = ['users', 'orders', 'order_items', 'carts', 'inventory'];
const PEERS = ['payments.internal', 'inventory.internal', 'search.internal', 'auth.internal'];

/** One trace: server root, database child, outbound HTTP child. */
function makeTrace(baseNs: bigint): FixtureSpan[] {
  const traceId = randomId(16);
  const rootId = randomId(8);
  const route = pick(ROUTES);
  const method = pick(METHODS);
  const failed = rand() < 0.05;
  const status = failed ? 500 : pick([200, 200, 200, 201, 204, 404]);
  const startNs = baseNs + BigInt(Math.floor(rand() * 1e9));
  const rootDur = BigInt(2_000_000 + Math.floor(rand() * 200_000_000));
  const table = pick(TABLES);
  const peer = pick(PEERS);
  const dbStart = startNs + 150_123n;
  const dbEnd = dbStart + rootDur / 4n;
  const httpStart = dbEnd + 10_007n;
  const httpEnd = httpStart + rootDur / 3n;
  const root: FixtureSpan = {
    traceId, spanId: rootId, name: `${method} ${route}`, kind: 2, startNs, endNs: startNs + rootDur,
    attrs: {
      'http.method': method, 'http.route': route, 'http.target': route.replace('{id}', String(Math.floor(rand() * 1e6))),
      'http.status_code': status, 'http.scheme': 'https', 'net.host.name': 'api.example.com',
      'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
      'http.request_content_length': Math.floor(rand() * 4096),
    },
    events: rand() < 0.3 ? [{ timeNs: startNs + 50_000n, name: 'request.authenticated', attrs: { 'enduser.id': `u-${Math.floor(rand() * 1e5)}` } }] : [],
    status: failed ? { code: 2, message: 'upstream payment service failed' } : undefined,
  };
  const db: FixtureSpan = {
    traceId, spanId: randomId(8), parentSpanId: rootId, name: `SELECT ${table}`, kind: 3, startNs: dbStart, endNs: dbEnd,
    attrs: {
      'db.system': 'postgresql', 'db.name': 'shop', 'db.operation': 'SELECT', 'db.sql.table': table,
      'db.statement': `SELECT id, status, total, created_at FROM ${table} WHERE tenant_id = $1 AND id = $2 LIMIT 50`,
      'net.peer.name': 'db.internal', 'net.peer.port': 5432, 'db.rows_returned': Math.floor(rand() * 50),
    },
    events: [],
  };
  const http: FixtureSpan = {
    traceId, spanId: randomId(8), parentSpanId: rootId, name: `POST ${peer}`, kind: 3, startNs: httpStart, endNs: httpEnd,
    attrs: {
      'http.method': 'POST', 'http.url': `https://${peer}/v2/charge`, 'http.status_code': failed ? 503 : 200,
      'net.peer.name': peer, 'net.peer.port': 443, 'http.flavor': '1.1', 'http.retry_count': failed ? 2 : 0,
      'cache.hit': rand() < 0.5, 'http.response_time_ratio': Math.round(rand() * 1000) / 1000,
    },
    events: failed ? [{
      timeNs: httpEnd - 1000n, name: 'exception', attrs: {
        'exception.type': 'UpstreamError', 'exception.message': `POST https://${peer}/v2/charge returned 503`,
        'exception.stacktrace': 'UpstreamError: 503\n    at charge (/app/src/payments.ts:88:11)\n    at checkout (/app/src/cart.ts:140:5)',
      },
    }] : [],
    status: failed ? { code: 2, message: 'HTTP 503' } : undefined,
  };
  return [root, db, http];
}

/** An ExportTraceServiceRequest of `spans` realistic spans around the current time. */
export function makeRealisticTracePayload(spans: number): Uint8Array {
  const w = Writer.create();
  w.uint32(10).fork(); // ExportTraceServiceRequest.resource_spans
  w.uint32(10).fork(); // ResourceSpans.resource
  writeAttrs(w, 1, {
    'service.name': 'checkout', 'service.version': '1.42.0', 'deployment.environment.name': 'production',
    'host.name': 'checkout-7d9f8b6c5-x2k4q', 'process.pid': 4242, 'telemetry.sdk.language': 'nodejs',
    'telemetry.sdk.name': 'opentelemetry', 'telemetry.sdk.version': '2.12.1',
  });
  w.ldelim();
  w.uint32(18).fork(); // ResourceSpans.scope_spans
  w.uint32(10).fork().uint32(10).string('@opentelemetry/instrumentation-http').uint32(18).string('0.223.0').ldelim();
  const baseNs = BigInt(Date.now() - 60_000) * 1_000_000n;
  let written = 0;
  while (written < spans) {
    for (const s of makeTrace(baseNs)) {
      if (written === spans) break;
      writeSpan(w, s);
      written++;
    }
  }
  w.ldelim();
  w.ldelim();
  return w.finish();
}
