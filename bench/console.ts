/**
 * `npm run bench -- console [--spans 10000]`
 *
 * The console's trace waterfall in Debian's Chromium (playwright-core, headless): a trace of N
 * spans and one of 1,000 spans, sent with the OpenTelemetry SDK to a real tightloop, are opened
 * and scrolled 120 px per animation frame for 150 frames (a brisk wheel scroll). Reports the time
 * to the first painted row (and how much of it the API call takes), frame times while scrolling
 * (p50, p95) for both traces and their ratio (virtualised: N spans should scroll like 1,000), a
 * fling through the whole N-span trace in 150 frames, the rows in the DOM, and the first-load
 * JavaScript size (gzipped). Needs `npm run build` (server and console) and /usr/bin/chromium.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { context, SpanKind, trace, type Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { chromium } from 'playwright-core';
import { defaultConsoleDir } from '../src/http/console.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer } from '../src/http/server.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

const SPANS = arg('spans', 10_000);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

async function sendTrace(url: string, n: number): Promise<string> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench', 'service.version': '1.0.0' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }), { maxQueueSize: n + 10, maxExportBatchSize: 2000, scheduledDelayMillis: 20 })],
  });
  const tracer = provider.getTracer('bench');
  const root = tracer.startSpan('GET /report', { kind: SpanKind.SERVER });
  const parents: Span[] = [root];
  const spans: Span[] = [];
  for (let i = 1; i < n; i++) {
    const parent = parents[i % parents.length];
    const s = tracer.startSpan(`step ${i}`, {}, trace.setSpan(context.active(), parent));
    if (parents.length < 200) parents.push(s);
    spans.push(s);
  }
  for (const s of spans.reverse()) s.end();
  root.end();
  await provider.forceFlush();
  await provider.shutdown();
  return root.spanContext().traceId;
}

const pct = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-console-bench-'));
  const profile = mkdtempSync(join(tmpdir(), 'tightloop-console-bench-chromium-'));
  const server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.TIGHTLOOP_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1440, height: 900 } });
  try {
    const big = await sendTrace(server.url, SPANS);
    const small = await sendTrace(server.url, 1000);
    const page = ctx.pages()[0] ?? await ctx.newPage();
    const token = server.adminToken ?? '';
    await page.addInitScript((t) => sessionStorage.setItem('tightloop.token', t), token);

    const measure = async (traceId: string, fling = false): Promise<{ renderMs: number; frames: number[]; domRows: number }> => {
      const t0 = Date.now();
      await page.goto(`${server.url}/traces/${traceId}`);
      await page.locator('.wf-row').first().waitFor({ timeout: 60_000 });
      const renderMs = Date.now() - t0;
      // Scroll from top to bottom in 150 equal steps, one per animation frame; record frame deltas.
      const { frames, domRows } = await page.evaluate(async (whole) => {
        const el = document.querySelector('.wf-scroll') as HTMLElement;
        const steps = 150;
        const max = whole ? el.scrollHeight - el.clientHeight : 120 * steps;
        const deltas: number[] = [];
        let rows = 0;
        await new Promise<void>((resolve) => {
          let i = 0;
          let last = performance.now();
          const tick = (now: number): void => {
            deltas.push(now - last);
            last = now;
            rows = Math.max(rows, document.querySelectorAll('.wf-row').length);
            if (i++ >= steps) { resolve(); return; }
            el.scrollTop = (max * i) / steps;
            requestAnimationFrame(tick);
          };
          requestAnimationFrame(tick);
        });
        return { frames: deltas.slice(2), domRows: rows };
      }, fling);
      return { renderMs, frames, domRows };
    };

    const apiStart = performance.now();
    const res = await fetch(`${server.url}/api/traces/${big}`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    const apiMs = Math.round(performance.now() - apiStart);
    await measure(small); // warm-up (JS parse, caches)
    const a = await measure(small);
    const b = await measure(big);
    const f = await measure(big, true);
    const dist = defaultConsoleDir() ?? '';
    const html = readFileSync(join(dist, 'index.html'), 'utf8');
    const jsGz = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].reduce((n, m) => n + gzipSync(readFileSync(join(dist, m[1])), { level: 9 }).length, 0);
    const p95a = pct(a.frames, 0.95);
    const p95b = pct(b.frames, 0.95);
    console.log(`1000 spans: first row ${a.renderMs} ms, scroll frames p50 ${pct(a.frames, 0.5).toFixed(1)} p95 ${p95a.toFixed(1)} ms, ≤${a.domRows} rows in the DOM`);
    console.log(`${SPANS} spans: first row ${b.renderMs} ms (API alone ${apiMs} ms), scroll frames p50 ${pct(b.frames, 0.5).toFixed(1)} p95 ${p95b.toFixed(1)} ms, ≤${b.domRows} rows in the DOM`);
    console.log(`${SPANS} spans, whole trace in 150 frames: p50 ${pct(f.frames, 0.5).toFixed(1)} p95 ${pct(f.frames, 0.95).toFixed(1)} ms`);
    console.log(`RESULT console spans=${SPANS} first_row_ms=${b.renderMs} api_ms=${apiMs} frame_p50_ms=${pct(b.frames, 0.5).toFixed(1)} frame_p95_ms=${p95b.toFixed(1)} frame_p95_ms_1000=${p95a.toFixed(1)} frame_p95_ratio=${(p95b / p95a).toFixed(2)} fling_p95_ms=${pct(f.frames, 0.95).toFixed(1)} dom_rows=${b.domRows} js_gzip_kb=${(jsGz / 1024).toFixed(1)}`);
  } finally {
    await ctx.close();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
