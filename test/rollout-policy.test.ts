import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionService, actionsMigrations, type Actor } from '../src/deploys/actions/index.js';
import {
  DeployEvents, type Deploy, type DeployApi, type DeployRecordInput, type VerdictOutcome, type Verification,
} from '../src/deploys/contract.js';
import { parseServicesYaml, RolloutManager, rolloutMigrations, type Rollout, type ServiceConfig } from '../src/deploys/rollout/index.js';
import { sendNotice, type Notification } from '../src/detect/index.js';
import { AuditChain, gatewayMigrations } from '../src/gateway/index.js';
import type { StateStore } from '../src/state/index.js';
import { openTestStateStore } from '../src/state/dialects.conformance.js';
import { eventually } from './helpers/server.js';

/**
 * The rollout's decisions (steps, inconclusive policy, rollback, confirm mode) with scripted
 * verdicts: a small in-memory DeployApi stands in for the statistics (the real one is exercised
 * end to end in rollout-e2e.test.ts). Deploy and rollback actions are real commands; runs, audit
 * and approvals are the real ActionService on SQLite.
 */

class ScriptedDeploys implements DeployApi {
  readonly events = new DeployEvents();
  readonly deploys = new Map<string, Deploy>();
  readonly verifications = new Map<string, Verification>();
  /** Verdicts to hand out per version, in order; 'pass' when the script runs out. */
  script: Record<string, VerdictOutcome[]> = {};
  verifyCalls: string[] = [];
  private lastStartMs = 0;
  /** Now, but strictly after the previous record (they order by start). */
  private nextStart(): string {
    this.lastStartMs = Math.max(Date.now(), this.lastStartMs + 1);
    return new Date(this.lastStartMs).toISOString();
  }

  async record(input: DeployRecordInput): Promise<Deploy> {
    const env = input.environment ?? 'production';
    const latest = (await this.list({ service: input.service, environment: env }))[0];
    const d: Deploy = {
      id: ulid(), service: input.service, version: input.version, environment: env,
      previousVersion: input.previousVersion !== undefined ? input.previousVersion : latest?.version ?? null,
      status: 'started', source: input.source ?? 'api', commit: input.commit ?? null, commitTime: input.commitTime ?? null, url: input.url ?? null,
      actor: input.actor ?? null, rollbackOf: input.rollbackOf ?? null, startedAt: this.nextStart(),
      finishedAt: null, decidedAt: null, verificationId: null,
    };
    this.deploys.set(d.id, d);
    this.events.emit('deploy.recorded', d);
    return d;
  }
  get(id: string): Promise<Deploy> {
    const d = this.deploys.get(id);
    if (d === undefined) return Promise.reject(new Error(`deploy ${id} not found`));
    return Promise.resolve({ ...d });
  }
  list(f: { service?: string; environment?: string; limit?: number } = {}): Promise<Deploy[]> {
    return Promise.resolve([...this.deploys.values()].filter((d) => (f.service === undefined || d.service === f.service) && (f.environment === undefined || d.environment === f.environment))
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt)).slice(0, f.limit ?? 100));
  }
  /** The same rule as DeployService.rollbackTarget (tested on SQLite in src/deploys/rollback-target.test.ts). */
  async rollbackTarget(bad: Pick<Deploy, 'id' | 'service' | 'environment' | 'version' | 'startedAt'>): Promise<string | null> {
    const healthy = (d: Deploy): boolean => d.status === 'passed' || (d.status === 'inconclusive' && d.finishedAt !== null && (d.source === 'rollout' || d.source === 'rollback'));
    const c = (await this.list({ service: bad.service, environment: bad.environment, limit: 10_000 }))
      .find((d) => d.id !== bad.id && d.version !== bad.version && d.source !== 'implicit' && d.startedAt <= bad.startedAt && healthy(d));
    return c?.version ?? null;
  }
  markFinished(id: string): Promise<Deploy> {
    const d = this.deploys.get(id)!;
    d.finishedAt = new Date().toISOString();
    return Promise.resolve({ ...d });
  }
  markRolledBack(id: string): Promise<Deploy> {
    const d = this.deploys.get(id)!;
    d.status = 'rolled_back';
    return Promise.resolve({ ...d });
  }
  verification(deployId: string): Promise<Verification | null> {
    return Promise.resolve(this.verifications.get(deployId) ?? null);
  }
  /** Decides `outcome` for a deploy now, as the verifier would. */
  decide(d: Deploy, outcome: VerdictOutcome): Verification {
    const v: Verification = { id: ulid(), deployId: d.id, baselineKind: 'canary', baselineVersion: d.previousVersion, startedAt: new Date().toISOString(),
      decidedAt: new Date().toISOString(), outcome, reason: `scripted ${outcome}`, evidence: [] };
    this.verifications.set(d.id, v);
    d.verificationId = v.id;
    d.status = outcome === 'pass' ? 'passed' : outcome === 'fail' ? 'failed' : 'inconclusive';
    this.events.emit('deploy.verdict', { deploy: { ...d }, verification: v, at: v.decidedAt! });
    return v;
  }
  async verify(deployId: string): Promise<Verification> {
    const d = this.deploys.get(deployId)!;
    this.verifyCalls.push(d.version);
    const outcome = this.script[d.version]?.shift() ?? 'pass';
    await new Promise((r) => setTimeout(r, 5));
    return this.decide(d, outcome);
  }
  waitForVerdict(deployId: string): Promise<Verification> {
    return Promise.resolve(this.verifications.get(deployId)!);
  }
}

