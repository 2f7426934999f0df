import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import type { ActionRun } from '../src/deploys/actions/index.js';
import type { Deploy, Verification } from '../src/deploys/index.js';
import type { Rollout } from '../src/deploys/rollout/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { eventually, callApi, stateUrlFor } from './helpers/server.js';

/**
 * The whole loop on one machine: a real tightloop runs a service's versions as real child
 * processes (the fixture, instrumented with the real OTel Node SDK exporting OTLP/protobuf to
 * this tightloop) behind the local actuator's proxy; the test drives HTTP traffic through the
 * proxy; the real DeployService verifies from the ingested telemetry. Verification uses the
 * production statistics with smaller minimum samples and a short maximum duration.
 */

const fixture = fileURLToPath(new URL('./fixtures/otel-service.mjs', import.meta.url));
let server: RunningServer;
let dataDir: string;
let token: string;
let proxy: string;

const SERVICES = `
services:
  - name: shop
    port: 0
    health: /health
    current: "1.0.0"
    command: [node, ${JSON.stringify(fixture)}]
    steps: [50, 100]
    onInconclusive: promote
    maxHolds: 1
    verifyMaxDurationS: 15
    warmupS: 2
    versions:
      "1.0.0": { env: { VERSION: "1.0.0", LATENCY_MS: "20" } }
      "2.0.0": { env: { VERSION: "2.0.0", LATENCY_MS: "20" } }
      "3.0.0": { env: { VERSION: "3.0.0", LATENCY_MS: "20", ERROR_RATE: "0.3" } }
      "4.0.0": { env: { VERSION: "4.0.0", LATENCY_MS: "20", ERROR_RATE: "0.3" } }
`;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-rollout-'));
  writeFileSync(join(dataDir, 'services.yaml'), SERVICES);
  mkdirSync(join(dataDir, 'actions'));
  const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' });
  server = await startServer(config, pino({ level: 'silent' }), {
    deploys: { verify: { maxDurationS: 20, minSamples: 40, minReferenceSamples: 60 }, tickMs: 100 },
  });
  token = server.adminToken ?? '';
  proxy = `http://127.0.0.1:${server.actuator.proxyPort('shop')}`;
});

afterAll(async () => {
  await stopLoad();
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, token, method, path, body);
}

