import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import * as Sentry from '@sentry/node';
import type { Page } from 'playwright-core';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { apiClient, ARTIFACTS, ensureConsoleBuilt, launchProfile, until } from './helpers/console.js';

/**
 * The console in real Chromium (`/usr/bin/chromium`, driven by playwright-core) against a real
 * tightloop fed by the real OpenTelemetry SDK exporters. Each view must show the data the SDK
 * sent; the flows a person uses must work end to end. Screenshots of every view land in
 * test-artifacts/console/ (look at them).
 */

let server: RunningServer;
let dataDir: string;
let token: string;
let browser: Awaited<ReturnType<typeof launchProfile>> | undefined;
let page: Page;
const sent = { traceId: '', bigTraceId: '', logBody: '', fromMs: 0, toMs: 0 };

const apiCall = apiClient(() => server.url, () => token);

function sdk(service: string, version: string): { tracer: ReturnType<BasicTracerProvider['getTracer']>; logger: ReturnType<LoggerProvider['getLogger']>; flushLogs: () => Promise<void>; flush: () => Promise<void> } {
  const resource = resourceFromAttributes({ 'service.name': service, 'service.version': version, 'deployment.environment.name': 'prod' });
  const tp = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces` }), { maxQueueSize: 20_000, maxExportBatchSize: 2000, scheduledDelayMillis: 50 })],
  });
  const lp = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${server.url}/v1/logs` }), scheduledDelayMillis: 50 })] });
  return {
    tracer: tp.getTracer('console-test'), logger: lp.getLogger('console-test'), flushLogs: () => lp.forceFlush(),
    flush: async () => { await tp.forceFlush(); await lp.forceFlush(); await tp.shutdown(); await lp.shutdown(); },
  };
}

/** A checkout request: SERVER span, a DB child, a log line in its context; some fail with an exception. */
function request(s: ReturnType<typeof sdk>, fail: boolean, i: number): string {
  const root = s.tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER, attributes: { 'http.route': '/checkout', 'order.id': String(i) } });
  const c = trace.setSpan(context.active(), root);
  const db = s.tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, c);
  db.end();
  s.logger.emit({
    body: fail ? `payment declined for order ${i}` : `order ${i} placed`,
    severityNumber: fail ? SeverityNumber.ERROR : SeverityNumber.INFO, severityText: fail ? 'ERROR' : 'INFO', context: c,
  });
  if (fail) {
    root.recordException(new Error('card declined by issuer'));
    root.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
  }
  root.end();
  return root.spanContext().traceId;
}

function reserveStock(n: number): never {
  throw new RangeError(`stock went negative reserving ${n}`);
}

/** One trace of `n` spans (a root, then a tree 4 levels deep), for the virtualised waterfall. */
function bigTrace(s: ReturnType<typeof sdk>, n: number): string {
  const root = s.tracer.startSpan('GET /report', { kind: SpanKind.SERVER });
  const parents: Span[] = [root];
  const open: Span[] = [];
  for (let i = 1; i < n; i++) {
    const parent = parents[Math.floor(Math.random() * Math.min(parents.length, 40))];
    const span = s.tracer.startSpan(`step ${i}`, { kind: SpanKind.INTERNAL }, trace.setSpan(context.active(), parent));
    if (parents.length < 40) parents.push(span);
    open.push(span);
  }
  for (const sp of open.reverse()) sp.end();
  root.end();
  return root.spanContext().traceId;
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

let loggedIn = false;

/** Signs in through the login form (once; the token then lives in the tab's session storage). */
async function login(): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('nav[aria-label="Views"]').waitFor();
  loggedIn = true;
}

async function go(path: string): Promise<void> {
  await page.goto(server.url + path);
  // Each test can run on its own (vitest -t): sign in first if no earlier test did.
  if (!loggedIn) await login();
}

