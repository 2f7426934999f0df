import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { ciDefaults } from '../src/cli/deploys.js';
import { run } from '../src/cli/main.js';
import type { Deploy, Verification } from '../src/deploys/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { eventually, callApi, stateUrlFor } from './helpers/server.js';

/**
 * Deploy verification end to end: the real OTel SDK exports SERVER spans of two versions through
 * OTLP/protobuf into a real tightloop; verification runs on the committed rollup deltas. Traffic
 * is a few hundred requests per second per version (real time), so decisions take seconds; the
 * statistics are the production ones with a short max duration and smaller minimum samples.
 */

let server: RunningServer;
let dataDir: string;
let token: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-deploys-'));
  const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' });
  server = await startServer(config, pino({ level: 'silent' }), {
    deploys: { verify: { maxDurationS: 30, minSamples: 60, minReferenceSamples: 100 }, tickMs: 100 },
  });
  token = server.adminToken ?? '';
});
afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, token, method, path, body);
}

interface Profile { errorRate: number; latencyScale: number; exception?: string }

/** One version of a service, exporting through the real SDK. */
function version(service: string, v: string): { emit(n: number, p: Profile): void; flush(): Promise<void>; close(): Promise<void> } {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': v, 'deployment.environment.name': 'prod' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces` }), {
      scheduledDelayMillis: 50, maxExportBatchSize: 1000, maxQueueSize: 20_000,
    })],
  });
  const tracer = provider.getTracer('deploys-test');
  let seed = 7;
  const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  return {
    emit(n, p) {
      const now = Date.now();
      for (let i = 0; i < n; i++) {
        const gauss = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
        const ms = 40 * Math.exp(0.4 * gauss) * p.latencyScale;
        const span = tracer.startSpan('GET /items', { kind: SpanKind.SERVER, startTime: now - ms });
        if (rand() < p.errorRate) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          if (p.exception !== undefined) span.recordException({ name: 'TypeError', message: p.exception });
        }
        span.end(now);
      }
    },
    flush: () => provider.forceFlush(),
    close: () => provider.shutdown(),
  };
}

const HEALTHY: Profile = { errorRate: 0.02, latencyScale: 1 };

/** Drives traffic in 100 ms steps until `done` answers or `maxS` passes. */
async function drive(steps: Array<{ emit(n: number, p: Profile): void }>, rates: Array<[number, Profile]>, done: () => boolean | Promise<boolean>, maxS: number): Promise<void> {
  const until = Date.now() + maxS * 1000;
  while (Date.now() < until) {
    steps.forEach((s, i) => s.emit(Math.round(rates[i][0] / 10), rates[i][1]));
    await new Promise((r) => setTimeout(r, 100));
    if (await done()) return;
  }
}

async function deployOf(service: string, v: string): Promise<Deploy & { verification: Verification | null }> {
  const r = await api<{ deploys: Deploy[] }>('GET', `/api/deploys?service=${service}&version=${v}`);
  expect(r.status).toBe(200);
  expect(r.body.deploys).toHaveLength(1);
  return (await api<Deploy & { verification: Verification | null }>('GET', `/api/deploys/${r.body.deploys[0].id}`)).body;
}

const decided = (service: string, v: string) => async (): Promise<boolean> => {
  const r = await api<{ deploys: Deploy[] }>('GET', `/api/deploys?service=${service}&version=${v}`);
  return r.body.deploys[0] !== undefined && ['passed', 'failed', 'inconclusive'].includes(r.body.deploys[0].status);
};