/** A few concurrent clients sending requests through the proxy until stopped. */
let loadOn = false;
let loadDone: Promise<unknown> = Promise.resolve();
const seenVersions: Record<string, number> = {};
function startLoad(workers = 8): void {
  loadOn = true;
  loadDone = Promise.all(Array.from({ length: workers }, async () => {
    while (loadOn) {
      try {
        const res = await fetch(`${proxy}/api/cart`);
        await res.arrayBuffer();
        const v = res.headers.get('x-version') ?? String(res.status);
        seenVersions[v] = (seenVersions[v] ?? 0) + 1;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }));
}
function stopLoad(): Promise<unknown> {
  loadOn = false;
  return loadDone;
}

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    const code = await run(['node', 'tightloop', ...args, '--url', server.url, '--token', token]);
    return { code, out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

const versionsRunning = (): string[] => server.actuator.status('shop')[0].versions.filter((v) => v.state === 'running').map((v) => v.version).sort();

describe('progressive deploy with the local actuator', () => {
  it('promotes a healthy version step by step; both processes served traffic', async () => {
    expect(versionsRunning()).toEqual(['1.0.0']);
    startLoad();
    await eventually(() => ((seenVersions['1.0.0'] ?? 0) > 50 ? true : undefined));
    const started = await api<Rollout>('POST', '/api/deploys/rollouts', { service: 'shop', version: '2.0.0', commit: 'abc123' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ service: 'shop', version: '2.0.0', previousVersion: '1.0.0', status: 'running' });
    const r = await server.rollouts.wait(started.body.id);
    expect(r.status, JSON.stringify(r)).toBe('promoted');
    expect(r.steps.map((s) => s.weight)).toEqual([50, 100]);
    // Under load the evidence may stay short of a decision at a step: that is "hold", never "fail".
    const outcomes = r.steps.flatMap((st) => st.verdicts.map((v) => v.outcome));
    expect(outcomes.every((o) => o === 'pass' || o === 'inconclusive'), JSON.stringify(r.steps)).toBe(true);
    // The service chose `onInconclusive: promote` (this machine may be too loaded for a pass in
    // 15 s): each step has one verdict, and any inconclusive one is recorded as promoted without
    // evidence. (hold, the default, is tested with scripted verdicts in rollout-policy.test.ts.)
    expect(r.steps.every((st) => st.verdicts.length === 1)).toBe(true);
    const unproven = r.steps.filter((st) => st.verdicts[0].outcome === 'inconclusive');
    expect(r.promotedWithoutEvidence === true).toBe(unproven.length > 0);
    expect(r.steps.map((st) => st.promotedWithoutEvidence === true)).toEqual(r.steps.map((st) => st.verdicts[0].outcome === 'inconclusive'));
    expect(seenVersions['2.0.0']).toBeGreaterThan(0);
    expect(versionsRunning()).toEqual(['2.0.0']);
    const deploy = await server.deploys.get(r.deployId);
    expect(deploy).toMatchObject({ source: 'rollout', version: '2.0.0', previousVersion: '1.0.0', commit: 'abc123' });
    expect(deploy.finishedAt).not.toBeNull();
    const runs = (await api<{ runs: ActionRun[] }>('GET', `/api/actions/runs?deployId=${r.deployId}`)).body.runs;
    expect(runs.map((x) => [x.action, x.params.WEIGHT, x.status]).reverse()).toEqual([['local-deploy', 50, 'succeeded'], ['local-deploy', 100, 'succeeded']]);
  }, 150_000);

  it('rolls a bad version back: rollback action with the previous version, rollback recorded and verified (CLI)', async () => {
    const out = await cli('deploy', 'start', '--service', 'shop', '--version', '3.0.0');
    expect(out.code, out.out).toBe(1);
    expect(out.out).toContain('rolled_back');
    const r = server.rollouts.list().find((x) => x.version === '3.0.0')!;
    expect(r.status).toBe('rolled_back');
    expect(r.reason).toMatch(/^verification fail at 50 %/);
    const bad = await server.deploys.get(r.deployId);
    expect(bad.status).toBe('rolled_back');
    const rollbackRun = (await api<ActionRun>('GET', `/api/actions/runs/${r.rollbackRunId}`)).body;
    expect(rollbackRun).toMatchObject({ action: 'local-rollback', status: 'succeeded', actor: 'tightloop', deployId: bad.id,
      params: { SERVICE: 'shop', VERSION: '3.0.0', PREVIOUS_VERSION: '2.0.0', WEIGHT: 100 } });
    const rb = await server.deploys.get(r.rollbackDeployId!);
    expect(rb).toMatchObject({ source: 'rollback', rollbackOf: bad.id, version: '2.0.0', previousVersion: '3.0.0' });
    const v = await server.deploys.verification(rb.id);
    expect(v?.outcome).not.toBeNull();
    expect(r.rollbackVerdict).toBe(v?.outcome);
    expect(versionsRunning()).toEqual(['2.0.0']);
  }, 120_000);

  it('rolls back a deploy made elsewhere that fails verification', async () => {
    // "CI" records the deploy, then ships it (here: half the traffic through the local actuator).
    const recorded = await api<Deploy>('POST', '/api/deploys', { service: 'shop', version: '4.0.0', environment: 'production' });
    expect(recorded.status).toBe(201);
    expect(recorded.body.previousVersion).toBe('2.0.0');
    const shipped = await api<ActionRun>('POST', '/api/actions/local-deploy/runs', { params: { SERVICE: 'shop', VERSION: '4.0.0', WEIGHT: 50, PREVIOUS_VERSION: '2.0.0' }, wait: true });
    expect(shipped.body.status).toBe('succeeded');
    const rb = await eventually(async () => (await server.deploys.list({ service: 'shop' })).find((d) => d.rollbackOf === recorded.body.id), 60_000);
    expect(rb).toMatchObject({ source: 'rollback', version: '2.0.0' });
    // The rollback's record is written before the bad deploy is marked: wait for the mark too.
    await eventually(async () => ((await server.deploys.get(recorded.body.id)).status === 'rolled_back' ? true : undefined), 10_000);
    const runs = (await api<{ runs: ActionRun[] }>('GET', `/api/actions/runs?action=local-rollback&deployId=${recorded.body.id}`)).body.runs;
    expect(runs).toHaveLength(1);
    expect(runs[0].params).toMatchObject({ VERSION: '4.0.0', PREVIOUS_VERSION: '2.0.0' });
    expect(versionsRunning()).toEqual(['2.0.0']);
    const v = await eventually<Verification>(async () => {
      const x = await server.deploys.verification(rb.id);
      return x?.outcome == null ? undefined : x;
    }, 60_000);
    expect(['pass', 'inconclusive'], `${v.reason} ${JSON.stringify(v.evidence)}`).toContain(v.outcome);
    await stopLoad();
  }, 120_000);

  it('audits every action run in a chain that verifies', async () => {
    const audit = await api<{ records: { kind: string; actor: string; resource: string; data: Record<string, unknown> }[] }>('GET', '/api/audit?kind=action.run&limit=100');
    const runs = audit.body.records;
    expect(runs.filter((x) => x.resource === 'action:local-rollback')).toHaveLength(2);
    expect(runs.find((x) => x.resource === 'action:local-deploy' && x.actor === 'admin')?.data).toMatchObject({ status: 'succeeded', params: { VERSION: '4.0.0' } });
    const rollouts = await api<{ records: { kind: string }[] }>('GET', '/api/audit?kind=rollout.&limit=100');
    expect(rollouts.body.records.map((x) => x.kind)).toEqual(expect.arrayContaining(['rollout.started', 'rollout.step', 'rollout.promoted', 'rollout.rolled_back']));
    const verified = await api<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.body.ok).toBe(true);
  });
});
