/**
 * Load generator for `npm run bench -- ingest` (not a benchmark itself: run.mjs skips `_` names).
 *
 * Realistic OTLP/protobuf requests, every one fresh, cheap enough that the generator is never the
 * bottleneck: a few dozen templates are encoded once, recording where each id, timestamp and
 * high-cardinality digit run sits in the bytes; a request is a copy of a template with those
 * places overwritten (new random trace and span ids, parent ids that match, times around now,
 * new user ids, order numbers and URLs). The trace request and its log request share the ids.
 *
 * Shape: 50 services × 20 operations × 3 versions; a trace is a SERVER root, a database CLIENT
 * and an HTTP CLIENT child, and the SERVER span of the called service (4 spans, 2 entry spans);
 * 10% of traces fail on both entry spans (5% of spans are errors, each with an exception event
 * whose stack names the service and operation); one log record per trace (per 4 spans), carrying
 * the root's trace and span id. Spans are grouped by service and version into resources.
 */
import { randomFillSync } from 'node:crypto';

const SERVICE_NAMES = [
  'checkout', 'payments', 'inventory', 'search', 'auth', 'users', 'cart', 'shipping', 'pricing', 'catalog',
  'reviews', 'recommend', 'notify', 'email', 'sms', 'billing', 'invoices', 'tax', 'fraud', 'ledger',
  'accounts', 'sessions', 'profile', 'media', 'images', 'video', 'uploads', 'exports', 'imports', 'reports',
  'analytics', 'metering', 'audit', 'gateway', 'edge', 'geo', 'maps', 'routing', 'orders', 'returns',
  'loyalty', 'coupons', 'ads', 'feed', 'chat', 'support', 'tickets', 'scheduler', 'warehouse', 'quotes',
];
const ROUTES = [
  'GET /api/{s}', 'GET /api/{s}/{id}', 'POST /api/{s}', 'PUT /api/{s}/{id}', 'DELETE /api/{s}/{id}',
  'GET /api/{s}/{id}/history', 'GET /api/{s}/{id}/items', 'POST /api/{s}/{id}/items', 'GET /api/{s}/search',
  'POST /api/{s}/batch', 'GET /api/{s}/{id}/status', 'PATCH /api/{s}/{id}', 'GET /api/{s}/export',
  'POST /api/{s}/import', 'GET /api/{s}/{id}/events', 'POST /api/{s}/{id}/retry', 'GET /api/{s}/summary',
  'GET /api/{s}/{id}/links', 'POST /api/{s}/{id}/cancel', 'GET /internal/{s}/health',
];
export const SERVICES = SERVICE_NAMES.length;
export const OPERATIONS = ROUTES.length;
export const VERSIONS = 3;
const TABLES = ['users', 'orders', 'order_items', 'carts', 'inventory', 'payments', 'sessions', 'events'];
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';

// Patch kinds.
const K_TRACE = 0;
const K_SPAN = 1;
const K_TIME = 2;
const K_DIGITS = 3;