describe('deploy verification with real OTel SDK traffic', () => {
  it('a healthy canary passes; the first version of a service is an implicit deploy', async () => {
    const v1 = version('shop', '1.0.0'), v2 = version('shop', '1.1.0');
    // Pre-deploy traffic: v1 alone; it is recorded implicitly (first version: nothing to compare with).
    await drive([v1], [[300, HEALTHY]], () => false, 2);
    await v1.flush();
    const first = await eventually(async () => {
      const d = (await api<{ deploys: Deploy[] }>('GET', '/api/deploys?service=shop&version=1.0.0')).body.deploys[0];
      return d?.status === 'inconclusive' ? d : undefined;
    });
    expect(first.source).toBe('implicit');
    expect(first.previousVersion).toBeNull();

    const rec = await api<Deploy & { verification: Verification }>('POST', '/api/deploys', { service: 'shop', version: '1.1.0', environment: 'prod', commit: 'abc123' });
    expect(rec.status).toBe(201);
    expect(rec.body).toMatchObject({ status: 'verifying', previousVersion: '1.0.0', source: 'api', commit: 'abc123' });
    expect(rec.body.verification.outcome).toBeNull();

    await drive([v1, v2], [[300, HEALTHY], [300, HEALTHY]], decided('shop', '1.1.0'), 40);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('shop', '1.1.0');
    expect(d.status).toBe('passed');
    const v = d.verification!;
    expect(v).toMatchObject({ outcome: 'pass', baselineKind: 'canary', baselineVersion: '1.0.0' });
    const err = v.evidence.find((e) => e.signal === 'error_rate')!;
    expect(err.outcome).toBe('pass');
    expect(err.candidate.requests).toBeGreaterThan(500);
    expect(err.baseline.rate).toBeGreaterThan(0.005);
    expect(v.evidence.find((e) => e.signal === 'latency')!.outcome).toBe('pass');
  }, 60_000);

  it('errors 1 % → 20 % after a full rollout fail against the pre-deploy window', async () => {
    const v1 = version('cart', '2.0.0'), v2 = version('cart', '2.1.0');
    // A longer history than the other tests: it is the rollback's baseline below (each pre-deploy
    // second is replayed once, then the rollback is compared with the whole window at checkpoints).
    await drive([v1], [[400, { errorRate: 0.01, latencyScale: 1 }]], () => false, 14);
    await v1.flush();
    const rec = await api<Deploy>('POST', '/api/deploys', { service: 'cart', version: '2.1.0', environment: 'prod' });
    expect(rec.status).toBe(201);
    await drive([v2], [[400, { errorRate: 0.2, latencyScale: 1 }]], decided('cart', '2.1.0'), 30);
    await v2.close(); await v1.close();
    const d = await deployOf('cart', '2.1.0');
    expect(d.status).toBe('failed');
    expect(d.verification).toMatchObject({ outcome: 'fail', baselineKind: 'pre_deploy', baselineVersion: '2.0.0' });
    const err = d.verification!.evidence.find((e) => e.signal === 'error_rate')!;
    expect(err.outcome).toBe('fail');
    expect(err.candidate.rate).toBeGreaterThan(0.1);
    expect(err.stats.oddsRatio).toBeGreaterThan(5);
    expect(err.stats.failLogLr).toBeGreaterThanOrEqual(err.stats.failThreshold);
    expect(d.verification!.reason).toMatch(/error rate up/);
    expect(err.candidate.requests).toBeLessThan(1000); // decided on little traffic (timing: npm run bench -- verify)

    // The rollback is a deploy of its own, verified against the bad version it replaces.
    const statuses: string[] = [];
    const off = (e: { deploy: Deploy; from: string }): void => { if (e.deploy.service === 'cart') statuses.push(`${e.deploy.version}:${e.from}->${e.deploy.status}`); };
    server.deploys.events.on('deploy.status', off);
    const rb = await server.deploys.record({ service: 'cart', version: '2.0.0', environment: 'prod', source: 'rollback', rollbackOf: d.id, verify: false });
    expect(rb).toMatchObject({ previousVersion: '2.1.0', rollbackOf: d.id, status: 'started' });
    expect(await server.deploys.markRolledBack(d.id, rb.id)).toMatchObject({ status: 'rolled_back' });
    const again = version('cart', '2.0.0');
    const verdict = server.deploys.verify(rb.id, { maxDurationS: 60 });
    await drive([again], [[400, { errorRate: 0.01, latencyScale: 1 }]], decided('cart', '2.0.0'), 60);
    await again.close();
    const rbv = await verdict;
    expect(rbv.outcome, JSON.stringify(rbv)).toBe('pass');
    expect((await server.deploys.get(rb.id)).status).toBe('passed');
    expect((await server.deploys.get(d.id)).status).toBe('rolled_back');
    expect(statuses).toEqual(['2.1.0:failed->rolled_back', '2.0.0:started->verifying', '2.0.0:verifying->passed']);
    server.deploys.events.off('deploy.status', off);
    expect((await server.deploys.markFinished(rb.id)).finishedAt).not.toBeNull();
  }, 120_000);

  it('p95 × 2 in a canary fails on latency; deploy.verdict and deploy.status are emitted', async () => {
    const verdicts: string[] = [];
    const statuses: string[] = [];
    server.deploys.events.on('deploy.verdict', ({ deploy, verification }) => { if (deploy.service === 'search') verdicts.push(`${deploy.version}:${verification.outcome}`); });
    server.deploys.events.on('deploy.status', ({ deploy, from }) => { if (deploy.service === 'search') statuses.push(`${deploy.version}:${from}->${deploy.status}`); });
    const v1 = version('search', '3.0.0'), v2 = version('search', '3.1.0');
    await drive([v1], [[300, HEALTHY]], () => false, 2);
    await v1.flush();
    // No environment given: the one search's telemetry reports.
    expect((await api<Deploy>('POST', '/api/deploys', { service: 'search', version: '3.1.0' })).body.environment).toBe('prod');
    await drive([v1, v2], [[300, HEALTHY], [300, { errorRate: 0.02, latencyScale: 2 }]], decided('search', '3.1.0'), 30);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('search', '3.1.0');
    expect(d.status).toBe('failed');
    const lat = d.verification!.evidence.find((e) => e.signal === 'latency')!;
    expect(lat.outcome).toBe('fail');
    expect(lat.candidate.p95Ms / lat.baseline.p95Ms).toBeGreaterThan(1.6);
    expect(d.verification!.evidence.find((e) => e.signal === 'error_rate')!.outcome).not.toBe('fail');
    expect(verdicts).toContain('3.1.0:fail');
    const failed = await api<{ deploys: Deploy[] }>('GET', '/api/deploys?status=failed&service=search');
    expect(failed.body.deploys.map((x) => x.version)).toEqual(['3.1.0']);
    expect(statuses).toContain('3.1.0:started->verifying');
    expect(statuses).toContain('3.1.0:verifying->failed');
  }, 60_000);

  it('an error group new in the candidate fails it, at the same error rate', async () => {
    const v1 = version('basket', '5.0.0'), v2 = version('basket', '5.1.0');
    await drive([v1], [[200, HEALTHY]], () => false, 1);
    await v1.flush();
    await api('POST', '/api/deploys', { service: 'basket', version: '5.1.0', environment: 'prod' });
    await drive([v1, v2], [[200, HEALTHY], [200, { ...HEALTHY, exception: "cannot read properties of undefined (reading 'sku')" }]], decided('basket', '5.1.0'), 30);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('basket', '5.1.0');
    expect(d.status).toBe('failed');
    const groups = d.verification!.evidence.find((e) => e.signal === 'new_error_groups')!;
    expect(groups).toMatchObject({ outcome: 'fail', candidate: { newGroups: 1 } });
    expect(groups.detail).toMatch(/sku/);
    // Weighed by its share (error.events counts): on 2 % of requests, far above the 0.2 % rule.
    expect(d.verification!.reason).toMatch(/^new error group rule: "TypeError: cannot read properties of undefined \(reading 'sku'\)" new in this version: \d+ event\(s\) in \d+ requests/);
    expect(d.verification!.evidence.find((e) => e.signal === 'error_rate')!.outcome).not.toBe('fail');
  }, 60_000);

  it('a rollback before the verdict ends the verification and wakes its waiters', async () => {
    const d = await server.deploys.record({ service: 'quiet', version: '2', previousVersion: '1', environment: 'prod' });
    const waiting = server.deploys.waitForVerdict(d.id);
    const rb = await server.deploys.record({ service: 'quiet', version: '1', environment: 'prod', source: 'rollback', rollbackOf: d.id, verify: false });
    expect(rb.previousVersion).toBe('2');
    await server.deploys.markRolledBack(d.id, rb.id);
    const v = await waiting;
    expect(v).toMatchObject({ outcome: 'inconclusive', deployId: d.id });
    expect(v.reason).toMatch(/rolled back by deploy/);
    expect((await server.deploys.get(d.id)).status).toBe('rolled_back');
    await expect(server.deploys.waitForVerdict(rb.id)).rejects.toMatchObject({ code: 'not_verified' });
  });

  it('low traffic is inconclusive, never a failure, even when its errors look bad', async () => {
    const v1 = version('tiny', '1'), v2 = version('tiny', '2');
    await drive([v1], [[20, HEALTHY]], () => false, 1);
    await v1.flush();
    const rec = await api<Deploy>('POST', '/api/deploys', { service: 'tiny', version: '2', environment: 'prod', verify: false });
    expect(rec.body.status).toBe('started');
    const started = await api<Verification>('POST', `/api/deploys/${rec.body.id}/verify`, { maxDurationS: 3 });
    expect(started.status).toBe(202);
    expect(started.body.outcome).toBeNull();
    await drive([v1, v2], [[10, HEALTHY], [10, { errorRate: 0.5, latencyScale: 1 }]], decided('tiny', '2'), 10);
    await Promise.all([v1.close(), v2.close()]);
    const d = await deployOf('tiny', '2');
    expect(d.status).toBe('inconclusive');
    expect(d.verification!.reason).toMatch(/not enough traffic/);
  }, 30_000);
});

