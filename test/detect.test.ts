import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import pino from 'pino';
import { serverConfigSchema } from '../src/http/config.js';
import { eventually, stateUrlFor } from './helpers/server.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * Alerting end to end: the real OTel SDK sends spans over OTLP/protobuf to a running tightloop,
 * rules come from `<data-dir>/rules.yaml`, notifications land on a real HTTP receiver.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Hook { status: string; alerts: Array<{ status: string; series: Record<string, string>; rule: { name: string } }> }

let receiver: WebhookReceiver;
beforeAll(async () => { receiver = await startWebhookReceiver(); });
afterAll(async () => { await receiver.close(); });

async function start(dataDir: string): Promise<RunningServer> {
  return startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
}

/** Sends `seconds` of traffic: 100 SERVER spans/s, `errorShare` of them with status ERROR. */
async function traffic(url: string, service: string, seconds: number, errorShare: number): Promise<void> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '2.0.0', 'deployment.environment.name': 'prod' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }), { scheduledDelayMillis: 50 })],
  });
  const tracer = provider.getTracer('test');
  for (let t = 0; t < seconds * 10; t++) {
    for (let i = 0; i < 10; i++) {
      const span = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER });
      if (i < errorShare * 10) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    await sleep(100);
  }
  await provider.forceFlush();
  await provider.shutdown();
}

function writeRules(dataDir: string, name: string): void {
  writeFileSync(join(dataDir, 'rules.yaml'), `receivers:
  - name: hook
    url: ${receiver.url}
rules:
  - name: ${name}
    type: threshold
    select: { service: ${name} }
    by: [service, environment]
    signal: error_rate
    threshold: 0.2
    window: 2s
    min_count: 20
`);
}

const hooksFor = (name: string): Hook[] =>
  receiver.hooks.map((h) => h.body as unknown as Hook).filter((h) => h.alerts[0]?.rule.name === name);

describe('alerting over OTLP traffic', () => {
  it('error-rate step → exactly one firing, then exactly one resolved, naming the series', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-'));
    writeRules(dataDir, 'checkout');
    const server = await start(dataDir);
    const events: string[] = [];
    server.detectEvents.on('alert.fired', (e) => events.push(`fired:${e.alert.series.service}`));
    server.detectEvents.on('alert.resolved', (e) => events.push(`resolved:${e.alert.series.service}`));
    try {
      await traffic(server.url, 'checkout', 2, 0);
      expect(hooksFor('checkout')).toEqual([]);
      await traffic(server.url, 'checkout', 3, 0.5);
      await traffic(server.url, 'checkout', 4, 0);
      await sleep(1500);
      const hooks = hooksFor('checkout');
      expect(hooks.map((h) => h.status)).toEqual(['firing', 'resolved']);
      expect(hooks[0].alerts[0].series).toEqual({ service: 'checkout', environment: 'prod' });
      expect(events).toEqual(['fired:checkout', 'resolved:checkout']);
      const token = server.adminToken ?? '';
      const res = await fetch(`${server.url}/api/alerts?state=all`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.json() as { alerts: Array<{ id: string; state: string }> };
      expect(body.alerts.map((a) => a.state)).toEqual(['resolved']);
      const one = await fetch(`${server.url}/api/alerts/${body.alerts[0].id}`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await one.json()) as { history: Array<{ state: string }> }).history.map((h) => h.state)).toEqual(['firing', 'resolved']);
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('restart while firing → no duplicate notification, state intact, one resolved after recovery', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-'));
    writeRules(dataDir, 'payments');
    let server = await start(dataDir);
    try {
      await traffic(server.url, 'payments', 3, 0.5);
      await sleep(300);
      expect(hooksFor('payments').map((h) => h.status)).toEqual(['firing']);
      await server.close();
      server = await start(dataDir);
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const res = await fetch(`${server.url}/api/alerts?state=firing`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await res.json()) as { alerts: Array<{ series: Record<string, string> }> }).alerts.map((a) => a.series.service)).toEqual(['payments']);
      await traffic(server.url, 'payments', 3, 0.5);
      expect(hooksFor('payments').map((h) => h.status)).toEqual(['firing']);
      await traffic(server.url, 'payments', 4, 0);
      await sleep(1500);
      expect(hooksFor('payments').map((h) => h.status)).toEqual(['firing', 'resolved']);
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('notification failures are counted and reported', () => {
  it('a receiver refusing a notification: counted in /metrics, degraded in /api/health until it accepts again', async () => {
    let answer = 400;
    const refuser = createServer((req, res) => { req.resume(); req.on('end', () => { res.statusCode = answer; res.end(); }); });
    await new Promise<void>((ok) => refuser.listen(0, '127.0.0.1', ok));
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-'));
    writeFileSync(join(dataDir, 'rules.yaml'), `receivers:
  - name: refuser
    url: http://127.0.0.1:${(refuser.address() as AddressInfo).port}/hook
rules:
  - name: refused
    type: threshold
    select: { service: refused }
    by: [service]
    signal: error_rate
    threshold: 0.2
    window: 2s
    min_count: 20
`);
    const server = await start(dataDir);
    const get = (path: string) => fetch(server.url + path, { headers: { authorization: `Bearer ${server.adminToken ?? ''}` } });
    try {
      await traffic(server.url, 'refused', 3, 0.5);
      const health = await eventually(async () => {
        const r = await get('/api/health');
        const body = await r.json() as { status: string };
        return body.status === 'degraded' ? { status: r.status, body } : undefined;
      });
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'degraded', degraded: [{ component: 'notifier:refuser', reason: 'the last notification failed: HTTP 400' }] });
      const text = await (await get('/metrics')).text();
      expect(text).toMatch(/^tightloop_notifier_failures_total\{receiver="refuser"\} [1-9]\d*$/m);
      expect(text).toMatch(/^tightloop_notifications_total\{outcome="failed",receiver="refuser"\} [1-9]\d*$/m);
      answer = 200; // the resolved notification goes through: the receiver is healthy again
      await traffic(server.url, 'refused', 4, 0);
      await eventually(async () => ((await (await get('/api/health')).json()) as { status: string }).status === 'ok' || undefined);
    } finally {
      await server.close();
      await new Promise((ok) => refuser.close(ok));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('rule and silence bodies are validated at the route', () => {
  it('a bad body is a 400 naming each field, before the rule or silence is looked up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-detect-route-'));
    const server = await start(dataDir);
    try {
      const send = async (method: string, path: string, body: unknown): Promise<{ status: number; message: string }> => {
        const res = await fetch(server.url + path, {
          method, headers: { authorization: `Bearer ${server.adminToken ?? ''}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
        });
        const json = (await res.json()) as { error?: { message?: string }; message?: string };
        return { status: res.status, message: json.error?.message ?? json.message ?? '' };
      };
      const rule = await send('POST', '/api/rules', { name: 'r', type: 'threshold', signal: 'error_rate', threshold: 'high' });
      expect(rule.status).toBe(400);
      expect(rule.message).toMatch(/threshold/);
      // An unknown id with a bad body: the body is refused first (400), not the id (404).
      expect((await send('PUT', '/api/rules/01UNKNOWN', { name: 'r' })).status).toBe(400);
      expect((await send('PUT', '/api/rules/01UNKNOWN', { name: 'r', type: 'threshold', signal: 'error_rate', threshold: 0.1 })).status).toBe(404);
      const silence = await send('POST', '/api/silences', { matchers: [], duration: '1h', extra: true });
      expect(silence.status).toBe(400);
      expect(silence.message).toMatch(/matchers: .*at least one matcher/);
      expect(silence.message).toMatch(/extra/);
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
