import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { BrowserContext } from 'playwright-core';
import { launchProfile } from './helpers/console.js';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorGroup } from '../src/errors/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { eventually } from './helpers/server.js';

/**
 * Browsers send to tightloop from another origin: a page served by another server (another
 * port: another origin) in Debian's Chromium reports an error and its spans with @sentry/browser
 * (default lifecycle: streamed spans) and a trace with the OTel web SDK (OTLP/HTTP JSON). Both
 * SDKs are bundled with Vite at test time. Everything arrives, and the console shows no CORS
 * error. tightloop runs with its defaults (loopback; OTLP CORS allows loopback pages).
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const ENTRY = `
import * as Sentry from '@sentry/browser';
import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

window.runSentry = async (dsn) => {
  Sentry.init({ dsn, release: 'web@1.0.0', environment: 'browser-test', tracesSampleRate: 1 });
  const traceId = await Sentry.startSpan({ name: 'checkout page', op: 'pageload' }, async (span) => {
    await Sentry.startSpan({ name: 'load cart', op: 'http.client' }, () => new Promise((r) => setTimeout(r, 5)));
    Sentry.captureException(new Error('browser checkout failed'));
    return span.spanContext().traceId;
  });
  const flushed = await Sentry.flush(5000);
  return { traceId, flushed };
};

window.runOtel = async (url) => {
  const exporter = new OTLPTraceExporter({ url: url + '/v1/traces' });
  const provider = new WebTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'web-otel' }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const span = provider.getTracer('web').startSpan('click buy');
  const traceId = span.spanContext().traceId;
  span.end();
  await provider.forceFlush();
  return traceId;
};
`;

let server: RunningServer;
let token: string;
let dataDir: string;
let pageServer: Server;
let pageUrl: string;
let ctx: BrowserContext;
let browser: Awaited<ReturnType<typeof launchProfile>> | undefined;
const consoleMessages: string[] = [];

async function api<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-browser-'));
  server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  token = server.adminToken!;

  // Inside the project (git-ignored), so the bundler resolves the SDKs from node_modules.
  const buildDir = join(ROOT, 'test-artifacts', 'browser-ingest');
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'entry.js'), ENTRY);
  const out = await build({
    configFile: false, root: ROOT, logLevel: 'silent',
    build: { write: false, minify: false, rollupOptions: { input: join(buildDir, 'entry.js') } },
  });
  rmSync(buildDir, { recursive: true, force: true });
  const outputs = (Array.isArray(out) ? out : [out]) as Array<{ output: Array<{ type: string; code?: string }> }>;
  const code = outputs.flatMap((o) => o.output).filter((c) => c.type === 'chunk').map((c) => c.code ?? '').join('\n');

  const html = '<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body><script type="module" src="/app.js"></script></body></html>';
  pageServer = createServer((req, res) => {
    if (req.url === '/app.js') { res.writeHead(200, { 'content-type': 'text/javascript' }); res.end(code); return; }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(html);
  });
  await new Promise<void>((r) => pageServer.listen(0, '127.0.0.1', r));
  const addr = pageServer.address();
  // localhost vs tightloop's 127.0.0.1, and another port: a cross-origin page.
  pageUrl = `http://localhost:${typeof addr === 'object' && addr !== null ? addr.port : 0}/`;

  browser = await launchProfile();
  ctx = browser.ctx;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((r) => (pageServer ? pageServer.close(() => r()) : r()));
  await server?.close();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('browser SDKs on a page of another origin', () => {
  it('@sentry/browser and the OTel web SDK deliver an error and two traces, with no CORS error', async () => {
    const page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleMessages.push(m.text()); });
    page.on('pageerror', (e) => consoleMessages.push(e.message));
    page.on('requestfailed', (r) => consoleMessages.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    await page.goto(pageUrl);
    await page.waitForFunction(() => typeof (window as unknown as { runOtel?: unknown }).runOtel === 'function');

    const sentry = await page.evaluate(async (dsn) => (window as unknown as { runSentry(d: string): Promise<{ traceId: string; flushed: boolean }> }).runSentry(dsn), server.defaultDsn);
    const otelTraceId = await page.evaluate(async (url) => (window as unknown as { runOtel(u: string): Promise<string> }).runOtel(url), server.url);
    expect(sentry.flushed).toBe(true);

    const [group] = await eventually(async () => {
      const r = await api<{ groups: ErrorGroup[] }>('/api/errors?q=browser%20checkout');
      return r.body.groups.length > 0 ? r.body.groups : undefined;
    });
    expect(group).toMatchObject({ title: 'Error: browser checkout failed', latestTraceId: sentry.traceId });
    const sentryTrace = await eventually(async () => {
      const r = await api<{ spans: Array<{ name: string }> }>(`/api/traces/${sentry.traceId}`);
      return r.status === 200 && r.body.spans.length >= 2 ? r.body.spans : undefined;
    });
    expect(sentryTrace.map((s) => s.name).sort()).toEqual(['checkout page', 'load cart']);
    const otelTrace = await eventually(async () => {
      const r = await api<{ spans: Array<{ name: string; service: string }> }>(`/api/traces/${otelTraceId}`);
      return r.status === 200 ? r.body.spans : undefined;
    });
    expect(otelTrace).toEqual([expect.objectContaining({ name: 'click buy', service: 'web-otel' })]);
    expect(consoleMessages.filter((m) => /CORS|Access-Control|request failed/i.test(m))).toEqual([]);
    await page.close();
  });
});