describe('deploy API input', () => {
  it('answers bad input with precise 400s and unknown ids with 404', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', '/api/deploys', {}, /service: .*; version: /],
      ['POST', '/api/deploys', { service: 'a', version: '' }, /version: /],
      ['POST', '/api/deploys', { service: 'a', version: '1', url: 'not a url' }, /url: /],
      ['POST', '/api/deploys', { service: 'a', version: '1', commitTime: 'yesterday' }, /commitTime: expected an ISO 8601 time/],
      ['POST', '/api/deploys', { service: 'a', version: '1', source: 'implicit' }, /source: /],
      ['POST', '/api/deploys', { service: 'a', version: '1', colour: 'red' }, /colour/],
      ['GET', '/api/deploys?from=yesterday', undefined, /parameter 'from'/],
      ['GET', '/api/deploys?limit=0', undefined, /parameter 'limit'/],
      ['GET', '/api/deploys?status=done', undefined, /parameter 'status'/],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await api<{ error: { code: string; message: string } }>(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
      expect(r.body.error.message).toMatch(message);
    }
    expect((await api('GET', '/api/deploys/nope')).status).toBe(404);
    expect((await api('POST', '/api/deploys', { service: 'a', version: '1', rollbackOf: 'nope' })).status).toBe(404);
    const d = await api<Deploy>('POST', '/api/deploys', { service: 'api-input', version: '1', verify: false });
    const bad = await api<{ error: { message: string } }>('POST', `/api/deploys/${d.body.id}/verify`, { maxDurationS: -5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/maxDurationS/);
    expect((await api('GET', `/api/deploys/${d.body.id}/verification`)).status).toBe(404);
    const doc = await api<{ paths: Record<string, unknown> }>('GET', '/api/openapi.json');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/deploys', '/api/deploys/{id}', '/api/deploys/{id}/verify', '/api/deploys/{id}/verification']));
  });
});

