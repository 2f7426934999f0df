import protobuf from 'protobufjs/minimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestCounters, LIMITS } from '../src/otlp/index.js';
import { MAX_TAILS_PER_USER } from '../src/http/console-api.js';
import { RESPONSE_BUDGET_CHARS } from '../src/http/params.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Memory amplification: what one client sends cannot make an answer, or what is kept, grow
 * without bound. Names, attribute values, attribute counts and log bodies are cut at ingest
 * (with a marker, counted); list answers stop at a response budget; live tails per user are
 * capped.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 64 * 1024 * 1024 });
});
afterAll(async () => {
  await server.close();
});

const nowNs = (): string => String(Date.now() * 1e6);
const hex = (n: number, i: number): string => i.toString(16).padStart(n, '0');
const str = (key: string, v: string): { key: string; value: { stringValue: string } } => ({ key, value: { stringValue: v } });

async function postJson(path: string, body: unknown): Promise<Response> {
  return fetch(server.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

describe('OTLP size limits', () => {
  it('cut huge service and span names, attribute values and counts, events; GET /api/traces stays small', async () => {
    const huge = 'S'.repeat(1024 * 1024);
    const big = 'E'.repeat(20_000);
    const before = { ...ingestCounters };
    const resourceSpans = Array.from({ length: 5 }, (_, r) => ({
      resource: { attributes: [str('service.name', `${huge}${r}`), str('host.name', huge)] },
      scopeSpans: [{
        scope: { name: huge },
        spans: [{
          traceId: hex(32, 0xabc000 + r), spanId: hex(16, 0x100 + r), name: huge, kind: 2,
          startTimeUnixNano: nowNs(), endTimeUnixNano: nowNs(),
          attributes: [str('big', huge), ...Array.from({ length: 300 }, (_, i) => str(`k${i}`, 'v'))],
          events: Array.from({ length: 200 }, (_, i) => ({ timeUnixNano: nowNs(), name: `e${i}`, attributes: [str('big', big)] })),
        }],
      }],
    }));
    const res = await postJson('/v1/traces', { resourceSpans });
    expect(res.status).toBe(200);

    const list = await fetch(`${server.url}/api/traces?service=${'S'.repeat(10)}&limit=1000`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(list.status).toBe(200);
    const all = await fetch(`${server.url}/api/traces?limit=1000`, { headers: { authorization: `Bearer ${server.token}` } });
    const text = await all.text();
    // Before: 5 × 1 MiB service names (each twice: rootService and services) = 10 MiB.
    expect(text.length).toBeLessThan(64 * 1024);
    const traces = (JSON.parse(text) as { traces: Array<{ traceId: string; rootService: string; rootName: string }> }).traces;
    const mine = traces.filter((t) => t.traceId.startsWith('00000000000000000000000000abc'));
    expect(mine).toHaveLength(5);
    for (const t of mine) {
      expect(t.rootService.length).toBeLessThan(LIMITS.name + 40);
      expect(t.rootService).toMatch(/^S{1024}…\[truncated 1047553 chars\]$/);
      expect(t.rootName).toMatch(/…\[truncated \d+ chars\]$/);
    }

    const detail = await fetch(`${server.url}/api/traces/${mine[0].traceId}`, { headers: { authorization: `Bearer ${server.token}` } });
    const detailText = await detail.text();
    expect(detailText.length).toBeLessThan(2 * LIMITS.total + 3 * LIMITS.value + 16 * 1024);
    const span = (JSON.parse(detailText) as { spans: Array<{ attrs: Record<string, unknown>; events: unknown[]; resourceAttrs: Record<string, string>; scopeName: string }> }).spans[0];
    expect(Object.keys(span.attrs)).toHaveLength(LIMITS.attributes);
    expect(String(span.attrs.big)).toMatch(/^S{16384}…\[truncated \d+ chars\]$/);
    expect(span.events).toHaveLength(LIMITS.events);
    expect(span.resourceAttrs['service.name'].length).toBeLessThan(LIMITS.name + 40);
    expect(span.scopeName.length).toBeLessThan(LIMITS.name + 40);
    expect(ingestCounters.truncatedValues).toBeGreaterThan(before.truncatedValues);
    expect(ingestCounters.droppedItems - before.droppedItems).toBeGreaterThanOrEqual(5 * (172 + 72));
  });

  it('cut log bodies; GET /api/logs stops at the response budget and says so', async () => {
    const body = 'L'.repeat(128 * 1024);
    const n = Math.ceil((RESPONSE_BUDGET_CHARS * 1.5) / LIMITS.body);
    const logRecords = Array.from({ length: n }, () => ({ timeUnixNano: nowNs(), severityText: 'INFO', body: { stringValue: body } }));
    const res = await postJson('/v1/logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'limits-logs')] }, scopeLogs: [{ logRecords }] }] });
    expect(res.status).toBe(200);
    const r = await fetch(`${server.url}/api/logs?service=limits-logs&limit=5000`, { headers: { authorization: `Bearer ${server.token}` } });
    const text = await r.text();
    // Before: n × 128 KiB = 24 MiB of bodies in one answer.
    expect(text.length).toBeLessThan(RESPONSE_BUDGET_CHARS + 2 * LIMITS.body);
    const out = JSON.parse(text) as { logs: Array<{ body: string }>; truncated?: boolean };
    expect(out.truncated).toBe(true);
    expect(out.logs.length).toBeGreaterThan(0);
    expect(out.logs.length).toBeLessThan(n);
    expect(out.logs[0].body).toMatch(/^L{65536}…\[truncated 65536 chars\]$/);
  });
});

describe('invalid UTF-8', () => {
  const health = async (): Promise<number> =>
    ((await (await fetch(`${server.url}/api/health`)).json()) as { ingest: { invalidUtf8: number } }).ingest.invalidUtf8;
  const bad = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x21]); // "bad", two invalid bytes, "!"

  it('is replaced with U+FFFD and counted, over JSON and protobuf', async () => {
    const before = await health();
    const json = Buffer.concat([
      Buffer.from(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"utf8-json"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"${nowNs()}","body":{"stringValue":"`),
      bad, Buffer.from('"}}]}]}]}'),
    ]);
    expect((await fetch(`${server.url}/v1/logs`, { method: 'POST', body: json, headers: { 'content-type': 'application/json' } })).status).toBe(200);
    expect(await health()).toBe(before + 1);

    // ExportTraceServiceRequest { resource_spans { resource { attributes { key, value { string } } } scope_spans { spans { ... name } } } }
    const w = protobuf.Writer.create();
    const kv = protobuf.Writer.create().uint32(10).string('service.name').uint32(18).fork().uint32(10).string('utf8-proto').ldelim().finish();
    const resource = protobuf.Writer.create().uint32(10).bytes(kv).finish();
    const t = BigInt(Date.now()) * 1_000_000n;
    const fixed = (n: bigint): protobuf.Long => ({ low: Number(n & 0xffffffffn) | 0, high: Number(n >> 32n) | 0, unsigned: true });
    const span = protobuf.Writer.create()
      .uint32(10).bytes(Buffer.from('0123456789abcdef0123456789abcd01', 'hex'))
      .uint32(18).bytes(Buffer.from('0123456789abcd01', 'hex'))
      .uint32(42).bytes(bad)
      .uint32(48).int32(2)
      .uint32(57).fixed64(fixed(t)).uint32(65).fixed64(fixed(t + 1000n)).finish();
    const scopeSpans = protobuf.Writer.create().uint32(18).bytes(span).finish();
    const rs = protobuf.Writer.create().uint32(10).bytes(resource).uint32(18).bytes(scopeSpans).finish();
    const body = w.uint32(10).bytes(rs).finish() as NonNullable<RequestInit['body']>;
    expect((await fetch(`${server.url}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } })).status).toBe(200);
    expect(await health()).toBe(before + 2);
    const trace = await server.api<{ spans: Array<{ name: string }> }>('/api/traces/0123456789abcdef0123456789abcd01');
    expect(trace.body.spans[0].name).toBe('bad\uFFFD\uFFFD!');
    const logs = await server.api<{ logs: Array<{ body: string }> }>('/api/logs?service=utf8-json');
    expect(logs.body.logs[0].body).toBe('bad\uFFFD\uFFFD!');

    // A U+FFFD the client sent itself is valid UTF-8: not counted.
    const valid = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: nowNs(), body: { stringValue: 'ok \uFFFD' } }] }] }] });
    expect((await fetch(`${server.url}/v1/logs`, { method: 'POST', body: valid, headers: { 'content-type': 'application/json' } })).status).toBe(200);
    expect(await health()).toBe(before + 2);
  });
});

describe('live tails', () => {
  it(`at most ${MAX_TAILS_PER_USER} per user; the next is 429 until one closes`, async () => {
    const ctls: AbortController[] = [];
    const open = async (): Promise<Response> => {
      const ctl = new AbortController();
      ctls.push(ctl);
      return fetch(`${server.url}/api/logs/tail`, { headers: { authorization: `Bearer ${server.token}` }, signal: ctl.signal });
    };
    try {
      for (let i = 0; i < MAX_TAILS_PER_USER; i++) expect((await open()).status).toBe(200);
      const over = await open();
      expect(over.status).toBe(429);
      expect(((await over.json()) as { error: { code: string } }).error.code).toBe('too_many_tails');
      ctls[0].abort();
      let again: Response | undefined;
      for (let i = 0; i < 50 && again?.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await open();
      }
      expect(again?.status).toBe(200);
    } finally {
      for (const c of ctls) c.abort();
    }
  });
});
