import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import protobuf from 'protobufjs/minimal.js';
import { makeRealisticTracePayload } from '../src/otlp/fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { matching } from './helpers/match.js';

/** Bad input gets a precise status and message, and the server goes on serving. */

const MAX_BODY = 256 * 1024;
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: MAX_BODY });
});
afterAll(async () => {
  await server.close();
});

function post(path: string, body: Uint8Array | string, headers: Record<string, string>) {
  return fetch(server.url + path, { method: 'POST', body: body as NonNullable<RequestInit['body']>, headers });
}

/** Reads a google.rpc.Status protobuf: code (1, varint) and message (2, string). */
function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  const r = protobuf.Reader.create(bytes);
  const out = { code: 0, message: '' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) out.code = r.int32();
    else if (tag >>> 3 === 2) out.message = r.string();
    else r.skipType(tag & 7);
  }
  return out;
}

const validJson = JSON.stringify({
  resourceSpans: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'errors-test' } }] },
    scopeSpans: [{
      spans: [{
        traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'ok',
        kind: 2, startTimeUnixNano: String(Date.now() * 1e6), endTimeUnixNano: String(Date.now() * 1e6 + 5e6),
      }],
    }],
  }],
});

describe('malformed OTLP input', () => {
  it('truncated protobuf → 400 with a protobuf google.rpc.Status', async () => {
    const payload = makeRealisticTracePayload(50);
    const res = await post('/v1/traces', payload.subarray(0, payload.length - 7), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/x-protobuf');
    const status = decodeStatus(new Uint8Array(await res.arrayBuffer()));
    expect(status.code).toBe(3);
    expect(status.message).toMatch(/invalid OTLP protobuf traces request/);
  });

  it('wrong JSON types → 400 naming the field', async () => {
    const res = await post('/v1/traces', JSON.stringify({ resourceSpans: { not: 'an array' } }), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(3);
    expect(body.message).toMatch(/resourceSpans/);
  });

  it('invalid JSON syntax → 400', async () => {
    const res = await post('/v1/logs', '{"resourceLogs": [', { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/invalid OTLP json logs request/);
  });

  it('bad gzip → 400', async () => {
    const res = await post('/v1/traces', 'definitely not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/invalid gzip body/);
  });

  it('oversize body → 413, before and after decompression', async () => {
    const big = 'x'.repeat(MAX_BODY + 10);
    const res = await post('/v1/traces', big, { 'content-type': 'application/json' });
    expect(res.status).toBe(413);
    // A small gzip body that inflates past the limit is refused too (zip bomb).
    const bomb = gzipSync(Buffer.alloc(MAX_BODY * 8, 0x20));
    expect(bomb.length).toBeLessThan(MAX_BODY);
    const res2 = await post('/v1/traces', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res2.status).toBe(413);
    expect(((await res2.json()) as { message: string }).message).toMatch(/exceeds the limit/);
  });

  it('wrong content type → 415; unknown encoding → 415', async () => {
    const res = await post('/v1/traces', validJson, { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { message: string }).message).toMatch(/application\/x-protobuf or application\/json/);
    const res2 = await post('/v1/traces', validJson, { 'content-type': 'application/json', 'content-encoding': 'br' });
    expect(res2.status).toBe(415);
  });

  it('gzip JSON is accepted, answered in JSON, and the server kept serving throughout', async () => {
    const res = await post('/v1/traces', gzipSync(validJson), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(await res.json()).toEqual({});
    const trace = await server.api<{ spans: unknown[] }>('/api/traces/5b8efff798038103d269b633813fc60c');
    expect(trace.body.spans).toHaveLength(1);
  });

  it('partial success: spans with invalid ids are rejected and counted, the rest stored', async () => {
    const body = JSON.parse(validJson) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
    const spans = body.resourceSpans[0].scopeSpans[0].spans;
    spans.push({ ...spans[0], spanId: '0000000000000000', traceId: '6b8efff798038103d269b633813fc60c' });
    spans.push({ ...spans[0], spanId: 'aaaaaaaaaaaaaaaa', traceId: '7b8efff798038103d269b633813fc60c' });
    const res = await post('/v1/traces', JSON.stringify(body), { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } };
    expect(Number(out.partialSuccess?.rejectedSpans)).toBe(1);
    expect(out.partialSuccess?.errorMessage).toBeTruthy();
    expect((await server.api('/api/traces/7b8efff798038103d269b633813fc60c')).status).toBe(200);
    expect((await server.api('/api/traces/6b8efff798038103d269b633813fc60c')).status).toBe(404);
  });
});

describe('API errors', () => {
  it('401 without a token, with the error shape', async () => {
    const res = await fetch(`${server.url}/api/services`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: matching(/bearer/) } });
    const bad = await fetch(`${server.url}/api/services`, { headers: { authorization: 'Bearer tl_nope' } });
    expect(bad.status).toBe(401);
  });

  it('400 on bad parameters, naming the parameter', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/api/traces?limit=0', /'limit'/],
      ['/api/traces?from=yesterday', /'from'/],
      ['/api/traces?from=now&to=now-1h', /'from' must be before 'to'/],
      ['/api/services/x/red?step=banana', /'step'/],
      ['/api/metrics/query', /'name' is required/],
      ['/api/metrics/query?name=a&agg=median', /'agg'/],
      ['/api/logs?severity=loud', /'severity'/],
      ['/api/traces/xyz', /traceId/],
    ];
    for (const [path, re] of cases) {
      const res = await server.api<{ error: { code: string; message: string } }>(path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe('bad_request');
      expect(res.body.error.message, path).toMatch(re);
    }
  });

  it('health and OpenAPI need no token; the OpenAPI document lists every API route', async () => {
    expect(await (await fetch(`${server.url}/api/health`)).json()).toMatchObject({ status: 'ok' });
    const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const p of ['/api/services', '/api/services/{service}/red', '/api/traces', '/api/traces/{traceId}', '/api/logs', '/api/metrics/query']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});