const SERVICES = (failingDeploy: string) => `
services:
  - name: api
    steps: [10, 50, 100]
    deployAction: ship
    rollbackAction: revert
  - name: careful
    steps: [25, 100]
    deployAction: ship
    rollbackAction: revert
    onInconclusive: rollback
  - name: eager
    steps: [25, 100]
    deployAction: ship
    rollbackAction: revert
    onInconclusive: promote
  - name: gated
    deployAction: ship
    rollbackAction: revert
    rollback: confirm
  - name: fresh
    deployAction: ship
    rollbackAction: revert
  - name: unproven
    deployAction: ship
    rollbackAction: revert
  - name: broken
    steps: [50, 100]
    deployAction: ${failingDeploy}
    rollbackAction: revert
`;

const ACTIONS = `
actions:
  - name: ship
    kind: command
    params:
      SERVICE: { type: string, required: true }
      VERSION: { type: string, required: true }
      WEIGHT: { type: int, required: true }
    argv: [node, -e, "process.stdout.write(process.argv.slice(1).join(' '))", "\${SERVICE}", "\${VERSION}", "\${WEIGHT}"]
  - name: ship-fails
    kind: command
    params:
      VERSION: { type: string, required: true }
    argv: [node, -e, "console.error('image not found'); process.exit(1)"]
  - name: revert
    kind: command
    params:
      SERVICE: { type: string, required: true }
      VERSION: { type: string, required: true }
      PREVIOUS_VERSION: { type: string, required: true }
    argv: [node, -e, "process.stdout.write('reverted ' + process.argv.slice(1).join(' '))", "\${SERVICE}", "\${VERSION}", "\${PREVIOUS_VERSION}"]
`;

const alice: Actor = { userId: 'u-alice', userName: 'alice', role: 'admin' };
let dir: string;
let state: StateStore;
let audit: AuditChain;
let actions: ActionService;
let deploys: ScriptedDeploys;
let rollouts: RolloutManager;
let services: ServiceConfig[];
let receiver: Server;
const received: Notification[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-rollout-policy-'));
  mkdirSync(join(dir, 'actions'));
  writeFileSync(join(dir, 'actions', 'ops.yaml'), ACTIONS);
  services = parseServicesYaml(SERVICES('ship-fails'));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: { ...gatewayMigrations, ...actionsMigrations, ...rolloutMigrations } });
  const log = pino({ level: 'silent' });
  audit = new AuditChain(state.db as never, log);
  await audit.open();
  actions = new ActionService({ db: state.db, actionsDir: join(dir, 'actions'), audit, log });
  deploys = new ScriptedDeploys();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { received.push(JSON.parse(body) as Notification); res.end('ok'); });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  rollouts = new RolloutManager({
    deploys, actions, services: () => services, audit, log, db: state.db,
    notify: async (n) => { await sendNotice([{ name: 'ops', type: 'webhook', url }], { id: n.rolloutId, kind: n.kind, title: n.title, text: n.text, labels: { service: n.service, version: n.version }, link: '' }); },
  });
  await rollouts.open();
  rollouts.attach();
});

