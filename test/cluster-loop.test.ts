import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Deploy } from '../src/deploys/index.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import type { IncidentStory } from '../src/incidents/index.js';
import type { ClusterView } from '../src/state/cluster.js';
import { openStateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { BIN } from './helpers/child-server.js';
import { ClusterChildren, isActive, nodeUrl, type ClusterChild } from './helpers/cluster-children.js';
import { callApi, eventually } from './helpers/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * The loop across a failover (issue 19), with real processes: PostgreSQL and three
 * `bin/tightloop up` (the built dist/) on it, default lease timing. A bad deploy is driven
 * through a node that does not hold the lease (its API and OTLP ingest are forwarded): the
 * alert fires, an incident opens, the verification fails and the rollback action starts; the
 * node holding the lease is SIGKILLed while that action runs. Then: the new holder rolls back
 * (the action once more, to completion), the alert resolves, the incident is resolved once, the
 * webhook receiver saw each notification once, `tightloop audit verify` passes, and a `psql`
 * session opened through a surviving node before the kill still works.
 * Needs `npx tsc -p tsconfig.build.json` first (a loop test: LOOP_TESTS).
 */

type Node = ClusterChild;
interface Hook { status: string; alerts: Array<{ id: string; rule: { name: string } }> }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let db: TestDatabase;
let receiver: WebhookReceiver;
let work: string;
let psql: ChildProcessWithoutNullStreams | undefined;

const RULES = (hook: string): string => `receivers:
  - name: hook
    url: ${hook}
rules:
  - name: checkout-errors
    type: threshold
    signal: error_rate
    select: { service: checkout }
    by: [service, environment]
    threshold: 0.2
    window: 2s
    min_count: 20
`;

/**
 * The rollback action: logs its start, then waits for the test's "go" file and logs "done".
 * A run whose tightloop died (its parent changed) stops, as a deploy tool killed with it would.
 */
const ROLLBACK_SCRIPT = `const fs = require('node:fs');
const [log, go, version, previous] = process.argv.slice(2);
const parent = process.ppid;
fs.appendFileSync(log, 'start ' + version + ' ' + previous + '\\n');
const t = setInterval(() => {
  if (process.ppid !== parent) process.exit(3);
  if (fs.existsSync(go)) { fs.appendFileSync(log, 'done ' + previous + '\\n'); clearInterval(t); }
}, 50);
`;

function configure(dataDir: string): void {
  writeFileSync(join(dataDir, 'rules.yaml'), RULES(receiver.url));
  writeFileSync(join(dataDir, 'services.yaml'), `services:
  - name: checkout
    environment: production
    rollbackAction: rollback-checkout
    verifyMaxDurationS: 60
`);
  mkdirSync(join(dataDir, 'actions'));
  writeFileSync(join(dataDir, 'actions', 'rollback-checkout.yaml'), `kind: command
description: roll checkout back (the test's deploy tool)
params:
  SERVICE: { type: string }
  VERSION: { type: string }
  PREVIOUS_VERSION: { type: string }
timeoutS: 120
argv: [${JSON.stringify(process.execPath)}, ${JSON.stringify(join(work, 'rollback.cjs'))}, ${JSON.stringify(join(work, 'rollback.log'))}, ${JSON.stringify(join(work, 'go'))}, "\${VERSION}", "\${PREVIOUS_VERSION}"]
`);
}

/** The nodes (docs/cluster.md: they share the audit key); the process handling is test/helpers/cluster-children.ts. */
const children = new ClusterChildren({
  prefix: 'tightloop-loop', stateUrl: () => db.connectionString, configure: configure,
  env: () => ({ TIGHTLOOP_CRED_LOOP_PG: decodeURIComponent(new URL(db.connectionString).password) }),
});
const nodes = children.nodes;
const startChild = (name: string): Promise<Node> => children.start(name);

const url = nodeUrl;

/**
 * OTLP/JSON SERVER spans of checkout through `via` (forwarded to the holder) until stopped: 20
 * per 200 ms, of the version and error share `phase()` says. A 503 while no node holds the
 * lease is what an exporter retries later: those spans are dropped here.
 */
function traffic(via: () => Node, phase: () => { version: string; errorShare: number }): { stop: () => Promise<void>; sent: () => number } {
  let on = true;
  let sent = 0;
  const loop = (async () => {
    while (on) {
      const { version, errorShare } = phase();
      const now = Date.now() * 1e6;
      const spans = Array.from({ length: 20 }, (_, i) => ({
        traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'POST /checkout', kind: 2,
        startTimeUnixNano: String(now + i * 1000), endTimeUnixNano: String(now + i * 1000 + 5_000_000), status: { code: i < errorShare * 20 ? 2 : 1 },
      }));
      const attrs = { 'service.name': 'checkout', 'service.version': version, 'deployment.environment.name': 'production' };
      try {
        const res = await fetch(url(via(), '/v1/traces'), {
          method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5_000),
          body: JSON.stringify({ resourceSpans: [{ resource: { attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })) }, scopeSpans: [{ scope: { name: 't' }, spans }] }] }),
        });
        await res.arrayBuffer();
        if (res.status === 200) sent++;
      } catch { /* the node is changing; retried with the next batch */ }
      await sleep(200);
    }
  })();
  return { stop: async () => { on = false; await loop; }, sent: () => sent };
}