/** A protobuf writer that remembers where the parts to overwrite are. */
class Enc {
  private buf = Buffer.allocUnsafe(256);
  len = 0;
  readonly patches: number[] = []; // triples: offset, kind, arg

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private push(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  varint(v: number): this {
    this.room(10);
    while (v >= 0x80) { this.buf[this.len++] = (v % 0x80) | 0x80; v = Math.floor(v / 0x80); }
    this.buf[this.len++] = v;
    return this;
  }

  tag(field: number, wire: number): this { return this.varint(field * 8 + wire); }

  /** Bytes field whose content is patched per request (`kind`, `arg`). */
  patched(field: number, bytes: number, kind: number, arg: number): this {
    this.tag(field, kind === K_TIME ? 1 : 2);
    if (kind !== K_TIME) this.varint(bytes);
    this.patches.push(this.len, kind, arg);
    this.push(new Uint8Array(bytes));
    return this;
  }

  time(field: number, relNs: number): this { return this.patched(field, 8, K_TIME, relNs); }

  string(field: number, s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.tag(field, 2).varint(b.length);
    this.push(b);
    return this;
  }

  /** A string with runs of `#` replaced by fresh digits on every request. */
  digits(field: number, s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.tag(field, 2).varint(b.length);
    const at = this.len;
    for (let i = 0; i < b.length;) {
      if (b[i] !== 0x23) { i++; continue; }
      let j = i;
      while (j < b.length && b[j] === 0x23) j++;
      this.patches.push(at + i, K_DIGITS, j - i);
      i = j;
    }
    this.push(b);
    return this;
  }

  int(field: number, v: number): this { return this.tag(field, 0).varint(v); }

  message(field: number, m: Enc): this {
    this.tag(field, 2).varint(m.len);
    const at = this.len;
    for (let i = 0; i < m.patches.length; i += 3) this.patches.push(m.patches[i] + at, m.patches[i + 1], m.patches[i + 2]);
    this.push(m.buf.subarray(0, m.len));
    return this;
  }

  finish(): Buffer { return Buffer.from(this.buf.subarray(0, this.len)); }
}

type Val = string | number | boolean | { digits: string };

function anyValue(v: Val): Enc {
  const e = new Enc();
  if (typeof v === 'string') e.string(1, v);
  else if (typeof v === 'boolean') e.int(2, v ? 1 : 0);
  else if (typeof v === 'number') e.int(3, v);
  else e.digits(1, v.digits);
  return e;
}

function attrs(into: Enc, field: number, kv: Record<string, Val>): void {
  for (const [k, v] of Object.entries(kv)) into.message(field, new Enc().string(1, k).message(2, anyValue(v)));
}

/** Deterministic PRNG (mulberry32): the templates are the same on every run. */
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

interface SpanT {
  trace: number; span: number; parent: number; svc: number; version: number;
  name: string; kind: number; startNs: number; endNs: number; attrs: Record<string, Val>; error?: { type: string; stack: string };
}

export interface Template {
  traces: Buffer;
  logs: Buffer;
  tracePatches: Int32Array;
  logPatches: Int32Array;
  /** Relative times (ns) of the K_TIME patches, at the index of their patch triple. */
  traceTimes: Float64Array;
  logTimes: Float64Array;
  traceCount: number;
  spanCount: number;
  logCount: number;
}

function resourceEnc(svc: number, version: number): Enc {
  const r = new Enc();
  const name = SERVICE_NAMES[svc];
  attrs(r, 1, {
    'service.name': name, 'service.version': `2.${svc % 7}.${version}`, 'deployment.environment.name': 'production',
    'host.name': `${name}-7d9f8b6c5-${version}x${svc}`, 'telemetry.sdk.language': 'nodejs', 'telemetry.sdk.name': 'opentelemetry',
  });
  return r;
}

/** One template of `traces` traces (4 spans and 1 log each). */
export function makeTemplate(traces: number, seed: number): Template {
  const rand = rng(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const spans: SpanT[] = [];
  const logs: Array<{ trace: number; span: number; svc: number; version: number; timeNs: number; error: boolean; route: string }> = [];
  let spanNo = 0;
  for (let t = 0; t < traces; t++) {
    const a = pick(SERVICES), b = (a + 1 + pick(SERVICES - 1)) % SERVICES;
    const va = pick(VERSIONS), vb = pick(VERSIONS);
    const ra = ROUTES[pick(OPERATIONS)].replace('{s}', SERVICE_NAMES[a]);
    const rb = ROUTES[pick(OPERATIONS)].replace('{s}', SERVICE_NAMES[b]);
    const failed = rand() < 0.1;
    const start = Math.floor(rand() * 900e6);
    const dur = Math.floor(2e6 + Math.exp(rand() * 4) * 3e6);
    const root = spanNo++, db = spanNo++, http = spanNo++, remote = spanNo++;
    const [ma, pa] = ra.split(' ');
    const [mb, pb] = rb.split(' ');
    const table = TABLES[pick(TABLES.length)];
    spans.push({
      trace: t, span: root, parent: -1, svc: a, version: va, name: ra, kind: 2, startNs: start, endNs: start + dur,
      attrs: {
        'http.request.method': ma, 'http.route': pa, 'url.path': { digits: pa.replace('{id}', '##########') },
        'url.full': { digits: `https://shop.example.com${pa.replace('{id}', '##########')}?session=################` },
        'http.response.status_code': failed ? 500 : 200, 'enduser.id': { digits: 'user-########' },
        'user_agent.original': UA, 'server.address': 'shop.example.com', 'http.request.body.size': 100 + pick(4000),
      },
      error: failed ? { type: 'UpstreamError', stack: `UpstreamError: ${mb} ${pb} failed\n    at call (/app/src/${SERVICE_NAMES[a]}/client.ts:${40 + pick(5)}:11)\n    at handle (/app/src/${SERVICE_NAMES[a]}/routes.ts:${100 + (ra.length % 20)}:5)` } : undefined,
    });
    spans.push({
      trace: t, span: db, parent: root, svc: a, version: va, name: `SELECT ${table}`, kind: 3, startNs: start + 150_000, endNs: start + Math.floor(dur / 4),
      attrs: {
        'db.system': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT', 'db.collection.name': table,
        'db.query.text': `SELECT id, status, total FROM ${table} WHERE tenant_id = $1 AND id = $2 LIMIT 50`, 'server.address': 'db.internal', 'server.port': 5432,
      },
    });
    spans.push({
      trace: t, span: http, parent: root, svc: a, version: va, name: `${mb}`, kind: 3, startNs: start + Math.floor(dur / 4) + 10_000, endNs: start + dur - 20_000,
      attrs: {
        'http.request.method': mb, 'url.full': { digits: `http://${SERVICE_NAMES[b]}.internal${pb.replace('{id}', '##########')}` },
        'http.response.status_code': failed ? 503 : 200, 'server.address': `${SERVICE_NAMES[b]}.internal`, 'server.port': 8080,
      },
    });
    spans.push({
      trace: t, span: remote, parent: http, svc: b, version: vb, name: rb, kind: 2, startNs: start + Math.floor(dur / 4) + 200_000, endNs: start + dur - 100_000,
      attrs: { 'http.request.method': mb, 'http.route': pb, 'url.path': { digits: pb.replace('{id}', '##########') }, 'http.response.status_code': failed ? 503 : 200, 'enduser.id': { digits: 'user-########' } },
      error: failed ? { type: 'DatabaseTimeout', stack: `DatabaseTimeout: query timed out after 5000 ms\n    at query (/app/src/${SERVICE_NAMES[b]}/db.ts:${20 + pick(5)}:9)\n    at ${mb.toLowerCase()}Handler (/app/src/${SERVICE_NAMES[b]}/routes.ts:${60 + (rb.length % 30)}:3)` } : undefined,
    });
    logs.push({ trace: t, span: root, svc: a, version: va, timeNs: start + Math.floor(dur / 2), error: failed, route: ra });
  }

  // Traces: one ResourceSpans per service × version, one scope.
  const byResource = new Map<number, SpanT[]>();
  for (const s of spans) {
    const key = s.svc * VERSIONS + s.version;
    let list = byResource.get(key);
    if (list === undefined) byResource.set(key, list = []);
    list.push(s);
  }
  const tr = new Enc();
  for (const [key, list] of byResource) {
    const ss = new Enc().message(1, new Enc().string(1, '@opentelemetry/instrumentation-http').string(2, '0.223.0'));
    for (const s of list) {
      const e = new Enc().patched(1, 16, K_TRACE, s.trace).patched(2, 8, K_SPAN, s.span);
      if (s.parent >= 0) e.patched(4, 8, K_SPAN, s.parent);
      e.string(5, s.name).int(6, s.kind).time(7, s.startNs).time(8, s.endNs);
      attrs(e, 9, s.attrs);
      if (s.error !== undefined) {
        const ev = new Enc().time(1, s.endNs - 1000).string(2, 'exception');
        attrs(ev, 3, { 'exception.type': s.error.type, 'exception.message': { digits: `${s.error.type} for order ##########` }, 'exception.stacktrace': s.error.stack });
        e.message(11, ev);
        e.message(15, new Enc().string(2, s.error.type).int(3, 2));
      }
      ss.message(2, e);
    }
    tr.message(1, new Enc().message(1, resourceEnc(Math.floor(key / VERSIONS), key % VERSIONS)).message(2, ss));
  }

  // Logs: one ResourceLogs per service × version of the roots.
  const logsBy = new Map<number, typeof logs>();
  for (const l of logs) {
    const key = l.svc * VERSIONS + l.version;
    let list = logsBy.get(key);
    if (list === undefined) logsBy.set(key, list = []);
    list.push(l);
  }
  const lg = new Enc();
  for (const [key, list] of logsBy) {
    const sl = new Enc().message(1, new Enc().string(1, 'pino'));
    for (const l of list) {
      const r = new Enc().time(1, l.timeNs).int(2, l.error ? 17 : 9).string(3, l.error ? 'ERROR' : 'INFO');
      r.message(5, anyValue({ digits: l.error ? `${l.route} failed for user-######## order ##########: upstream returned 503` : `${l.route} served user-######## order ########## in ### ms` }));
      attrs(r, 6, { 'enduser.id': { digits: 'user-########' }, 'http.route': l.route.split(' ')[1] });
      r.patched(9, 16, K_TRACE, l.trace).patched(10, 8, K_SPAN, l.span).time(11, l.timeNs + 1000);
      sl.message(2, r);
    }
    lg.message(1, new Enc().message(1, resourceEnc(Math.floor(key / VERSIONS), key % VERSIONS)).message(2, sl));
  }
  const pack = (e: Enc): { p: Int32Array; t: Float64Array } => {
    const p = new Int32Array(e.patches.length);
    const t = new Float64Array(e.patches.length);
    for (let i = 0; i < e.patches.length; i += 3) {
      p[i] = e.patches[i]; p[i + 1] = e.patches[i + 1];
      if (e.patches[i + 1] === K_TIME) { t[i] = e.patches[i + 2]; p[i + 2] = 0; } else p[i + 2] = e.patches[i + 2];
    }
    return { p, t };
  };
  const tp = pack(tr), lp = pack(lg);
  return {
    traces: tr.finish(), logs: lg.finish(), tracePatches: tp.p, traceTimes: tp.t, logPatches: lp.p, logTimes: lp.t,
    traceCount: traces, spanCount: spans.length, logCount: logs.length,
  };
}

const DIGITS = Buffer.alloc(1 << 16);
for (let i = 0; i < DIGITS.length; i++) DIGITS[i] = 0x30 + Math.floor(Math.random() * 10);

function apply(out: Buffer, patches: Int32Array, times: Float64Array, ids: Buffer, spanBase: number, baseLo: number, baseHi: number): void {
  // Byte loops, not Buffer.copy: a native call per 8-byte id costs more than the copy.
  let d = Math.floor(Math.random() * (DIGITS.length - 4096));
  for (let i = 0; i < patches.length; i += 3) {
    const off = patches[i];
    const kind = patches[i + 1];
    if (kind === K_TIME) {
      const lo = baseLo + times[i];
      const carry = Math.floor(lo / 4294967296);
      const l = lo - carry * 4294967296;
      const h = baseHi + carry;
      out[off] = l & 0xff; out[off + 1] = (l >>> 8) & 0xff; out[off + 2] = (l >>> 16) & 0xff; out[off + 3] = l >>> 24;
      out[off + 4] = h & 0xff; out[off + 5] = (h >>> 8) & 0xff; out[off + 6] = (h >>> 16) & 0xff; out[off + 7] = h >>> 24;
    } else if (kind === K_DIGITS) {
      const n = patches[i + 2];
      if (d + n >= DIGITS.length) d = 0;
      for (let k = 0; k < n; k++) out[off + k] = DIGITS[d + k];
      d += n + 1 + (DIGITS[d] & 7);
    } else {
      const n = kind === K_TRACE ? 16 : 8;
      const from = kind === K_TRACE ? patches[i + 2] * 16 : spanBase + patches[i + 2] * 8;
      for (let k = 0; k < n; k++) out[off + k] = ids[from + k];
    }
  }
}

export interface FreshRequest {
  traces: Buffer;
  logs: Buffer;
  /** The trace ids (16 bytes each) in this request. */
  ids: Buffer;
}

/**
 * A fresh pair of requests from `t`: new ids, times as if the traces started within the last
 * second (`nowMs`), new digits.
 */
export function fresh(t: Template, nowMs: number): FreshRequest {
  const ids = Buffer.allocUnsafe(t.traceCount * 16 + t.spanCount * 8);
  randomFillSync(ids);
  const baseNs = (nowMs - 1000) * 1e6; // exact enough: only the µs matter downstream
  const baseHi = Math.floor(baseNs / 4294967296);
  const baseLo = baseNs - baseHi * 4294967296;
  const traces = Buffer.from(t.traces);
  const logs = Buffer.from(t.logs);
  apply(traces, t.tracePatches, t.traceTimes, ids, t.traceCount * 16, baseLo, baseHi);
  apply(logs, t.logPatches, t.logTimes, ids, t.traceCount * 16, baseLo, baseHi);
  return { traces, logs, ids };
}
