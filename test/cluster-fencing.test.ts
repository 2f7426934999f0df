import { createServer, type Server } from 'node:http';
import { sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { saveAlert, type Alert } from '../src/detect/alert.js';
import { Dispatcher } from '../src/detect/dispatcher.js';
import { ruleSpecSchema, type Rule } from '../src/detect/rules.js';
import { SilenceBook } from '../src/detect/silences.js';
import type { DetectDatabase } from '../src/detect/storage.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { ClusterNode, NODE_ROLES } from '../src/state/cluster.js';
import { openStateStore } from '../src/state/index.js';
import { createTestDatabase } from '../src/state/pg-cluster.conformance.js';
import { IncidentStore } from '../src/incidents/store.js';
import { DeployService } from '../src/deploys/service.js';
import { ActionService, INTERRUPTED, SYSTEM_ACTOR } from '../src/deploys/actions/index.js';
import { parseServicesYaml, RolloutManager } from '../src/deploys/rollout/index.js';
import { eventually } from './helpers/server.js';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { IncidentsDatabase } from '../src/incidents/storage.js';

/**
 * Fencing of singleton work (docs/cluster.md, "Fencing"): a node that lost the `active` lease
 * to another node — while it still believes it holds it (a pause, a slow clock) — must not
 * notify. The claim of a notification runs in a transaction that checks the lease row (holder,
 * fencing token, expiry on PostgreSQL's clock). Real PostgreSQL (the run's test server).
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;

/** Another node takes the lease over (as a takeover after expiry does: new holder, token + 1); the node has not noticed. */
async function takeOver<DB>(db: Kysely<DB>): Promise<void> {
  await sql`update cluster_leases set holder = 'another-node', token = token + 1 where name = 'active'`.execute(db);
}

/**
 * An actions folder: `gated` runs a command that waits until the file `go-<N>` exists in `dir`,
 * then writes `ran-<N>` (so a test decides when a run ends); `ship` is the same with a deploy's
 * parameters (SERVICE, VERSION, WEIGHT: the file is `go-<WEIGHT>`).
 */
function gatedActions(dir: string): string {
  mkdirSync(join(dir, 'actions'));
  const wait = (n: string) => [process.execPath, '-e',
    "const fs=require('node:fs');const [g,r]=process.argv.slice(1);const t=setInterval(()=>{if(fs.existsSync(g)){clearInterval(t);fs.writeFileSync(r,'ran')}},20)",
    `${join(dir, 'go-')}\${${n}}`, `${join(dir, 'ran-')}\${${n}}`].map((x) => JSON.stringify(x)).join(', ');
  writeFileSync(join(dir, 'actions', 'gated.yaml'), `actions:
  - name: gated
    kind: command
    params:
      N: { type: string }
    argv: [${wait('N')}]
  - name: ship
    kind: command
    params:
      SERVICE: { type: string }
      VERSION: { type: string }
      WEIGHT: { type: int }
    argv: [${wait('WEIGHT')}]
`);
  return join(dir, 'actions');
}

function alert(id: string): Alert {
  const now = Date.now();
  return { id, ruleId: 'r1', ruleName: 'errors', series: { service: 'shop' }, labels: { alertname: 'errors', service: 'shop' }, value: 1, values: {},
    state: 'firing', activeAt: now - 1_000, firedAt: now - 1_000, resolvedAt: null, lastBreachAt: now };
}

/** A fresh state database and a node holding its `active` lease (heartbeat 60 s, lease 20 s). */
async function holderOnFreshDatabase(): Promise<{ store: Awaited<ReturnType<typeof openStateStore>>; node: ClusterNode }> {
  const d = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  cleanups.push(() => d.drop());
  const store = await openStateStore({ dialect: 'postgres', connectionString: d.connectionString, migrate: false });
  cleanups.push(() => store.close());
  const node = new ClusterNode({ db: store.db, roles: NODE_ROLES, timing: { heartbeatMs: 60_000, leaseMs: 20_000, marginMs: 1_000 } });
  await node.join();
  cleanups.push(() => node.leave());
  await node.want('active', { onAcquired: () => undefined, onLost: () => undefined });
  return { store, node };
}

describePg('fencing of singleton writes', () => {
  it('a node whose lease another node took (while it still believes it holds it) sends no notification and logs none', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    expect(node.holds('active')).toBe(true);

    const got: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => { got.push(body); res.end('ok'); });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => receiver.close(() => r())));
    const address = receiver.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/hook`;

    const db = store.db as unknown as Kysely<DetectDatabase>;
    const errors: unknown[] = [];
    const dispatcher = new Dispatcher({
      db, silences: new SilenceBook(db, Date.now), receivers: () => [{ name: 'hook', type: 'webhook', url }], inhibitRules: () => [], firing: () => [],
      describe: (a, rule) => ({ id: a.id, rule: { id: rule.id, name: rule.spec.name, type: rule.spec.type }, series: a.series, labels: a.labels, value: a.value, values: a.values,
        threshold: {}, startsAt: new Date(a.firedAt ?? 0).toISOString(), endsAt: null, links: { console: '', traces: '' } }),
      nowMs: Date.now, send: { attempts: 1 }, onError: (err) => errors.push(err),
      fence: (tx) => node.assertHolds('active', tx),
    });
    const rule: Rule = { id: 'r1', source: 'api', spec: ruleSpecSchema.parse({ name: 'errors', type: 'threshold', signal: 'error_rate', select: { service: 'shop' }, threshold: 0.5, window: '1m', group_wait: '0s' }) };

    // While it holds the lease: notified, logged.
    dispatcher.onEdge(alert('a1'), rule);
    await dispatcher.drain();
    expect(got).toHaveLength(1);
    expect(errors).toEqual([]);

    // Another node takes the lease over (as a takeover after expiry does: new holder, token + 1).
    await sql`update cluster_leases set holder = 'another-node', token = token + 1 where name = 'active'`.execute(store.db);
    expect(node.holds('active')).toBe(true); // it has not noticed
    dispatcher.onEdge(alert('a2'), { ...rule, id: 'r2' });
    await dispatcher.drain();
    expect(got).toHaveLength(1);
    expect(errors).toEqual([expect.objectContaining({ code: 'lease_lost' })]);
    const logged = await sql<{ alert_id: string }>`select alert_id from detect_notifications order by alert_id`.execute(store.db);
    expect(logged.rows.map((r) => r.alert_id)).toEqual(['a1']);
  });

  it('alert state and incident writes of a node that lost the lease are refused (lease_lost); the new holder\'s state stays', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    const fence = <DB>(tx: Kysely<DB>) => node.assertHolds('active', tx);
    const db = store.db as unknown as Kysely<DetectDatabase>;
    const incidents = new IncidentStore(store.db as unknown as Kysely<IncidentsDatabase>, fence);

    // While it holds the lease: an alert fires, an incident is written.
    const fired = alert('a1');
    await saveAlert(db, fired, true, Date.now(), fence);
    await incidents.transaction((tx) => incidents.event(tx, 'inc-1', new Date().toISOString(), 'note', 'x', null, { note: 'held' }));

    // The lease passes to another node, which resolves the alert; this node has not noticed.
    await sql`update cluster_leases set holder = 'another-node', token = token + 1 where name = 'active'`.execute(store.db);
    const resolvedAt = Date.now();
    await saveAlert(db, { ...fired, state: 'resolved', resolvedAt }, true, resolvedAt);
    expect(node.holds('active')).toBe(true);

    // The old holder's stale transition (firing again) and its incident write are refused.
    await expect(saveAlert(db, { ...fired, value: 2 }, true, Date.now(), fence)).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(incidents.transaction((tx) => incidents.event(tx, 'inc-1', new Date().toISOString(), 'note', 'x', null, { note: 'stale' })))
      .rejects.toMatchObject({ code: 'lease_lost' });
    const row = await sql<{ state: string }>`select state from detect_alerts where id = 'a1'`.execute(store.db);
    expect(row.rows).toEqual([{ state: 'resolved' }]);
    const history = await sql<{ state: string }>`select state from detect_alert_history where alert_id = 'a1' order by at, id`.execute(store.db);
    expect(history.rows.map((r) => r.state)).toEqual(['firing', 'resolved']);
    const notes = await sql<{ data: string }>`select data from incident_events where incident_id = 'inc-1'`.execute(store.db);
    expect(notes.rows.map((r) => JSON.parse(r.data) as { note: string }).map((x) => x.note)).toEqual(['held']);
  });

  it('deploy verdicts, verification starts and rollback marks of a node that lost the lease are refused (lease_lost)', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    let now = Date.now();
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, nowMs: () => now,
      fence: (tx) => node.assertHolds('active', tx) });
    await deploys.start();
    cleanups.push(() => deploys.stop());
    const verdicts: string[] = [];
    deploys.events.on('deploy.verdict', (e) => verdicts.push(e.verification.outcome ?? ''));

    // While it holds the lease: recorded and verifying.
    const bad = await deploys.record({ service: 'checkout', version: '2.0.0', environment: 'prod' });
    const other = await deploys.record({ service: 'checkout', version: '1.0.0', environment: 'prod', verify: false });
    expect((await deploys.get(bad.id)).status).toBe('verifying');

    await sql`update cluster_leases set holder = 'another-node', token = token + 1 where name = 'active'`.execute(store.db);
    // Its verification runs out (an inconclusive verdict would be written): refused, no event.
    now += 3_600_000;
    deploys.tick();
    await new Promise((r) => setTimeout(r, 500));
    expect(verdicts).toEqual([]);
    const v = await sql<{ outcome: string | null }>`select outcome from deploy_verifications where deploy_id = ${bad.id}`.execute(store.db);
    expect(v.rows).toEqual([{ outcome: null }]);
    await expect(deploys.startVerification(await deploys.get(other.id), 60)).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(deploys.markRolledBack(bad.id, other.id)).rejects.toMatchObject({ code: 'lease_lost' });
    expect((await deploys.get(bad.id)).status).toBe('verifying');
    expect((await deploys.get(other.id)).status).toBe('started');
  });

  it('a node that lost the lease starts no action run (a rollback): lease_lost, no run stored, nothing executed', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-fence-actions-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    mkdirSync(join(dir, 'actions'));
    writeFileSync(join(dir, 'actions', 'rollback.yaml'), `kind: command
params:
  N: { type: string }
argv: [${JSON.stringify(process.execPath)}, -e, "require('node:fs').writeFileSync(process.argv[1], 'ran')", ${JSON.stringify(`${join(dir, 'ran-')}\${N}`)}]
`);
    const actions = new ActionService({ db: store.db, actionsDir: join(dir, 'actions'), audit: { append: () => undefined }, log: pino({ level: 'silent' }),
      fence: (tx) => node.assertHolds('active', tx) });
    cleanups.push(() => actions.close());

    const held = await actions.start('rollback', { N: '1' }, SYSTEM_ACTOR);
    expect((await held.done).status).toBe('succeeded');
    expect(existsSync(join(dir, 'ran-1'))).toBe(true);

    await sql`update cluster_leases set holder = 'another-node', token = token + 1 where name = 'active'`.execute(store.db);
    await expect(actions.start('rollback', { N: '2' }, SYSTEM_ACTOR)).rejects.toMatchObject({ code: 'lease_lost' });
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(dir, 'ran-2'))).toBe(false);
    expect((await actions.listRuns()).map((r) => r.params.N)).toEqual(['1']);
  });

  it('deploy records and finish marks of a node that lost the lease are refused (lease_lost); nothing is written', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false,
      fence: (tx) => node.assertHolds('active', tx) });
    await deploys.start();
    cleanups.push(() => deploys.stop());
    const recorded: string[] = [];
    deploys.events.on('deploy.recorded', (d) => recorded.push(d.version));

    const held = await deploys.record({ service: 'checkout', version: '1.0.0', environment: 'prod', verify: false });
    await takeOver(store.db);
    await expect(deploys.record({ service: 'checkout', version: '2.0.0', environment: 'prod', verify: false })).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(deploys.markFinished(held.id)).rejects.toMatchObject({ code: 'lease_lost' });
    const rows = await sql<{ version: string; finished_at: string | null }>`select version, finished_at from deploys order by version`.execute(store.db);
    expect(rows.rows).toEqual([{ version: '1.0.0', finished_at: null }]);
    expect(recorded).toEqual(['1.0.0']);
  });

  it('the outcome of an action run started before the lease passed is not stored by the old holder (lease_lost); the new holder\'s mark stays', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-fence-outcome-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const actions = new ActionService({ db: store.db, actionsDir: gatedActions(dir), audit: { append: () => undefined }, log: pino({ level: 'silent' }),
      fence: (tx) => node.assertHolds('active', tx) });
    cleanups.push(() => actions.close());
    const finished: string[] = [];
    actions.events.on('action.finished', (r) => finished.push(r.id));
    const status = async (id: string) => (await sql<{ status: string; error: string | null }>`select status, error from actions_runs where id = ${id}`.execute(store.db)).rows[0];
    const started = async (id: string) => (await sql<{ started_at: string | null }>`select started_at from actions_runs where id = ${id}`.execute(store.db)).rows[0]?.started_at ?? null;

    // While it holds the lease, a run that another process marked meanwhile keeps that mark.
    const early = await actions.start('gated', { N: 'early' }, SYSTEM_ACTOR);
    await eventually(async () => (await started(early.run.id)) ?? undefined);
    await sql`update actions_runs set status = 'failed', error = ${INTERRUPTED} where id = ${early.run.id}`.execute(store.db);
    writeFileSync(join(dir, 'go-early'), '');
    await expect(early.done).rejects.toMatchObject({ code: 'conflict' });
    expect(await status(early.run.id)).toEqual({ status: 'failed', error: INTERRUPTED });

    // Two runs start while it holds the lease; then the lease passes.
    const a = await actions.start('gated', { N: 'a' }, SYSTEM_ACTOR);
    const b = await actions.start('gated', { N: 'b' }, SYSTEM_ACTOR);
    await eventually(async () => (await started(a.run.id)) ?? undefined);
    await eventually(async () => (await started(b.run.id)) ?? undefined);
    await takeOver(store.db);
    // The new holder marks the run it finds running as interrupted (its open()); run b it has not looked at yet.
    await sql`update actions_runs set status = 'failed', error = ${INTERRUPTED} where id = ${a.run.id}`.execute(store.db);

    // Both commands end now, on the old holder: their "succeeded" is refused.
    writeFileSync(join(dir, 'go-a'), '');
    writeFileSync(join(dir, 'go-b'), '');
    await expect(a.done).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(b.done).rejects.toMatchObject({ code: 'lease_lost' });
    expect([existsSync(join(dir, 'ran-a')), existsSync(join(dir, 'ran-b'))]).toEqual([true, true]);
    expect(await status(a.run.id)).toEqual({ status: 'failed', error: INTERRUPTED });
    expect(await status(b.run.id)).toEqual({ status: 'running', error: null });
    expect(finished).toEqual([]);

    // Nor does it approve, deny or mark runs interrupted any more.
    await sql`insert into actions_runs (id, action, kind, params, actor, actor_id, status, requested_at, output, output_truncated)
      values ('pending-1', 'gated', 'command', '{"N":"c"}', 'bob', 'u-bob', 'pending_approval', '2026-01-01T00:00:00.000Z', '', 0)`.execute(store.db);
    const admin = { userId: 'u-alice', userName: 'alice', role: 'admin' };
    await expect(actions.approve(admin, 'pending-1')).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(actions.deny(admin, 'pending-1')).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(actions.open()).rejects.toMatchObject({ code: 'lease_lost' });
    expect(await status('pending-1')).toEqual({ status: 'pending_approval', error: null });
    expect(await status(b.run.id)).toEqual({ status: 'running', error: null });
    expect(existsSync(join(dir, 'ran-c'))).toBe(false);
  });

  it('rollout rows of a node that lost the lease are refused: the row stays as the new holder finds it', async () => {
    // A long heartbeat: the node will not notice a takeover by itself during the test.
    const { store, node } = await holderOnFreshDatabase();
    const fence = <DB>(tx: Kysely<DB>) => node.assertHolds('active', tx);
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-fence-rollout-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const log = pino({ level: 'silent' });
    const actions = new ActionService({ db: store.db, actionsDir: gatedActions(dir), audit: { append: () => undefined }, log, fence });
    cleanups.push(() => actions.close());
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, implicitDeploys: false, fence });
    await deploys.start();
    cleanups.push(() => deploys.stop());
    const services = parseServicesYaml('services:\n  - name: shop\n    steps: [10, 100]\n    deployAction: ship\n    rollbackAction: gated\n');
    const rollouts = new RolloutManager({ deploys, actions, services: () => services, audit: { append: () => undefined }, log, db: store.db, fence });
    await rollouts.open();
    cleanups.push(() => rollouts.close(0));

    await deploys.record({ service: 'shop', version: '1.0.0', environment: 'production', verify: false });
    const r = await rollouts.start({ service: 'shop', version: '2.0.0' }, { userId: 'u-alice', userName: 'alice', role: 'admin' });
    const row = async () => (await sql<{ status: string; data: string }>`select status, data from rollout_rollouts where id = ${r.id}`.execute(store.db)).rows[0];
    await eventually(async () => (await sql`select id from actions_runs where started_at is not null`.execute(store.db)).rows[0]);
    const before = await row();

    // The lease passes while the first step's deploy action runs; the action ends on the old holder.
    await takeOver(store.db);
    writeFileSync(join(dir, 'go-10'), '');
    const ended = await rollouts.wait(r.id);
    expect(ended.status).toBe('failed'); // in its memory
    await rollouts.close(0); // its writes have settled (the shutdown's `aborted` is refused too)
    expect(await row()).toEqual(before); // not in the state the new holder reads
    expect(before?.status).toBe('running');
  });
});