/** A real psql through a node's gateway, kept open; `query` sends one line and reads until its marker. */
function openPsql(n: Node, password: string): { query: (sql: string) => Promise<string> } {
  const p = spawn('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0', '-h', '127.0.0.1', '-p', String(n.gatewayPort), '-U', 'admin', '-d', 'statedb'],
    { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' } });
  psql = p;
  let out = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  let k = 0;
  return {
    async query(sql: string) {
      const marker = `--done ${++k}--`;
      const from = out.length;
      p.stdin.write(`${sql}\n\\echo ${marker}\n`);
      await eventually(() => (out.indexOf(marker, from) >= 0 || p.exitCode !== null ? true : undefined), 15_000);
      if (p.exitCode !== null) throw new Error(`psql exited ${p.exitCode}: ${out}`);
      return out.slice(from, out.indexOf(marker, from)).trim();
    },
  };
}

const rollbackLog = (): string[] => (existsSync(join(work, 'rollback.log')) ? readFileSync(join(work, 'rollback.log'), 'utf8').trim().split('\n') : []);
const alertHooks = (): Hook[] => receiver.hooks.map((h) => h.body as unknown as Hook).filter((h) => h.alerts?.[0]?.rule.name === 'checkout-errors');

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  work = mkdtempSync(join(tmpdir(), 'tightloop-loop-work-'));
  writeFileSync(join(work, 'rollback.cjs'), ROLLBACK_SCRIPT);
  db = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  // checkout 1.0.0 was recorded and passed its verification yesterday: what a rollback restores.
  const state = await openStateStore({ dialect: 'postgres', connectionString: db.connectionString, migrate: false });
  try {
    const day = new Date(Date.now() - 86_400_000).toISOString();
    await (state.db as unknown as Kysely<{ deploys: Record<string, unknown> }>).insertInto('deploys').values({
      id: '01JLOOPBASELINE000000000000', service: 'checkout', version: '1.0.0', environment: 'production', previous_version: null,
      status: 'passed', source: 'api', commit_sha: null, commit_time: null, url: null, actor: 'ci', rollback_of: null,
      started_at: day, finished_at: day, decided_at: day, verification_id: null, updated_at: day,
    }).execute();
  } finally {
    await state.close();
  }
});

