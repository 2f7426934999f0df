import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import { startUpstream, UPSTREAM, type Upstream } from '../src/gateway/harness.conformance.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import type { IncidentStory, LoopMetrics } from '../src/incidents/index.js';
import { eventually, callApi, stateUrlFor } from './helpers/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * The loop end to end, with real parts: the OTel SDK sends spans over OTLP/protobuf, rollups feed a
 * detect rule from rules.yaml and the deploys pillar's verification, a real HTTP receiver gets the
 * notification, a second user asks the gateway for access and the admin approves, the CLI
 * acknowledges. Bad deploy → alert → incident →
 * ack → rollback → recovery → resolved; then the story and the loop metrics are checked against
 * the times the test injected.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Sleeps to just past the next whole second, so a phase starts at a rollup bucket's start. */
const toNextSecond = (): Promise<void> => sleep(1000 - (Date.now() % 1000) + 5);

interface Phase { version: string; errorShare: number; firstSpanMs: number | null }

/** 100 SERVER spans/s of `checkout` in the current phase; bad spans carry an exception event. */
class Traffic {
  private readonly providers = new Map<string, BasicTracerProvider>();
  phase: Phase = { version: '1.0.0', errorShare: 0, firstSpanMs: null };
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(private readonly url: string) {}

  private tracer(version: string) {
    let p = this.providers.get(version);
    if (!p) {
      p = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'checkout', 'service.version': version, 'deployment.environment.name': 'prod' }),
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${this.url}/v1/traces` }), { scheduledDelayMillis: 50 })],
      });
      this.providers.set(version, p);
    }
    return p.getTracer('test');
  }

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        const ph = this.phase;
        const tracer = this.tracer(ph.version);
        ph.firstSpanMs ??= Date.now();
        for (let i = 0; i < 10; i++) {
          const span = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER });
          if (i < ph.errorShare * 10) {
            span.recordException(new Error('card processor timed out'));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        }
        await sleep(100);
      }
    })();
  }

  switchTo(version: string, errorShare: number): Phase {
    this.phase = { version, errorShare, firstSpanMs: null };
    return this.phase;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    for (const p of this.providers.values()) { await p.forceFlush(); await p.shutdown(); }
  }
}

let receiver: WebhookReceiver;
let upstream: Upstream;
let dataDir: string;
let server: RunningServer;
let token: string;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  upstream = await startUpstream();
  process.env.TIGHTLOOP_CRED_TEST_PG_SCRAM = UPSTREAM.scram.password;
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-incidents-'));
  writeFileSync(join(dataDir, 'rules.yaml'), `receivers:
  - name: oncall
    url: ${receiver.url}
rules:
  - name: checkout-errors
    type: threshold
    select: { service: checkout }
    by: [service, environment]
    signal: error_rate
    threshold: 0.2
    window: 2s
    min_count: 20
`);
  // A runbook the responder runs during the incident (deploys/actions writes each run to the audit chain).
  mkdirSync(join(dataDir, 'actions'));
  writeFileSync(join(dataDir, 'actions', 'flush-cache.yaml'), `kind: command
description: flush a service's cache
params:
  SERVICE: { type: string }
argv: [${JSON.stringify(process.execPath)}, -e, "process.stdout.write('flushed ' + process.argv[1])", "\${SERVICE}"]
`);
  server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  token = server.adminToken ?? '';
});

afterAll(async () => {
  await server.close();
  await receiver.close();
  await upstream.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown, as = token): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, as, method, path, body);
}

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    return { code: await run(['node', 'tightloop', ...args, '--url', server.url, '--token', token]), out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('incident from real traffic', () => {
  it('bad deploy → alert → incident → ack → rollback → recovery → resolved, told as one story', async () => {
    const deploys = server.deploys;
    const fired: string[] = [];
    server.detectEvents.on('alert.fired', (e) => fired.push(e.at));
    const failed: string[] = [];
    deploys.events.on('deploy.verdict', (e) => { if (e.verification.outcome === 'fail') failed.push(e.at); });
    const traffic = new Traffic(server.url);
    const testStart = Date.now();
    let bad: Phase, good: Phase;
    let badDeployId: string, rollbackId: string, rollbackAt: string;
    try {
      // Baseline: healthy 1.0.0, long enough to be the rollback's own history (it is compared
      // with 1.0.0 alone before 2.0.0 began, never with 2.0.0's traffic).
      traffic.start();
      await sleep(20_000);

      // The bad deploy, then its traffic from the next bucket on.
      const v2 = await deploys.record({ service: 'checkout', version: '2.0.0', environment: 'prod', commit: 'abc1234', commitTime: new Date(Date.now() - 3_600_000).toISOString(), actor: 'ci' });
      badDeployId = v2.id;
      await deploys.markFinished(v2.id);
      await toNextSecond();
      bad = traffic.switchTo('2.0.0', 0.5);

      const incident = await eventually(async () => {
        const r = await api<{ incidents: Array<{ id: string; status: string }> }>('GET', '/api/incidents?status=open');
        return r.body.incidents[0];
      }, 20_000);

      // Someone asks the gateway for access and the admin approves (both land in the audit chain).
      const created = await api('POST', '/api/resources', {
        name: 'orders-db', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user, credential: 'env:TIGHTLOOP_CRED_TEST_PG_SCRAM', tls: { mode: 'disable' },
      });
      expect(created.status).toBe(201);
      const bob = await server.createUser('bob', 'member');
      const req = await api<{ id: string }>('POST', '/api/access/requests', { resource: 'orders-db', mode: 'read', duration: '15m', reason: 'checkout errors since 2.0.0' }, bob.token);
      expect(req.status).toBe(201);

      await eventually(() => (receiver.hooks.length > 0 ? true : undefined), 10_000);
      // Acknowledge from the CLI, assign and approve over the API.
      const ack = await cli('incident', 'ack', incident.id);
      expect(ack.code).toBe(0);
      expect(ack.out).toContain('acknowledged');
      expect((await api('POST', `/api/incidents/${incident.id}/assign`, { assignee: 'bob' })).status).toBe(200);
      expect((await api('POST', `/api/access/requests/${req.body.id}/approve`, {})).status).toBe(200);
      // Bob looks at the orders through the gateway (psql-compatible client, his token as password).
      const db = new pg.Client({ connectionString: `postgres://bob:${bob.token}@127.0.0.1:${server.gatewayPort ?? 0}/orders-db` });
      db.on('error', () => undefined); // a session the server ends at shutdown is not this test's failure
      await db.connect();
      try {
        expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBeGreaterThanOrEqual(0);
      } finally {
        await db.end();
      }
      const action = await api<{ status: string }>('POST', '/api/actions/flush-cache/runs', { params: { SERVICE: 'checkout' }, wait: true });
      expect([action.status, action.body.status]).toEqual([200, 'succeeded']);