afterAll(async () => {
  await rollouts.close();
  await new Promise((resolve) => receiver.close(resolve));
  await actions.close();
  await audit.close();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Seeds the service's current version (as if deployed before). */
async function live(service: string, version: string): Promise<Deploy> {
  const d = await deploys.record({ service, version, source: 'api', previousVersion: null });
  deploys.decide(d, 'pass');
  return d;
}

async function rollout(service: string, version: string) {
  const r = await rollouts.start({ service, version }, alice);
  return rollouts.wait(r.id);
}

describe('rollout decisions', () => {
  it('runs the deploy action per step with WEIGHT and promotes when every step passes', async () => {
    await live('api', '1.0');
    const r = await rollout('api', '1.1');
    expect(r.status).toBe('promoted');
    expect(r.previousVersion).toBe('1.0');
    const runs = (await actions.listRuns({ deployId: r.deployId })).reverse();
    expect(runs.map((x) => x.output)).toEqual(['api 1.1 10', 'api 1.1 50', 'api 1.1 100']);
    expect((await deploys.get(r.deployId)).finishedAt).not.toBeNull();
  });

  it('on fail: stops at that step, runs the rollback action with the previous version, records and verifies the rollback', async () => {
    deploys.script['1.2'] = ['pass', 'fail'];
    deploys.verifyCalls = [];
    const r = await rollout('api', '1.2');
    expect(r.status).toBe('rolled_back');
    expect(r.reason).toBe('verification fail at 50 %: scripted fail');
    expect(r.steps.map((s) => s.verdicts.map((v) => v.outcome))).toEqual([['pass'], ['fail'], []]);
    const run = await actions.get(r.rollbackRunId!);
    expect(run).toMatchObject({ action: 'revert', status: 'succeeded', params: { SERVICE: 'api', VERSION: '1.2', PREVIOUS_VERSION: '1.1' }, output: 'reverted api 1.2 1.1' });
    const rb = await deploys.get(r.rollbackDeployId!);
    expect(rb).toMatchObject({ source: 'rollback', version: '1.1', previousVersion: '1.2', rollbackOf: r.deployId, status: 'passed' });
    expect((await deploys.get(r.deployId)).status).toBe('rolled_back');
    expect(deploys.verifyCalls).toEqual(['1.2', '1.2', '1.1']);
    expect(r.rollbackVerdict).toBe('pass');
  });

  it('inconclusive, hold (default): verifies again at the same weight; a pass goes on', async () => {
    deploys.script['1.3'] = ['inconclusive', 'pass', 'inconclusive', 'pass', 'pass'];
    const r = await rollout('api', '1.3');
    expect(r.status).toBe('promoted');
    expect(r.promotedWithoutEvidence).toBeUndefined();
    expect(r.steps.map((s) => s.verdicts.map((v) => v.outcome))).toEqual([['inconclusive', 'pass'], ['inconclusive', 'pass'], ['pass']]);
  });

  it('low traffic (inconclusive through every hold) is held at that weight, not promoted, and the receivers are told', async () => {
    received.length = 0;
    deploys.script['1.4'] = ['pass', 'inconclusive', 'inconclusive', 'inconclusive'];
    const r = await rollout('api', '1.4');
    expect(r.status).toBe('held');
    expect(r.reason).toBe('held at 50 %: verification inconclusive 3 time(s) (scripted inconclusive); not promoted without evidence');
    expect(r.steps.map((s) => s.verdicts.map((v) => v.outcome))).toEqual([['pass'], ['inconclusive', 'inconclusive', 'inconclusive'], []]);
    expect((await deploys.get(r.deployId)).finishedAt).toBeNull();
    const runs = (await actions.listRuns({ deployId: r.deployId })).reverse();
    expect(runs.map((x) => x.output)).toEqual(['api 1.4 10', 'api 1.4 50']);
    // The notification, through the real notifier to a webhook receiver.
    const got = await eventually(() => received[0]);
    expect(got.alerts[0]).toMatchObject({ rule: { id: 'rollout.held', type: 'notice', name: 'rollout of api 1.4 held at 50 %' }, series: { service: 'api', version: '1.4' } });
    const trail = await audit.query({ kind: 'rollout.held', limit: 10 });
    expect(trail.map((x) => x.data.rollout)).toContain(r.id);
  });

  it('inconclusive with onInconclusive rollback rolls back; with promote goes on at once', async () => {
    await live('careful', '1');
    deploys.script['2'] = ['inconclusive'];
    const c = await rollout('careful', '2');
    expect(c.status).toBe('rolled_back');
    expect(c.reason).toMatch(/^verification inconclusive at 25 %/);
    await live('eager', '1');
    deploys.script['2'] = ['inconclusive', 'inconclusive'];
    const e = await rollout('eager', '2');
    expect(e.status).toBe('promoted');
    expect(e.steps.map((s) => s.verdicts.length)).toEqual([1, 1]);
    // The service chose this: the rollout says it went on without evidence.
    expect(e.promotedWithoutEvidence).toBe(true);
    expect(e.steps.map((s) => s.promotedWithoutEvidence)).toEqual([true, true]);
  });

  it('a deploy action that fails is recorded failed and the rollout rolls back', async () => {
    await live('broken', '1');
    const r = await rollout('broken', '2');
    expect(r.status).toBe('rolled_back');
    expect(r.reason).toBe('deploy action ship-fails failed at 50 %: exited with code 1');
    const runs = await actions.listRuns({ deployId: r.deployId, action: 'ship-fails' });
    expect(runs[0]).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(runs[0].output).toContain('image not found');
  });

  it('shares traffic with the recorded serving version, but rolls back only to one seen serving healthily', async () => {
    const served = await deploys.record({ service: 'unproven', version: '1', source: 'cli' });
    deploys.decide(served, 'inconclusive');
    const evil = await deploys.record({ service: 'unproven', version: 'evil', source: 'implicit' });
    deploys.decide(evil, 'pass');
    deploys.script.u2 = ['fail'];
    const r = await rollout('unproven', 'u2');
    expect(r).toMatchObject({ previousVersion: '1', rollbackTo: null, status: 'failed' });
    expect(r.reason).toBe('verification fail at 10 %: scripted fail; nothing to roll back to (1 was never seen serving healthily)');
    expect((await actions.listRuns({ deployId: r.deployId })).map((x) => x.action)).toEqual(['ship']);
  });

  it('a first deploy goes straight to 100 %, and refuses a second rollout of the same service at once', async () => {
    const first = await rollouts.start({ service: 'fresh', version: 'x' }, alice);
    await expect(rollouts.start({ service: 'fresh', version: 'y' }, alice)).rejects.toThrow(/a rollout of fresh is running/);
    const done = await rollouts.wait(first.id);
    expect(done).toMatchObject({ status: 'promoted', previousVersion: null });
    expect(done.steps.map((s) => s.weight)).toEqual([100]);
    await expect(rollouts.start({ service: 'nope', version: '1' }, alice)).rejects.toThrow('service nope has no deploy configuration');
  });
});

describe('service config', () => {
  it('names file, line and field of a mistake, and defaults local services to the built-in actions', () => {
    expect(() => parseServicesYaml('services:\n  - name: shop\n    steps: [50, 10]\n')).toThrow('services.yaml:3: services.0.steps: steps must rise and end at 100 (e.g. [10, 50, 100])');
    expect(() => parseServicesYaml('services:\n  - name: shop\n    rollbak: auto\n')).toThrow(/services\.yaml:2: services\.0: Unrecognized key: "rollbak"/);
    const [local] = parseServicesYaml('services:\n  - name: shop\n    port: 0\n    command: [node, shop.js]\n');
    expect(local).toMatchObject({ deployAction: 'local-deploy', rollbackAction: 'local-rollback', steps: [10, 50, 100], rollback: 'auto', onInconclusive: 'hold', maxHolds: 2 });
    const [remote] = parseServicesYaml('services:\n  - name: api\n    deployAction: ship\n');
    expect(remote).toMatchObject({ deployAction: 'ship', rollbackAction: null });
  });
});

describe('deploys made elsewhere', () => {
  it('rolls back a failed CI deploy automatically (rollback: auto)', async () => {
    const ci = await deploys.record({ service: 'api', version: '9.0', source: 'cli' });
    // The latest version seen serving healthily (not necessarily the record's previousVersion).
    const target = await deploys.rollbackTarget(ci);
    expect(target).not.toBeNull();
    deploys.decide(ci, 'fail');
    const rb = await eventually(() => [...deploys.deploys.values()].find((d) => d.rollbackOf === ci.id));
    expect(rb).toMatchObject({ source: 'rollback', version: target });
    const runs = await actions.listRuns({ deployId: ci.id });
    expect(runs[0]).toMatchObject({ action: 'revert', status: 'succeeded', actor: 'tightloop', params: { VERSION: '9.0', PREVIOUS_VERSION: target } });
    await eventually(async () => ((await deploys.get(ci.id)).status === 'rolled_back' ? true : undefined));
  });

  it('waits for an admin to approve the rollback (rollback: confirm)', async () => {
    await live('gated', '1');
    const ci = await deploys.record({ service: 'gated', version: '2', source: 'api' });
    deploys.decide(ci, 'fail');
    const pending = await eventually(async () => (await actions.listRuns({ deployId: ci.id, status: 'pending_approval' }))[0]);
    expect(pending.params).toMatchObject({ SERVICE: 'gated', VERSION: '2', PREVIOUS_VERSION: '1' });
    expect([...deploys.deploys.values()].some((d) => d.rollbackOf === ci.id)).toBe(false);
    await actions.approve(alice, pending.id, 'confirmed');
    const rb = await eventually(() => [...deploys.deploys.values()].find((d) => d.rollbackOf === ci.id));
    expect(rb.version).toBe('1');
    // A failing rollout deploy or rollback is not rolled back again by the listener.
    deploys.decide(rb, 'fail');
    await new Promise((r) => setTimeout(r, 100));
    expect((await actions.listRuns({ deployId: rb.id })).length).toBe(0);
  });

  it('records the rollback when an admin runs the rollback action by hand for a failed deploy', async () => {
    const ci = await deploys.record({ service: 'gated', version: '3', source: 'api' });
    deploys.decide(ci, 'fail');
    const pending = await eventually(async () => (await actions.listRuns({ deployId: ci.id, status: 'pending_approval' }))[0]);
    await actions.deny(alice, pending.id, 'I will do it myself');
    await new Promise((r) => setTimeout(r, 50));
    expect([...deploys.deploys.values()].some((d) => d.rollbackOf === ci.id)).toBe(false);
    await actions.start('revert', { SERVICE: 'gated', VERSION: '3', PREVIOUS_VERSION: ci.previousVersion }, alice, { deployId: ci.id });
    const rb = await eventually(() => [...deploys.deploys.values()].find((d) => d.rollbackOf === ci.id));
    expect(rb).toMatchObject({ source: 'rollback', version: ci.previousVersion, previousVersion: '3' });
    await eventually(async () => ((await deploys.get(ci.id)).status === 'rolled_back' ? true : undefined));
  });

  it('never acts on an implicit deploy (a version known only from telemetry), whatever its verdict', async () => {
    await live('api', '6.0');
    const implicit = await deploys.record({ service: 'api', version: '7.0', source: 'implicit', actor: 'tightloop' });
    expect(implicit.previousVersion).toBe('6.0');
    deploys.decide(implicit, 'fail');
    await new Promise((r) => setTimeout(r, 150));
    expect(await actions.listRuns({ deployId: implicit.id })).toEqual([]);
    expect([...deploys.deploys.values()].some((d) => d.rollbackOf === implicit.id)).toBe(false);
    expect((await deploys.get(implicit.id)).status).toBe('failed');
  });

  it('rolls back only to a version tightloop saw serving healthily, never to one a record or telemetry named', async () => {
    // Healthy-looking telemetry for 'evil' (an implicit deploy that even passed), then a CI deploy
    // whose record names 'evil' as its previous version, failing.
    const healthy = await deploys.rollbackTarget({ id: '', service: 'api', environment: 'production', version: '10.0', startedAt: new Date(Date.now() + 1e6).toISOString() });
    expect(healthy).not.toBeNull();
    const evil = await deploys.record({ service: 'api', version: 'evil', source: 'implicit', actor: 'tightloop' });
    deploys.decide(evil, 'pass');
    const ci = await deploys.record({ service: 'api', version: '10.0', source: 'api', previousVersion: 'evil', actor: 'mallory' });
    deploys.decide(ci, 'fail');
    const rb = await eventually(() => [...deploys.deploys.values()].find((d) => d.rollbackOf === ci.id));
    expect(rb.version).toBe(healthy);
    const runs = await actions.listRuns({ deployId: ci.id });
    expect(runs.map((x) => x.params.PREVIOUS_VERSION)).toEqual([healthy]);
    // A rollback run by hand to some other version is not taken for the deploy's rollback.
    const ci2 = await deploys.record({ service: 'gated', version: '11', source: 'api' });
    deploys.decide(ci2, 'fail');
    const pending = await eventually(async () => (await actions.listRuns({ deployId: ci2.id, status: 'pending_approval' }))[0]);
    expect(pending.params.PREVIOUS_VERSION).toBe('1');
    await actions.deny(alice, pending.id);
    const byHand = await actions.start('revert', { SERVICE: 'gated', VERSION: '11', PREVIOUS_VERSION: 'evil' }, alice, { deployId: ci2.id });
    expect((await byHand.done).status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 150));
    expect([...deploys.deploys.values()].some((d) => d.rollbackOf === ci2.id)).toBe(false);
  });

  /** Stores a rollout as a process that stopped mid-way left it (`running`). */
  async function interruptedRow(r: Rollout): Promise<Rollout> {
    await state.db.insertInto('rollout_rollouts' as never).values({
      id: r.id, deploy_id: r.deployId, service: r.service, version: r.version, status: 'running',
      started_at: r.startedAt, updated_at: new Date().toISOString(), data: JSON.stringify(r),
    }).execute();
    return r;
  }

  it('keeps rollouts in the state store; one of a service no longer configured, interrupted by a restart, comes back aborted', async () => {
    const before = rollouts.list();
    const gone = await interruptedRow({ ...before[0], id: ulid(), service: 'gone', status: 'running', finishedAt: null, reason: null });
    const again = new RolloutManager({ deploys, actions, services: () => services, audit, log: pino({ level: 'silent' }), db: state.db });
    await again.open();
    const after = again.list();
    for (const r of before) expect(after.find((x) => x.id === r.id)).toMatchObject({ status: r.status, steps: r.steps, rollbackDeployId: r.rollbackDeployId });
    expect(again.get(gone.id)).toMatchObject({ status: 'running' });
    expect(await again.resumeRollouts()).toBe(0);
    expect(again.get(gone.id)).toMatchObject({ status: 'aborted', reason: 'tightloop restarted during the rollout; its service or deploy is gone' });
    await again.close();
  });

  it('resumes a rollout a restart interrupted from its last recorded step; rolls back one whose verification had failed (docs/cluster.md)', async () => {
    const base = { previousVersion: '6.0.0', environment: 'production', actor: 'alice', rollbackDeployId: null, rollbackRunId: null, rollbackVerdict: null,
      reason: null, startedAt: new Date().toISOString(), finishedAt: null, status: 'running' as const };
    // `api` (steps 10, 50, 100): the 10 % step passed; the process stopped during the 50 % step.
    const d1 = await deploys.record({ service: 'api', version: '7.0.0', source: 'rollout', previousVersion: '6.0.0', verify: false });
    const onward = await interruptedRow({ ...base, id: ulid(), deployId: d1.id, service: 'api', version: '7.0.0', rollbackTo: '6.0.0',
      steps: [{ weight: 10, runId: 'run-10', verdicts: [{ outcome: 'pass', verificationId: 'v1', reason: null, at: base.startedAt }] },
        { weight: 50, runId: null, verdicts: [] }, { weight: 100, runId: null, verdicts: [] }] });
    // `careful` (steps 25, 100): its 25 % verification failed, and the process stopped before the rollback.
    const d2 = await deploys.record({ service: 'careful', version: '8.0.0', source: 'rollout', previousVersion: '6.0.0', verify: false });
    deploys.decide(d2, 'fail');
    const back = await interruptedRow({ ...base, id: ulid(), deployId: d2.id, service: 'careful', version: '8.0.0', rollbackTo: 'restored-6',
      steps: [{ weight: 25, runId: 'run-25', verdicts: [{ outcome: 'fail', verificationId: 'v2', reason: 'errors up', at: base.startedAt }] },
        { weight: 100, runId: null, verdicts: [] }] });
    deploys.verifyCalls = [];

    const again = new RolloutManager({ deploys, actions, services: () => services, audit, log: pino({ level: 'silent' }), db: state.db });
    await again.open();
    expect(await again.resumeRollouts()).toBe(2);
    const [a, b] = await Promise.all([again.wait(onward.id), again.wait(back.id)]);

    // The 50 % step ran again and both remaining steps were verified; the passed 10 % step was not repeated.
    expect(a).toMatchObject({ status: 'promoted', resumed: 1 });
    expect(a.steps.map((x) => x.verdicts.map((v) => v.outcome))).toEqual([['pass'], ['pass'], ['pass']]);
    expect((await actions.listRuns({ deployId: d1.id })).map((x) => x.params.WEIGHT).reverse()).toEqual([50, 100]);
    // Verified: 7.0.0 at 50 and 100 %, and the rollback of 8.0.0 (never 8.0.0 again).
    expect([...deploys.verifyCalls].sort()).toEqual(['7.0.0', '7.0.0', 'restored-6']);
    expect((await deploys.get(d1.id)).finishedAt).not.toBeNull();
    // The failed one was rolled back to its recorded target, nothing deployed further.
    expect(b).toMatchObject({ status: 'rolled_back', resumed: 1 });
    expect((await actions.listRuns({ deployId: d2.id })).map((x) => [x.action, x.params.PREVIOUS_VERSION])).toEqual([['revert', 'restored-6']]);
    expect((await deploys.get(d2.id)).status).toBe('rolled_back');
    // What the state store says (the next process reads it).
    const rows = await state.db.selectFrom('rollout_rollouts' as never).select(['id' as never, 'status' as never]).where('id' as never, 'in', [onward.id, back.id] as never).execute();
    expect(new Map((rows as Array<{ id: string; status: string }>).map((x) => [x.id, x.status]))).toEqual(new Map([[onward.id, 'promoted'], [back.id, 'rolled_back']]));
    expect((await audit.query({ kind: 'rollout.resumed', limit: 10 })).length).toBe(2);
    await again.close();
  });

  it('resumes a rollout stopped during a step\'s verification without running that step\'s deploy action again', async () => {
    // `api` (steps 10, 50, 100): the 10 % step passed; the 50 % step's deploy action succeeded and
    // was recorded, and the process stopped while verifying it (docs/cluster.md).
    const d = await deploys.record({ service: 'api', version: '7.1.0', source: 'rollout', previousVersion: '6.0.0', verify: false });
    const set50 = await actions.start('ship', { SERVICE: 'api', VERSION: '7.1.0', WEIGHT: 50 }, alice, { deployId: d.id });
    expect((await set50.done).status).toBe('succeeded');
    const startedAt = new Date().toISOString();
    const r = await interruptedRow({
      id: ulid(), deployId: d.id, service: 'api', version: '7.1.0', previousVersion: '6.0.0', rollbackTo: '6.0.0', environment: 'production', actor: 'alice',
      status: 'running', rollbackDeployId: null, rollbackRunId: null, rollbackVerdict: null, reason: null, startedAt, finishedAt: null,
      steps: [{ weight: 10, runId: 'run-10', verdicts: [{ outcome: 'pass', verificationId: 'v1', reason: null, at: startedAt }] },
        { weight: 50, runId: set50.run.id, verdicts: [] }, { weight: 100, runId: null, verdicts: [] }],
    });
    deploys.verifyCalls = [];
    const again = new RolloutManager({ deploys, actions, services: () => services, audit, log: pino({ level: 'silent' }), db: state.db });
    await again.open();
    expect(await again.resumeRollouts()).toBe(1);
    const done = await again.wait(r.id);
    expect(done).toMatchObject({ status: 'promoted', resumed: 1 });
    // The 50 % step was verified (not deployed again), then the 100 % step deployed and verified.
    expect(done.steps.map((x) => [x.weight, x.runId === null ? null : 'run', x.verdicts.map((v) => v.outcome)])).toEqual([[10, 'run', ['pass']], [50, 'run', ['pass']], [100, 'run', ['pass']]]);
    expect(done.steps[1].runId).toBe(set50.run.id);
    expect((await actions.listRuns({ deployId: d.id })).map((x) => x.params.WEIGHT).reverse()).toEqual([50, 100]);
    expect(deploys.verifyCalls).toEqual(['7.1.0', '7.1.0']);
    await again.close();
  });

  it('writes rollout steps and outcomes to the audit chain, which verifies', async () => {
    const kinds = (await audit.query({ kind: 'rollout.', limit: 1000 })).map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['rollout.started', 'rollout.step', 'rollout.promoted', 'rollout.rolled_back']));
    expect((await audit.query({ kind: 'deploy.rolled_back', limit: 100 })).length).toBeGreaterThanOrEqual(4);
    expect((await audit.verify()).ok).toBe(true);
  });
});