describe('tightloop deploy record|verify', () => {
  const cli = (args: string[]): Promise<number> => run(['node', 'tightloop', ...args, '--url', server.url, '--token', token, '--json']);

  it('records from GitHub Actions variables and gates on the verdict: 0 pass, 1 fail, 3 inconclusive, 2 usage', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      GITHUB_ACTIONS: 'true', GITHUB_SHA: 'f00dfeed', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_RUN_ID: '42', GITHUB_ACTOR: 'octocat',
    });
    try {
      expect(await cli(['deploy', 'record', '--service', 'gate', '--version', '9', '--environment', 'prod', '--commit-time', '2026-11-26T10:00:00Z', '--no-verify'])).toBe(0);
    } finally {
      process.env = saved;
    }
    const d = await deployOf('gate', '9');
    expect(d).toMatchObject({ source: 'cli', commit: 'f00dfeed', url: 'https://github.com/acme/shop/actions/runs/42', actor: 'admin' /* the token's user; GITHUB_ACTOR is not taken */, commitTime: '2026-11-26T10:00:00.000Z', status: 'started' });

    // The verdicts of the deploys above, read through the gate.
    expect(await cli(['deploy', 'verify', '--service', 'shop', '--version', '1.1.0', '--wait', '--timeout', '5'])).toBe(0);
    expect(await cli(['deploy', 'verify', '--service', 'cart', '--version', '2.1.0', '--wait'])).toBe(1);
    expect(await cli(['deploy', 'verify', '--service', 'tiny', '--version', '2', '--wait'])).toBe(3);
    expect(await cli(['deploy', 'verify', '--service', 'gate', '--version', '9'])).toBe(3); // recorded, never verified
    expect(await cli(['deploy', 'verify', '--service', 'nosuch', '--version', '1'])).toBe(2);
    expect(await cli(['deploy', 'verify', '--service', 'shop'])).toBe(2);
    expect(await run(['node', 'tightloop', 'deploy', 'verify', '--service', 'shop', '--version', '1.1.0', '--url', 'http://127.0.0.1:1', '--token', 't'])).toBe(2);
  }, 30_000);

  it('reads GitLab CI variables', () => {
    expect(ciDefaults({
      GITLAB_CI: 'true', CI_COMMIT_SHA: 'beef', CI_COMMIT_TIMESTAMP: '2026-11-26T09:00:00+01:00',
      CI_PIPELINE_URL: 'https://gitlab.example/acme/shop/-/pipelines/7', CI_ENVIRONMENT_NAME: 'staging', GITLAB_USER_LOGIN: 'dev',
    })).toEqual({
      commit: 'beef', commitTime: '2026-11-26T09:00:00+01:00', url: 'https://gitlab.example/acme/shop/-/pipelines/7', environment: 'staging', actor: 'dev',
    });
    expect(ciDefaults({})).toEqual({});
  });
});