beforeAll(async () => {
  ensureConsoleBuilt();
  // Under the working directory, so the login page can name the real token file (adminTokenHint).
  mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true });
  dataDir = mkdtempSync(join(process.cwd(), 'test-artifacts', 'tightloop-console-'));
  writeFileSync(join(dataDir, 'rules.yaml'), `rules:
  - name: checkout-errors
    type: threshold
    select: { service: checkout }
    by: [service, environment]
    signal: error_rate
    threshold: 0.1
    window: 2s
    min_count: 5
    keep_firing_for: 1h
`);
  mkdirSync(join(dataDir, 'actions'));
  writeFileSync(join(dataDir, 'actions', 'restart.yaml'), `kind: command
description: Restart a service
params:
  service: { type: string, required: true }
argv: ["/bin/true", "\${service}"]
`);
  server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  token = server.adminToken ?? '';

  // Telemetry through the real SDK: two versions of checkout (the newer one failing), payments.
  const v1 = sdk('checkout', '1.0.0');
  const v2 = sdk('checkout', '1.1.0');
  const pay = sdk('payments', '3.2.0');
  sent.fromMs = Date.now();
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 5; i++) request(v1, false, round * 100 + i);
    for (let i = 0; i < 5; i++) {
      const id = request(v2, i < 3, round * 100 + 50 + i);
      if (i === 0 && sent.traceId === '') sent.traceId = id;
    }
    request(pay, false, round);
    await new Promise((r) => setTimeout(r, 250));
  }
  sent.toMs = Date.now();
  sent.logBody = 'payment declined for order 50';
  sent.bigTraceId = bigTrace(pay, 10_000);
  await Promise.all([v1.flush(), v2.flush(), pay.flush()]);

  // A Sentry SDK error (structured stack frames).
  Sentry.init({ dsn: server.defaultDsn, release: 'inventory@2.0.0', environment: 'prod', defaultIntegrations: false });
  try { reserveStock(3); } catch (e) { Sentry.captureException(e); }
  await Sentry.flush(5000);
  await Sentry.close(2000);

  // The gateway: a resource, and a member asking for access (the admin approves it in the UI).
  const res = await apiCall('/api/resources', { method: 'POST', body: { name: 'shop', host: '127.0.0.1', port: 5432, database: 'shop', user: 'app', credential: 'env:TIGHTLOOP_CRED_SHOP_DB', tls: { mode: 'disable' } } });
  expect(res.status).toBe(201);
  const dana = await server.createUser('dana', 'member');
  const req = await apiCall('/api/access/requests', { method: 'POST', as: dana.token, body: { resource: 'shop', mode: 'read', duration: '1h', reason: 'debug declined payments' } });
  expect(req.status).toBe(201);

  await until(async () => ((await apiCall<{ alerts: unknown[] }>('/api/alerts?state=firing')).body.alerts.length > 0 ? true : undefined), 45_000)
    .catch(async (e: Error) => { throw new Error(`${e.message}: ${JSON.stringify((await apiCall('/api/alerts?state=all')).body)} ${JSON.stringify((await apiCall('/api/services')).body)}`); });
  await until(async () => ((await apiCall<{ groups: unknown[] }>('/api/errors')).body.groups.length > 0 ? true : undefined));

  browser = await launchProfile({ width: 1440, height: 900 });
  page = browser.page;
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('the console in Chromium', () => {
  it('asks for a token, refuses a wrong one, then shows the services with RED charts', async () => {
    await page.goto(server.url + '/');
    await page.getByLabel('API token').fill('tl_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await shot('login');
    // The page names the token file of this server's data dir, not a fixed `.tightloop/`.
    expect(await page.locator('.login-form code.token-file').textContent()).toBe(`${relative(process.cwd(), dataDir)}/admin.token`);
    const health = await (await fetch(server.url + '/api/health')).json() as { adminTokenFile?: string };
    expect(health.adminTokenFile).toBe(`${relative(process.cwd(), dataDir)}/admin.token`);
    await login();
    await page.getByRole('heading', { name: 'Services', exact: true }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/services');
    // An absolute range with the traffic in its middle: the drag below must land on data however
    // long the set-up took (a relative range let the traffic slide out of the zoomed part).
    const [from, to] = [sent.fromMs - 30_000, sent.toMs + 30_000];
    await go(`/services?service=checkout&from=${from}&to=${to}`);
    const table = page.locator('#svc-h').locator('xpath=../..').locator('table');
    await table.getByRole('link', { name: 'checkout' }).waitFor();
    await table.getByRole('link', { name: 'payments' }).waitFor();
    // The RED panel: one uPlot canvas per chart, series per version.
    await page.locator('.chart canvas').first().waitFor();
    expect(await page.locator('.chart').count()).toBe(4);
    const legend = await page.locator('.chart').first().locator('.u-legend').textContent();
    expect(legend).toContain('v1.0.0');
    expect(legend).toContain('v1.1.0');
    // The firing alert is drawn as a band.
    expect(await page.locator('.legend-note').textContent()).toMatch(/[1-9]\d* alert bands?/);
    // Deploy markers: one per deploy of checkout the deploys pillar knows (new versions are recorded implicitly).
    const deploys = (await apiCall<{ deploys: Array<{ version: string }> }>('/api/deploys?service=checkout')).body.deploys;
    expect(deploys.length).toBeGreaterThan(0);
    expect(await page.locator('.chart-box').first().getAttribute('data-markers')).toBe(String(deploys.length));
    await shot('services');
    // Dragging across a chart zooms: the range becomes an absolute one in the URL.
    const over = page.locator('.chart .u-over').first();
    const box = await over.boundingBox();
    if (box === null) throw new Error('chart has no plot area');
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForURL((u) => u.searchParams.get('to') !== String(to));
    const zoomed = new URL(page.url()).searchParams;
    const [zFrom, zTo] = [Number(zoomed.get('from')), Number(zoomed.get('to'))];
    expect(zTo - zFrom).toBeGreaterThan(10_000);
    expect(zTo - zFrom).toBeLessThan(to - from);
    expect(zFrom).toBeGreaterThan(from);
    expect(await page.getByLabel('Time range', { exact: true }).inputValue()).toBe('custom');
    expect(await page.getByLabel('From', { exact: true }).inputValue()).not.toBe('');
    await page.locator('.chart canvas').first().waitFor();
  });

  it('keeps view state in the URL: a shared link reopens the same filter', async () => {
    await go('/traces?service=payments&from=now-6h');
    expect(await page.getByLabel('Service', { exact: true }).inputValue()).toBe('payments');
    expect(await page.getByLabel('Time range', { exact: true }).inputValue()).toBe('now-6h');
    await page.locator('a[data-trace]').first().waitFor();
    const roots = await page.locator('a[data-trace]').allTextContents();
    expect(roots.length).toBeGreaterThan(0);
    for (const r of roots) expect(r.startsWith('payments:')).toBe(true);
  });

  it('trace search → waterfall → the trace\'s log line and error', async () => {
    await go('/traces');
    await page.getByLabel('Service', { exact: true }).fill('checkout');
    await page.getByLabel('Status').selectOption('error');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/service=checkout/);
    await page.locator(`a[data-trace="${sent.traceId}"]`).click();
    await page.waitForURL(new RegExp(`/traces/${sent.traceId}`));
    await page.locator('.wf-row').nth(1).waitFor();
    expect(await page.locator('.wf-row').count()).toBe(2);
    expect(await page.locator('.wf-row').allTextContents()).toEqual([expect.stringContaining('POST /checkout'), expect.stringContaining('SELECT orders')]);
    const logs = page.locator('#trace-logs-h').locator('xpath=../..');
    await logs.getByText(sent.logBody).waitFor();
    await page.locator('#trace-errors-h').getByText(/Errors in this trace/).waitFor();
    // Clicking a span shows its details.
    await page.locator('.wf-row', { hasText: 'SELECT orders' }).click();
    await page.locator('.span-details').getByText('postgresql').waitFor();
    expect(page.url()).toContain('span=');
    await shot('trace');
  });

  it('renders a 10 000-span trace with a bounded DOM and scrolls to its end', async () => {
    await go(`/traces/${sent.bigTraceId}`);
    const scroller = page.locator('.wf-scroll');
    await page.locator('.wf-row').first().waitFor({ timeout: 30_000 });
    expect(await scroller.getAttribute('data-rows')).toBe('10000');
    expect(await page.locator('.wf-row').count()).toBeLessThan(80);
    await scroller.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction(() => [...document.querySelectorAll('.wf-row')].some((r) => Number((r as HTMLElement).style.top.replace('px', '')) >= 9999 * 24));
    expect(await page.locator('.wf-row').count()).toBeLessThan(80);
    await shot('trace-10k');
  });

  it('searches logs, jumps to a trace, and live-tails new lines', async () => {
    await go('/logs?q=declined&from=now-1h');
    await page.getByText(sent.logBody, { exact: true }).waitFor();
    // A volume histogram over the range; a row opens to its attributes and resource.
    await page.locator('figure.chart', { has: page.locator('figcaption', { hasText: /^Log lines over time/ }) }).locator('canvas').waitFor();
    await page.locator('tr', { hasText: sent.logBody }).getByRole('button', { name: 'Show attributes' }).click();
    const detail = page.locator('[data-log-detail]');
    await detail.getByText('service.version').waitFor();
    expect(await detail.textContent()).toContain('1.1.0');
    await shot('logs');
    await page.getByLabel('Live tail').check();
    await page.locator('[data-tail-status="live"]').waitFor();
    await page.getByText('Waiting for new log lines…').waitFor();
    const s = sdk('checkout', '1.1.0');
    request(s, true, 999_001);
    await s.flush();
    await page.locator('#tail-h').locator('xpath=../..').getByText('payment declined for order 999001').waitFor();
    await shot('logs-live');
    await page.locator('#logs-h').locator('xpath=../..').getByRole('link', { name: /Open trace/ }).first().click();
    await page.waitForURL(/\/traces\/[0-9a-f]{32}/);
    await page.locator('.wf-row').first().waitFor();
  });

  it('the log histogram counts every line of the range, not only the 500 the page lists', async () => {
    const bulk = sdk('bulk', '1.0.0');
    const fromMs = Date.now() - 1000;
    for (let i = 0; i < 1234; i++) bulk.logger.emit({ body: `bulk line ${i}`, severityNumber: i % 10 === 0 ? SeverityNumber.ERROR : SeverityNumber.INFO });
    await bulk.flush();
    const toMs = Date.now() + 1000;
    const range = `from=${fromMs}&to=${toMs}`;
    await until(async () => ((await apiCall<{ total: number }>(`/api/logs/volume?service=bulk&${range}`)).body.total === 1234 ? true : undefined));
    await go(`/logs?service=bulk&${range}`);
    const volume = page.locator('[data-log-total]');
    await volume.locator('canvas').waitFor();
    expect(await volume.getAttribute('data-log-total')).toBe('1234');
    expect(await volume.getAttribute('data-log-drawn')).toBe('1234');
    expect(await volume.locator('figcaption').textContent()).toContain('1,234 in the range');
    expect(await page.locator('#logs-h').locator('xpath=../..').locator('table.logs > tbody > tr').count()).toBe(500);
    expect(await page.locator('[data-shown]').textContent()).toContain('The newest 500 of 1,234 lines');
    // The filters apply to the count as to the rows: the errors among them.
    await go(`/logs?service=bulk&severity=17&${range}`);
    await page.locator('[data-log-total="124"]').waitFor();
    expect(await page.locator('[data-shown]').count()).toBe(0);
  });

  it('shows error groups with sparklines, a stack trace, releases; resolves a group', async () => {
    await go('/errors');
    const link = page.getByRole('link', { name: /card declined by issuer/ }).first();
    await link.waitFor();
    await page.locator('svg.spark rect').first().waitFor({ state: 'attached' });
    await shot('errors');
    await link.click();
    await page.getByText('Events by release').waitFor();
    await page.locator('.bars').getByText('1.1.0').waitFor();
    await page.locator('.stack').getByText(/card declined by issuer/).first().waitFor();
    await page.locator('#linked-h').locator('xpath=../..').locator('a').first().waitFor();
    await shot('error-detail');
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await page.locator('.badge', { hasText: /^resolved$/ }).waitFor();
    const id = new URL(page.url()).pathname.split('/').pop() ?? '';
    expect((await apiCall<{ group: { status: string } }>(`/api/errors/${id}`)).body.group.status).toBe('resolved');
  });

  it('shows a Sentry event\'s stack frames, crashing frame first', async () => {
    await go('/errors?q=stock');
    await page.getByRole('link', { name: /stock went negative/ }).click();
    const frames = page.locator('.stack .frames li');
    await frames.first().waitFor();
    expect(await frames.first().textContent()).toContain('reserveStock');
    await page.locator('.bars').getByText('inventory@2.0.0').waitFor();
    await shot('error-sentry');
  });

  it('lists the firing alert and creates a silence from it', async () => {
    await go('/alerts');
    await page.getByRole('link', { name: 'checkout-errors' }).waitFor();
    await page.getByRole('button', { name: 'Silence…' }).first().click();
    await page.getByLabel('Comment').fill('deploy rollback in progress');
    await page.getByRole('button', { name: 'Create silence' }).click();
    await page.getByRole('status').getByText('Silence created').waitFor();
    await page.locator('#silences-h').locator('xpath=../..').getByText('deploy rollback in progress').waitFor();
    const silences = (await apiCall<{ silences: Array<{ comment: string; matchers: Array<{ name: string; value: string }> }> }>('/api/silences')).body.silences;
    expect(silences).toHaveLength(1);
    expect(silences[0].comment).toBe('deploy rollback in progress');
    expect(silences[0].matchers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'service', value: 'checkout' })]));
    await shot('alerts');
  });

  it('approves a pending access request and shows the grant', async () => {
    await go('/access');
    await page.getByText('debug declined payments').waitFor();
    await shot('access-pending');
    await page.getByRole('button', { name: /^Approve request/ }).click();
    await page.getByRole('status').getByText(/approved/).waitFor();
    await page.locator('#grants-h').locator('xpath=../..').locator('tr[data-grant]').first().waitFor();
    const reqs = (await apiCall<{ requests: Array<{ status: string; decidedBy: string | null }> }>('/api/access/requests')).body.requests;
    expect(reqs[0].status).toBe('approved');
    const grants = (await apiCall<{ grants: Array<{ mode: string }> }>('/api/access/grants')).body.grants;
    expect(grants.map((g) => g.mode)).toEqual(['read']);
    await page.getByText('No client is connected to the gateway.').waitFor();
    await shot('access');
  });

  it('shows the audit trail with the chain verified, filterable by kind', async () => {
    await go('/audit?from=now-1h');
    await page.locator('[data-chain="ok"]').waitFor();
    const kinds = await page.locator('#trail-h').locator('xpath=../..').locator('tbody td:nth-child(3)').allTextContents();
    expect(kinds).toEqual(expect.arrayContaining(['resource.created']));
    expect(kinds.some((k) => k.includes('approved'))).toBe(true);
    await shot('audit');
    await page.getByLabel('Kind').selectOption('resource.created');
    await page.waitForURL(/kind=resource\.created/);
    const trail = page.locator('#trail-h').locator('xpath=../..');
    await until(async () => (await trail.locator('tbody tr').count()) === 1 ? true : undefined);
    expect(await trail.locator('tbody td:nth-child(3)').allTextContents()).toEqual(['resource.created']);
  });

  it('opens the incident the alert opened and tells its timeline', async () => {
    await go('/incidents');
    const link = page.locator('#incidents-h').locator('xpath=../..').locator('tbody a').first();
    await link.waitFor();
    await shot('incidents');
    await link.click();
    await page.locator('ol.timeline li[data-kind="alert.fired"]').waitFor();
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await page.locator('ol.timeline li[data-kind="acknowledged"]').waitFor();
    // A suggested action (from the catalogue, its parameters filled from the incident) runs for real.
    await page.getByRole('button', { name: 'Run restart…' }).click();
    await page.getByRole('button', { name: 'Confirm restart' }).click();
    await page.locator('[data-run-status="succeeded"]').waitFor();
    const runs = await until(async () => {
      const r = (await apiCall<{ runs: Array<{ action: string; params: Record<string, unknown>; status: string }> }>('/api/actions/runs?action=restart')).body.runs;
      return r.length > 0 && r[0].status === 'succeeded' ? r : undefined;
    });
    expect(runs[0].params).toEqual({ service: 'checkout' });
    await shot('incident');
  });

  it('shows loop metrics and deploys', async () => {
    await go('/loop');
    await page.getByText('MTTD (median)').waitFor();
    const incidents = await page.locator('.tile', { hasText: 'Incidents' }).locator('.tile-value').textContent();
    expect(Number(incidents)).toBeGreaterThanOrEqual(1);
    await shot('loop');
    await go('/deploys');
    const row = page.locator('#deploys-h').locator('xpath=../..').getByRole('link', { name: /→ 1\.1\.0$/ });
    await row.waitFor();
    await shot('deploys');
    await row.click();
    await page.locator('#verdict-h').waitFor();
    const deploy = (await apiCall<{ deploys: Array<{ id: string; version: string }> }>('/api/deploys?service=checkout')).body.deploys.find((d) => d.version === '1.1.0');
    const detail = (await apiCall<{ verification: { outcome: string | null; evidence: unknown[] } | null }>(`/api/deploys/${deploy?.id ?? ''}`)).body;
    if (detail.verification === null) await page.getByText('No verification for this deploy.').waitFor();
    else {
      await page.locator(`[data-verdict="${detail.verification.outcome ?? 'pending'}"]`).waitFor();
      expect(await page.locator('#verdict-h').locator('xpath=../..').locator('tr[data-signal]').count()).toBe(detail.verification.evidence.length);
    }
    await page.locator('#compare-h').locator('xpath=../..').locator('.chart canvas').first().waitFor();
    await shot('deploy');
  });

  it('does not shift the layout on live updates (refresh of charts, live tail lines)', async () => {
    await go('/services?service=checkout&from=now-15m');
    await page.locator('.chart canvas').first().waitFor();
    await page.locator('.legend-note').waitFor();
    // Layout shifts while the page refreshes its data (the refresh button, as the 10 s timer does).
    await page.evaluate(() => {
      const w = window as unknown as { __shift: number };
      w.__shift = 0;
      new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__shift += (e as unknown as { value: number }).value; })
        .observe({ type: 'layout-shift', buffered: false });
    });
    for (let i = 0; i < 3; i++) {
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await page.waitForTimeout(400);
    }
    expect(await page.evaluate(() => (window as unknown as { __shift: number }).__shift)).toBeLessThan(0.01);

    await go('/logs?live=1&service=payments');
    await page.locator('[data-tail-status="live"]').waitFor();
    await page.locator('#logs-h').locator('xpath=../..').locator('table, .placeholder').first().waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { __shift: number };
      w.__shift = 0;
      new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__shift += (e as unknown as { value: number }).value; })
        .observe({ type: 'layout-shift', buffered: false });
    });
    const s = sdk('payments', '3.2.0');
    for (let i = 0; i < 3; i++) {
      s.logger.emit({ body: `tail line ${i}`, severityNumber: SeverityNumber.INFO });
      await s.flushLogs();
      await page.locator('#tail-h').locator('xpath=../..').getByText(`tail line ${i}`).waitFor();
    }
    await s.flush();
    expect(await page.evaluate(() => (window as unknown as { __shift: number }).__shift)).toBeLessThan(0.01);
  });

  it('is usable by keyboard, every control is labelled, and it has a dark theme', async () => {
    await go('/logs');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.closest('nav')?.getAttribute('aria-label'))).toBe('Views');
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button, [role="listbox"]')].filter((el) => {
      const e = el as HTMLElement;
      const labelled = e.getAttribute('aria-label') ?? (e as HTMLInputElement).labels?.[0]?.textContent ?? e.textContent;
      return labelled === null || labelled.trim() === '';
    }).map((el) => el.outerHTML));
    expect(unlabelled).toEqual([]);
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await go('/services?service=checkout');
    await page.locator('.chart canvas').first().waitFor();
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 20, 25)');
    await shot('services-dark');
  });
});