afterAll(async () => {
  psql?.stdin.end();
  psql?.kill('SIGKILL');
  await children.stopAll();
  await receiver.close();
  await db.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('the loop across a failover: three tightloop processes on one PostgreSQL', () => {
  it('SIGKILL of the lease holder in the middle of a bad deploy: rolled back, one incident resolved once, each notification once, the audit chain and a psql session intact', async () => {
    // What the nodes logged (warn and above) and what the deploy tool saw, when the test fails.
    onTestFailed(() => {
      for (const n of nodes) process.stderr.write(`--- node ${n.name} (port ${n.port}) stdout and stderr:\n${n.out.slice(-8000)}\n${n.err.slice(-3000)}\n`);
      process.stderr.write(`--- rollback log: ${JSON.stringify(rollbackLog())}\n`);
    });
    const a = await startChild('a');
    expect(await isActive(a)).toBe(true);
    const token = readFileSync(join(a.dataDir, 'admin.token'), 'utf8').trim();
    const [b, c] = [await startChild('b'), await startChild('c')];
    const holderA = (await callApi<ClusterView>(url(c), token, 'GET', '/api/cluster')).body.leases[0].holder;

    // A psql session through b's gateway, opened before anything happens (resource and grant through c).
    const u = new URL(db.connectionString);
    expect((await callApi(url(c), token, 'POST', '/api/resources', {
      name: 'statedb', host: u.hostname, port: Number(u.port), database: u.pathname.slice(1), user: decodeURIComponent(u.username),
      credential: 'env:TIGHTLOOP_CRED_LOOP_PG', tls: { mode: 'disable' }, allowInsecurePassword: true,
    })).status).toBe(201);
    expect((await callApi(url(c), token, 'POST', '/api/access/grants', { user: 'admin', resource: 'statedb', mode: 'read' })).status).toBe(201);
    const session = await eventually(async () => {
      const s = openPsql(b, token);
      try {
        return (await s.query('select 40 + 2;')) === '42' ? s : undefined;
      } catch { return undefined; }
    }, 20_000);

    // Healthy 1.0.0 through c, long enough to be the bad deploy's baseline; then 2.0.0, half failing.
    let phase = { version: '1.0.0', errorShare: 0 };
    let via = c;
    const load = traffic(() => via, () => phase);
    try {
      await sleep(8_000);
      const bad = await callApi<Deploy>(url(c), token, 'POST', '/api/deploys', { service: 'checkout', version: '2.0.0', environment: 'production', commit: 'bad1234' });
      expect(bad.status, JSON.stringify(bad.body)).toBe(201);
      onTestFailed(async () => {
        const d = await callApi(url(via), token, 'GET', `/api/deploys/${bad.body.id}`).catch((e: unknown) => e);
        process.stderr.write(`--- the bad deploy: ${JSON.stringify(d).slice(0, 3000)}\n`);
        const al = await callApi(url(via), token, 'GET', '/api/alerts').catch((e: unknown) => e);
        process.stderr.write(`--- alerts: ${JSON.stringify(al).slice(0, 3000)}\n--- sent ${load.sent()} batches; hooks ${JSON.stringify(receiver.hooks.map((h) => h.body)).slice(0, 3000)}\n`);
      });
      phase = { version: '2.0.0', errorShare: 0.5 };

      // The alert fires and is notified, the incident opens, the verdict fails, the rollback starts on a.
      await eventually(() => (alertHooks().length > 0 ? true : undefined), 30_000);
      await eventually(() => (rollbackLog().length > 0 ? true : undefined), 90_000);
      const incident = (await callApi<{ incidents: Array<{ id: string; status: string }> }>(url(c), token, 'GET', '/api/incidents')).body.incidents;
      expect(incident.map((i) => i.status)).toEqual(['open']);
      expect(rollbackLog()).toEqual(['start 2.0.0 1.0.0']);

      // The holder dies in the middle of its rollback.
      const gone = new Promise((r) => a.child.once('exit', r));
      a.child.kill('SIGKILL');
      await gone; // its orphaned run sees its parent gone before the deploy tool may finish
      writeFileSync(join(work, 'go'), '');
      const next = await eventually(async () => {
        for (const s of [b, c]) if (await isActive(s)) return s;
        return undefined;
      }, 60_000);
      via = next === b ? c : b;
      // The new holder rolls back to completion (its deploy tool said so once).
      await eventually(() => (rollbackLog().some((l) => l.startsWith('done')) ? true : undefined), 60_000);
      phase = { version: '1.0.0', errorShare: 0 };
      const rolledBack = await eventually(async () => {
        const d = (await callApi<Deploy>(url(via), token, 'GET', `/api/deploys/${bad.body.id}`)).body;
        return d.status === 'rolled_back' ? d : undefined;
      }, 30_000);
      expect(rolledBack.status).toBe('rolled_back');
      const list = (await callApi<{ deploys: Deploy[] }>(url(via), token, 'GET', '/api/deploys?service=checkout')).body.deploys;
      expect(list.filter((d) => d.rollbackOf === bad.body.id).map((d) => [d.source, d.version])).toEqual([['rollback', '1.0.0']]);
      expect(rollbackLog().filter((l) => l.startsWith('done'))).toEqual(['done 1.0.0']);

      // The alert resolves on the new holder (healthy traffic again), notified once.
      await eventually(() => (alertHooks().some((h) => h.status === 'resolved') ? true : undefined), 30_000);
    } finally {
      await load.stop();
    }

    // One incident. Its rollback was verified on the new holder, which holds none of the
    // telemetry from before the failover (docs/cluster.md): it stays open as recovered-but-
    // unverified unless the verdict passed; a person resolves it then, once.
    const incidents = (await callApi<{ incidents: Array<{ id: string; status: string }> }>(url(via), token, 'GET', '/api/incidents')).body.incidents;
    expect(incidents).toHaveLength(1);
    const id = incidents[0].id;
    let story = (await callApi<IncidentStory>(url(via), token, 'GET', `/api/incidents/${id}`)).body;
    if (story.incident.status !== 'resolved') {
      expect((await callApi(url(via), token, 'POST', `/api/incidents/${id}/resolve`, { note: 'rolled back across a failover' })).status).toBe(200);
      story = (await callApi<IncidentStory>(url(via), token, 'GET', `/api/incidents/${id}`)).body;
    }
    expect(story.incident.status).toBe('resolved');
    expect(story.incident.suspectDeployId).not.toBeNull();
    const kinds = story.timeline.map((e) => e.kind);
    for (const k of ['alert.fired', 'alert.resolved', 'resolved']) expect(kinds.filter((x) => x === k), `${k} in ${kinds.join(', ')}`).toHaveLength(1);

    // Anything sent twice would have arrived by now: each alert edge once, each delivery once.
    await sleep(3_000);
    expect(alertHooks().map((h) => h.status)).toEqual(['firing', 'resolved']);
    const keys = receiver.hooks.map((h) => h.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(keys.length);

    // The audit chain verifies (through a standby: forwarded to the holder, with its anchor).
    const verify = spawn(process.execPath, [BIN, 'audit', 'verify', '--url', url(via), '--token', token], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    verify.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    verify.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((r) => verify.once('exit', r));
    expect([code, out]).toEqual([0, expect.stringContaining('audit chain OK')]);

    // The psql session opened through b before the kill still works.
    expect(await session.query("select 'still ' || 'here';")).toBe('still here');
    const after = (await callApi<ClusterView>(url(via), token, 'GET', '/api/cluster')).body;
    expect(after.leases[0].holder).not.toBe(holderA);
    expect(a.child.signalCode).toBe('SIGKILL');
  }, 240_000);
});