describe('deploys across a restart', () => {
  it('keeps records durable and resumes a verification the restart interrupted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-deploys-restart-'));
    const config = serverConfigSchema.parse({ dataDir: dir, stateUrl: await stateUrlFor(dir), port: 0, logLevel: 'silent' });
    const opts = { deploys: { verify: { maxDurationS: 2 }, tickMs: 100 } };
    try {
      let s = await startServer(config, pino({ level: 'silent' }), opts);
      const d = await s.deploys.record({ service: 'svc', version: '1', previousVersion: '0', environment: 'prod', commit: 'c1' });
      expect(d.status).toBe('verifying');
      const firstVerification = d.verificationId;
      await s.close();
      s = await startServer(config, pino({ level: 'silent' }), opts);
      try {
        const resumed = await s.deploys.get(d.id);
        expect(resumed).toMatchObject({ status: 'verifying', commit: 'c1' });
        expect(resumed.verificationId).not.toBe(firstVerification);
        const v = await s.deploys.waitForVerdict(d.id, 10_000);
        expect(v).toMatchObject({ outcome: 'inconclusive' });
        expect(v.reason).toMatch(/not enough traffic/);
        expect((await s.deploys.list({ service: 'svc' })).map((x) => x.status)).toEqual(['inconclusive']);
        expect(await s.deploys.list({ service: 'svc', from: new Date(Date.now() + 60_000).toISOString() })).toEqual([]);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