      // The verdict fails before anyone rolls back (the burst-robust tests take a few seconds).
      await eventually(() => (failed.length > 0 ? true : undefined), 60_000);
      // Roll back; healthy traffic again from the next bucket on.
      const rb = await deploys.record({ service: 'checkout', version: '1.0.0', environment: 'prod', source: 'rollback', rollbackOf: v2.id, actor: 'admin' });
      rollbackId = rb.id;
      rollbackAt = rb.startedAt;
      await deploys.markRolledBack(v2.id, rb.id);
      await toNextSecond();
      good = traffic.switchTo('1.0.0', 0);

      await eventually(async () => {
        const r = await api<IncidentStory>('GET', `/api/incidents/${incident.id}`);
        return r.body.incident.status === 'resolved' ? true : undefined;
      }, 60_000);
    } finally {
      await traffic.stop();
    }

    const incidents = (await api<{ incidents: Array<{ id: string }> }>('GET', '/api/incidents')).body.incidents;
    expect(incidents).toHaveLength(1); // the failed verdict joined the alert's incident
    const story = (await api<IncidentStory>('GET', `/api/incidents/${incidents[0].id}`)).body;
    const inc = story.incident;
    const badStart = bad.firstSpanMs ?? 0;
    const goodStart = good.firstSpanMs ?? 0;

    // The first bad signal is the bucket of 2.0.0's first failed request, not the alert time.
    expect(inc.firstBadSource).toBe('deploy');
    const firstBad = Date.parse(inc.firstBadAt ?? '');
    expect(Math.abs(firstBad - badStart)).toBeLessThanOrEqual(1000);
    expect(firstBad).toBeLessThan(Date.parse(inc.detectedAt));
    // Detection: the alert or the bad deploy's failed verdict, whichever came first.
    const detected = Math.min(Date.parse(fired[0]), ...failed.map((t) => Date.parse(t)));
    expect(Math.abs(Date.parse(inc.detectedAt) - detected)).toBeLessThan(50);
    const recovered = Date.parse(inc.recoveredAt ?? '');
    expect(Math.abs(recovered - goodStart)).toBeLessThanOrEqual(1000);
    expect(inc.resolution).toBe('auto');
    expect(inc.acknowledgedBy).toBe('admin');
    expect(inc.assignee).toBe('bob');
    expect(inc.suspectDeployId).toBe(badDeployId);

    // MTTD / MTTR against the injected times, within one rollup bucket.
    expect(Math.abs((story.times.mttdMs ?? -1) - (detected - badStart))).toBeLessThanOrEqual(1000);
    expect(Math.abs((story.times.mttrMs ?? -1) - (goodStart - badStart))).toBeLessThanOrEqual(1000);
    expect(story.times.mttaMs).toBe(Date.parse(inc.acknowledgedAt ?? '') - Date.parse(inc.detectedAt));

    // Links: example error traces, their error group, the log query, the suspect deploy and its commit.
    expect(story.suspectDeploy).toMatchObject({ id: badDeployId, version: '2.0.0', commit: 'abc1234' });
    expect(story.links.traceIds?.length).toBeGreaterThan(0);
    expect(story.links.errorGroups?.length).toBeGreaterThan(0);
    expect(story.links.logs).toContain('/api/logs?service=checkout');
    const trace = await api<{ spans: Array<{ version: string; statusCode: number }> }>('GET', `/api/traces/${story.links.traceIds?.[0]}`);
    expect(trace.body.spans[0]).toMatchObject({ version: '2.0.0', statusCode: 2 });

    // The timeline: every step, in order, with the right times.
    const tl = story.timeline;
    const first = (kind: string, pred: (e: (typeof tl)[number]) => boolean = () => true) => {
      const i = tl.findIndex((e) => e.kind === kind && pred(e));
      expect(i, `${kind} in the timeline: ${tl.map((e) => e.kind).join(', ')}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const steps = [
      first('deploy', (e) => e.links.deploy?.id === badDeployId),
      first('first_bad_signal'),
      first('alert.fired'),
      first('notified'),
      first('acknowledged'),
      first('assigned'),
      first('access.approved'),
      first('statement'),
      first('action'),
      first('rollback', (e) => e.links.deploy?.id === rollbackId),
      first('signal_recovered'),
      first('alert.resolved'),
      first('resolved'),
    ];
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    // The rollback's verdict and the alert's end may come in either order; both before the end.
    expect(first('verdict', (e) => e.links.deploy?.id === rollbackId)).toBeGreaterThan(first('rollback', (e) => e.links.deploy?.id === rollbackId));
    expect(first('verdict', (e) => e.links.deploy?.id === rollbackId)).toBeLessThan(first('resolved'));
    expect(first('access.requested')).toBeLessThan(first('access.approved'));
    expect(tl.map((e) => Date.parse(e.at))).toEqual([...tl.map((e) => Date.parse(e.at))].sort((a, b) => a - b));
    expect(tl[first('first_bad_signal')].at).toBe(inc.firstBadAt);
    expect(tl[first('first_bad_signal')].links.suspectDeploy?.commit).toBe('abc1234');
    expect(tl[first('alert.fired')].at).toBe(fired[0]);
    expect(tl[first('signal_recovered')].at).toBe(inc.recoveredAt);
    expect(tl[first('acknowledged')]).toMatchObject({ actor: 'admin', at: inc.acknowledgedAt });
    expect(tl[first('rollback', (e) => e.links.deploy?.id === rollbackId)].at).toBe(rollbackAt);
    expect(tl[first('resolved')].at).toBe(inc.resolvedAt);
    expect(tl[first('access.requested')].actor).toBe('bob');
    expect(tl[first('action')].title).toBe('action flush-cache: succeeded');
    expect(tl[first('statement')]).toMatchObject({ actor: 'bob', data: { resource: 'orders-db' } });
    expect(tl[first('statement')].title).toContain('FROM orders');
    expect(tl[first('verdict', (e) => e.links.deploy?.id === badDeployId)].data.outcome).toBe('fail');
    expect(tl[first('verdict', (e) => e.links.deploy?.id === rollbackId)].data.outcome).toBe('pass');
    expect(receiver.hooks.length).toBeGreaterThan(0);

    // Loop metrics over the test's period agree with the story.
    const q = new URLSearchParams({ from: String(testStart - 60_000), to: String(Date.now() + 1000), service: 'checkout' });
    const m = (await api<LoopMetrics & { deploysAvailable: boolean }>('GET', `/api/loop-metrics?${q.toString()}`)).body;
    expect(m.incidents.count).toBe(1);
    expect(m.incidents.each[0]).toEqual(story.times);
    expect(m.incidents.mttd.medianMs).toBe(story.times.mttdMs);
    const listed = await deploys.list({ service: 'checkout', from: new Date(testStart - 60_000).toISOString() });
    expect(m.dora.deployments).toBe(listed.length);
    expect(m.dora.failedDeployments).toBeGreaterThanOrEqual(1); // 2.0.0: failed, rolled back, the suspect
    expect(m.dora.reworkDeployments).toBeGreaterThanOrEqual(1); // the rollback
    expect(m.dora.leadTime.count).toBeGreaterThanOrEqual(1);

    const report = await cli('report', '--from', String(testStart - 60_000), '--service', 'checkout');
    expect(report.code).toBe(0);
    expect(report.out).toContain('MTTD');
    expect(report.out).toContain('change fail rate');
    const shown = await cli('incident', 'show', inc.id);
    expect(shown.out).toContain('first_bad_signal');
    expect(shown.out).toContain('abc1234');
  }, 180_000);

  it('API and CLI refuse bad input clearly', async () => {
    expect((await api('GET', '/api/incidents/nope')).status).toBe(404);
    expect((await api<{ error: { code: string } }>('GET', '/api/incidents?status=maybe')).body.error.code).toBe('bad_request');
    const list = (await api<{ incidents: Array<{ id: string }> }>('GET', '/api/incidents')).body.incidents;
    const id = list[0].id;
    expect((await api<{ error: { code: string } }>('POST', `/api/incidents/${id}/assign`, { assignee: '' })).status).toBe(400);
    expect((await api<{ error: { code: string } }>('POST', `/api/incidents/${id}/resolve`, {})).body.error.code).toBe('conflict');
    expect((await cli('incident', 'ack', 'nope')).code).toBe(1);
    expect((await cli('incident', 'resolve', id)).code).toBe(1);
    const listed = await cli('incident', 'list', '--status', 'resolved', '--json');
    expect([listed.code, (JSON.parse(listed.out) as Array<{ id: string }>).map((i) => i.id)]).toEqual([0, [id]]);
    expect((await cli('incident', 'list', '--status', 'open')).out).toBe('no incidents\n');
    expect((await cli('incident', 'list', '--status', 'nonsense')).code).toBe(2);
    const report = await cli('report', '--from', 'now-1h', '--json');
    expect(report.code).toBe(0);
    expect((JSON.parse(report.out) as LoopMetrics).incidents.count).toBe(1);
    expect((await api('GET', '/api/loop-metrics?from=now&to=now-1h')).status).toBe(400);
    const doc = (await api<{ paths: Record<string, unknown> }>('GET', '/api/openapi.json')).body;
    for (const p of ['/api/incidents', '/api/incidents/{id}', '/api/incidents/{id}/ack', '/api/incidents/{id}/assign', '/api/incidents/{id}/resolve', '/api/loop-metrics']) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});
