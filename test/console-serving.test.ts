import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import pg from 'pg';
import pino from 'pino';
import { startUpstream, UPSTREAM, type Upstream } from '../src/gateway/harness.conformance.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { anyOf, containing } from './helpers/match.js';

/**
 * How the server serves the console (SPA fallback, caching, compression, security headers),
 * the JavaScript budget of the first load, and the live-tail stream the Logs view reads.
 */

const DIST = join('web', 'dist');
/** The budget for what the first load downloads (JS), gzipped. */
const JS_BUDGET_GZIP = 300 * 1024;

let server: TestServer;

beforeAll(async () => {
  if (!existsSync(join(DIST, 'index.html'))) {
    execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
  }
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.close();
});

/** Scripts and stylesheets index.html loads (entry, module preloads, CSS). */
function firstLoadAssets(): string[] {
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
}

describe('serving the console', () => {
  it('answers index.html at / and at any view URL (SPA fallback), revalidated, with a CSP', async () => {
    for (const path of ['/', '/traces/0af7651916cd43dd8448eb211c80319c?span=b7ad6b7169203331', '/alerts?state=all']) {
      const res = await fetch(server.url + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(await res.text()).toContain('<div id="app"></div>');
    }
  });

  it('serves hashed assets gzipped and cacheable for a year, with ETag revalidation', async () => {
    const assets = firstLoadAssets();
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    for (const a of assets) {
      const res = await fetch(server.url + a, { headers: { 'accept-encoding': 'gzip' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-encoding')).toBe('gzip');
      // fetch decompresses: the bytes are the file's.
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(DIST, a)))).toBe(true);
      const again = await fetch(server.url + a, { headers: { 'if-none-match': res.headers.get('etag') ?? '' } });
      expect(again.status).toBe(304);
    }
  });

  it('keeps API and ingest 404s as JSON errors, and a missing file is a 404, not the app', async () => {
    const api = await fetch(server.url + '/api/nope', { headers: { authorization: `Bearer ${server.token}` } });
    expect(api.status).toBe(404);
    expect(await api.json()).toEqual({ error: { code: 'not_found', message: containing('/api/nope') } });
    const unauth = await fetch(server.url + '/api/services');
    expect(unauth.status).toBe(401);
    const v1 = await fetch(server.url + '/v1/traces');
    expect(v1.status).toBe(404);
    expect(((await v1.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const missing = await fetch(server.url + '/assets/nope-123.js');
    expect(missing.status).toBe(404);
  });

  it('stays within the first-load JavaScript budget (≤ 300 KB gzipped)', () => {
    const js = firstLoadAssets().filter((a) => a.endsWith('.js'));
    const gz = js.reduce((n, a) => n + gzipSync(readFileSync(join(DIST, a)), { level: 9 }).length, 0);
    const all = readdirSync(join(DIST, 'assets')).filter((f) => f.endsWith('.js'))
      .reduce((n, f) => n + gzipSync(readFileSync(join(DIST, 'assets', f)), { level: 9 }).length, 0);
    console.log(`console first-load JS: ${(gz / 1024).toFixed(1)} KB gzipped (${js.length} files); all JS ${(all / 1024).toFixed(1)} KB gzipped`);
    expect(gz).toBeGreaterThan(0);
    expect(gz).toBeLessThanOrEqual(JS_BUDGET_GZIP);
  });
});

interface TailEvent { event: string; data: string }

/** Opens GET /api/logs/tail and collects events until `enough` says so. */
async function tail(query: string, enough: (events: TailEvent[]) => boolean, opened: () => Promise<void>): Promise<TailEvent[]> {
  const ctl = new AbortController();
  const res = await fetch(`${server.url}/api/logs/tail${query}`, { headers: { authorization: `Bearer ${server.token}` }, signal: ctl.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: TailEvent[] = [];
  let buf = '';
  let sent = false;
  const timer = setTimeout(() => ctl.abort(), 15_000);
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(chunk)?.[1];
        const data = /^data: (.*)$/m.exec(chunk)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data });
      }
      if (!sent) { sent = true; await opened(); }
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return events;
}

async function emitLogs(service: string, lines: Array<{ body: string; severity: SeverityNumber }>): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.0.0' }),
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${server.url}/v1/logs` }) })],
  });
  const logger = provider.getLogger('tail-test');
  for (const l of lines) logger.emit({ body: l.body, severityNumber: l.severity });
  await provider.forceFlush();
  await provider.shutdown();
}

describe('GET /api/logs/tail', () => {
  it('streams committed lines that match the filter, and only those', async () => {
    const events = await tail('?service=payments&severity=warn', (ev) => ev.some((e) => e.event === 'logs' && e.data.includes('tail-last')), async () => {
      await emitLogs('checkout', [{ body: 'tail-other-service', severity: SeverityNumber.ERROR }]);
      await emitLogs('payments', [
        { body: 'tail-too-quiet', severity: SeverityNumber.INFO },
        { body: 'tail-first', severity: SeverityNumber.WARN },
        { body: 'tail-last', severity: SeverityNumber.ERROR },
      ]);
    });
    const rows = events.filter((e) => e.event === 'logs').flatMap((e) => JSON.parse(e.data) as Array<{ body: string; service: string }>);
    expect(rows.map((r) => r.body)).toEqual(['tail-first', 'tail-last']);
    expect(rows.every((r) => r.service === 'payments')).toBe(true);
    // What was tailed is also searchable (tail is fed after commit).
    const search = await server.api<{ logs: Array<{ body: string }> }>('/api/logs?q=tail-last');
    expect(search.body.logs.map((l) => l.body)).toEqual(['tail-last']);
  });

  it('rejects bad filters with a 400 before streaming, and needs a token', async () => {
    const bad = await fetch(`${server.url}/api/logs/tail?traceId=xyz`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    const anon = await fetch(`${server.url}/api/logs/tail`);
    expect(anon.status).toBe(401);
  });

  it('does not keep the server from closing while a client is tailing', async () => {
    const other = await startTestServer();
    const ctl = new AbortController();
    const res = await fetch(`${other.url}/api/logs/tail`, { headers: { authorization: `Bearer ${other.token}` }, signal: ctl.signal });
    expect(res.status).toBe(200);
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    ctl.abort();
  });
});

describe('GET /api/gateway/sessions', () => {
  let upstream: Upstream;
  let full: RunningServer;
  let dir: string;
  beforeAll(async () => {
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'tightloop-console-gw-'));
    full = await startServer(serverConfigSchema.parse({ dataDir: dir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  }, 120_000);
  afterAll(async () => {
    await full?.close();
    await upstream?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('lists a live psql-protocol session through the gateway (admins only), and drops it when it ends', async () => {
    const admin = full.adminToken ?? '';
    const call = async <T>(path: string, token: string, body?: unknown): Promise<{ status: number; body: T }> => {
      const res = await fetch(full.url + path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    };
    process.env.TIGHTLOOP_CRED_CONSOLE_TEST_PG = UPSTREAM.scram.password;
    expect((await call('/api/resources', admin, { name: 'shop', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user, credential: 'env:TIGHTLOOP_CRED_CONSOLE_TEST_PG', tls: { mode: 'disable' } })).status).toBe(201);
    expect((await call('/api/access/grants', admin, { user: 'admin', resource: 'shop', mode: 'read', duration: '1h' })).status).toBe(201);
    expect((await call('/api/gateway/credentials', admin, {})).status).toBe(201);
    expect((await call<{ sessions: unknown[] }>('/api/gateway/sessions', admin)).body.sessions).toEqual([]);

    const client = new pg.Client({ host: '127.0.0.1', port: full.gatewayPort, user: 'admin', password: admin, database: 'shop' });
    await client.connect();
    try {
      expect((await client.query('SELECT count(*)::int AS n FROM orders')).rows[0]).toEqual({ n: 100 });
      const live = await call<{ sessions: Array<Record<string, unknown>> }>('/api/gateway/sessions', admin);
      expect(live.body.sessions).toEqual([expect.objectContaining({ user: 'admin', resource: 'shop', mode: 'read', grantExpiresAt: anyOf(String) })]);
      const member = await full.createUser('erin', 'member');
      expect((await call('/api/gateway/sessions', member.token)).status).toBe(403);
    } finally {
      await client.end();
    }
    const after = Date.now() + 5000;
    let sessions: unknown[] = [1];
    while (sessions.length > 0 && Date.now() < after) {
      sessions = (await call<{ sessions: unknown[] }>('/api/gateway/sessions', admin)).body.sessions;
      if (sessions.length > 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(sessions).toEqual([]);
  });
});
