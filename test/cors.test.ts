import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli/main.js';
import { parseCorsOrigins } from '../src/http/cors.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';
import { eventually, startTestServer, type TestServer } from './helpers/server.js';

/**
 * Browsers: Sentry ingest is CORS-open as Sentry's is; OTLP ingest allows loopback pages by
 * default (ingest needs no token on loopback) and refuses other origins before reading a body;
 * the /api routes never answer a foreign origin.
 */

let server: TestServer;
let key = '';
beforeAll(async () => {
  server = await startTestServer();
  const p = await server.api<{ projects: { id: number; dsn: string }[] }>('/api/projects');
  key = new URL(p.body.projects[0].dsn).username;
});
afterAll(async () => { await server.close(); });

function req(path: string, init: { method: string; origin?: string; headers?: Record<string, string>; body?: string }) {
  return fetch(server.url + path, {
    method: init.method,
    headers: { ...(init.origin === undefined ? {} : { origin: init.origin }), ...init.headers },
    body: init.body,
  });
}

function preflight(path: string, origin: string, headers = 'content-type') {
  return req(path, { method: 'OPTIONS', origin, headers: { 'access-control-request-method': 'POST', 'access-control-request-headers': headers } });
}

describe('Sentry ingest CORS', () => {
  it('answers preflights for any origin, allowing the headers browser SDKs send', async () => {
    for (const path of ['/api/1/envelope/', '/api/1/store/', '/api/1/envelope']) {
      const r = await preflight(path, 'https://shop.example', 'content-type,x-sentry-auth,content-encoding');
      expect(r.status).toBe(204);
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      const allowed = (r.headers.get('access-control-allow-headers') ?? '').split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(['x-sentry-auth', 'content-type', 'content-encoding']));
      expect(r.headers.get('access-control-allow-methods')).toContain('POST');
    }
  });

  it('POST answers (also errors) carry Allow-Origin and expose the rate-limit headers', async () => {
    const body = `{}\n{"type":"event"}\n{"message":"from a browser"}\n`;
    const ok = await req(`/api/1/envelope/?sentry_key=${key}`, { method: 'POST', origin: 'https://shop.example', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    expect((ok.headers.get('access-control-expose-headers') ?? '').split(/,\s*/))
      .toEqual(expect.arrayContaining(['x-sentry-error', 'x-sentry-rate-limits', 'retry-after']));
    const refused = await req('/api/1/envelope/?sentry_key=0123456789abcdef0123456789abcdef', { method: 'POST', origin: 'https://shop.example', body });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(refused.headers.get('x-sentry-error')).toBe('unknown Sentry key');
    // Refused before the handler (body over the limit): the same headers.
    const big = await req(`/api/1/envelope/?sentry_key=${key}`, { method: 'POST', origin: 'https://shop.example', body: 'x'.repeat(17 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(big.headers.get('access-control-allow-origin')).toBe('*');
    expect(big.headers.get('x-sentry-error')).toContain('exceeds the limit');
  });
});

describe('OTLP ingest CORS (default: loopback pages)', () => {
  it('a page on this machine passes the preflight and its answer is readable', async () => {
    const origin = 'http://localhost:5173';
    const pre = await preflight('/v1/traces', origin, 'content-type');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin);
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    const traceId = randomTraceId();
    const r = await req('/v1/traces', { method: 'POST', origin: 'http://127.0.0.1:8080', body: jsonTraceRequest(traceId, 1, 'cors-web'), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8080');
    expect(r.headers.get('vary')).toContain('Origin');
    await eventually(async () => ((await server.api(`/api/traces/${traceId}`)).status === 200 ? true : undefined));
  });

  it('any other origin: preflight 403 without Allow-Origin, and a POST is refused unread', async () => {
    const pre = await preflight('/v1/logs', 'https://evil.example');
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const traceId = randomTraceId();
    const r = await req('/v1/traces', { method: 'POST', origin: 'https://evil.example', body: jsonTraceRequest(traceId, 1, 'cors-evil'), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(403);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await r.json()) as { message: string }).message).toContain('--cors-origins');
    // `Origin: null` (sandboxed frames, file://) is no loopback page either.
    expect((await req('/v1/metrics', { method: 'POST', origin: 'null', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(403);
    // Without an Origin (SDKs, collectors) nothing changes; the refused trace was not stored.
    const ok = await req('/v1/traces', { method: 'POST', body: jsonTraceRequest(randomTraceId(), 1, 'cors-none'), headers: { 'content-type': 'application/json' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBeNull();
    expect((await server.api(`/api/traces/${traceId}`)).status).toBe(404);
  });

  it('the /api routes never answer a foreign origin', async () => {
    for (const path of ['/api/health', '/api/traces', '/api/errors', '/api/openapi.json']) {
      const get = await req(path, { method: 'GET', origin: 'http://localhost:5173', headers: { authorization: `Bearer ${server.token}` } });
      expect(get.headers.get('access-control-allow-origin')).toBeNull();
      const pre = await preflight(path, 'http://localhost:5173', 'authorization');
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
      expect(pre.headers.get('access-control-allow-headers')).toBeNull();
    }
  });
});

describe('--cors-origins', () => {
  it('a configured origin and * are honoured', async () => {
    const s = await startTestServer({ corsOrigins: ['https://app.example'] });
    try {
      const ok = await fetch(`${s.url}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const local = await fetch(`${s.url}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } });
      expect(local.status).toBe(403);
    } finally { await s.close(); }
    const any = await startTestServer({ corsOrigins: ['*'] });
    try {
      const r = await fetch(`${any.url}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://anywhere.example', 'access-control-request-method': 'POST' } });
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
    } finally { await any.close(); }
  });

  it('parses origins, keywords, and refuses what is no origin (exit 2)', async () => {
    expect(parseCorsOrigins('https://App.example:8443, loopback')).toEqual(['https://app.example:8443', 'loopback']);
    expect(parseCorsOrigins('none')).toEqual(['none']);
    expect(() => parseCorsOrigins('https://app.example/path')).toThrow(/not an origin/);
    expect(() => parseCorsOrigins('app.example')).toThrow(/not an origin/);
    expect(() => parseCorsOrigins('ftp://app.example')).toThrow(/not an origin/);
    const err: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => { err.push(String(s)); return true; });
    let code: number;
    try { code = await run(['node', 'tightloop', 'up', '--cors-origins', 'https://x.example/a']); } finally { process.stderr.write = write; }
    expect(code).toBe(2);
    expect(err.join('')).toContain('--cors-origins');
  });
});

describe('OTLP ingest forwarded by a node bound beyond loopback', () => {
  it('needs a token here though this server is on loopback; without that mark it does not', async () => {
    const body = jsonTraceRequest(randomTraceId(), 1);
    const headers = { 'content-type': 'application/json' };
    const forwarded = await req('/v1/traces', { method: 'POST', body, headers: { ...headers, 'x-tightloop-forwarded-by': 'node-b', 'x-tightloop-forwarded-public': '1' } });
    expect(forwarded.status).toBe(401);
    const withToken = await req('/v1/traces', { method: 'POST', body, headers: { ...headers, 'x-tightloop-forwarded-by': 'node-b', 'x-tightloop-forwarded-public': '1', authorization: `Bearer ${server.token}` } });
    expect(withToken.status).toBe(200);
    const local = await req('/v1/traces', { method: 'POST', body, headers });
    expect(local.status).toBe(200);
  });
});

