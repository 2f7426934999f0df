import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { SeverityNumber, type Logger } from '@opentelemetry/api-logs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { ActionRun } from '../src/deploys/actions/index.js';
import type { Deploy, Verification } from '../src/deploys/index.js';
import type { Rollout } from '../src/deploys/rollout/index.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import type { IncidentStory } from '../src/incidents/index.js';
import type { ClusterView } from '../src/state/cluster.js';
import { openStateStore, type StateStore } from '../src/state/index.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { ChSql, parseClickHouseUrl } from '../src/telemetry/clickhouse-sql.js';
import { clickHouseEngineInstalled, startClickHouseEngine, type RunningEngine } from './clickhouse-engine/harness.js';
import { BIN } from './helpers/child-server.js';
import { ClusterChildren, isActive, nodeUrl, type ClusterChild } from './helpers/cluster-children.js';
import { callApi, eventually } from './helpers/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * The whole multi-node deployment (issues 19 and 20) in one loop, with real processes: state on
 * PostgreSQL, telemetry in one ClickHouse (the chdb test engine) shared by three `bin/tightloop
 * up` nodes (the built dist/). A staged rollout (25 → 50 → 100 %) of a bad version is started
 * through a node that does not hold the lease; the service's instances report with the real OTel
 * SDK (spans and logs, OTLP/protobuf) to the two nodes that do not hold it. The holder is
 * SIGKILLed while it verifies the 25 % step. Then: the new holder resumes the rollout once (its
 * step's deploy action is not repeated), the verification fails, the rollback action runs once,
 * and the rollback's verification passes against 1.0.0's own history — which the new holder
 * reads from ClickHouse though the dead node ingested it — so the incident resolves by itself,
 * once; each notification once; `tightloop audit verify` passes; every span and log an exporter
 * had acknowledged is stored once in ClickHouse.
 * The deploy tool is the webhook receiver: a deploy action's WEIGHT (or a rollback) sets the
 * share of requests the 2.0.0 instance serves. Needs `npx tsc -p tsconfig.build.json` first and
 * the ClickHouse test engine (a loop test: LOOP_TESTS).
 */

type Node = ClusterChild;
interface Hook { status: string; alerts: Array<{ id: string; rule: { name: string } }> }

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;
let db: TestDatabase;
let state: StateStore;
let receiver: WebhookReceiver;
const DATABASE = `loop_${process.pid}`;

const RULES = (hook: string): string => `receivers:
  - name: hook
    url: ${hook}
rules:
  - name: checkout-errors
    type: threshold
    signal: error_rate
    select: { service: checkout }
    by: [service, environment]
    threshold: 0.1
    window: 2s
    min_count: 20
    keep_firing_for: 3s
`;

/** The deploy tool: webhooks to the receiver (paths /deploy and /rollback). */
function configure(dataDir: string): void {
  const base = new URL(receiver.url).origin;
  writeFileSync(join(dataDir, 'rules.yaml'), RULES(receiver.url));
  writeFileSync(join(dataDir, 'services.yaml'), `services:
  - name: checkout
    environment: production
    steps: [25, 50, 100]
    deployAction: deploy-checkout
    rollbackAction: rollback-checkout
    verifyMaxDurationS: 120
`);
  mkdirSync(join(dataDir, 'actions'));
  const params = `params:
  SERVICE: { type: string }
  VERSION: { type: string }
  PREVIOUS_VERSION: { type: string }
`;
  writeFileSync(join(dataDir, 'actions', 'deploy-checkout.yaml'), `kind: webhook
description: set checkout's canary weight (the test's deploy tool)
${params}  WEIGHT: { type: int }
method: POST
url: ${base}/deploy
body: { service: "\${SERVICE}", version: "\${VERSION}", previous: "\${PREVIOUS_VERSION}", weight: "\${WEIGHT}" }
timeoutS: 10
`);
  writeFileSync(join(dataDir, 'actions', 'rollback-checkout.yaml'), `kind: webhook
description: roll checkout back (the test's deploy tool)
${params}method: POST
url: ${base}/rollback
body: { service: "\${SERVICE}", version: "\${VERSION}", to: "\${PREVIOUS_VERSION}" }
timeoutS: 10
`);
}

const children = new ClusterChildren({
  prefix: 'tightloop-chloop', stateUrl: () => db.connectionString, configure,
  args: () => ['--telemetry', engine.url(DATABASE)],
});
const nodes = children.nodes;
const url = nodeUrl;

const hooksAt = (path: string): Array<Record<string, unknown>> => receiver.hooks.filter((h) => h.path === path).map((h) => h.body);
const alertHooks = (): Hook[] => hooksAt('/hook').map((h) => h as unknown as Hook).filter((h) => h.alerts?.[0]?.rule.name === 'checkout-errors');

/** An exporter that records what the node acknowledged (its callback said SUCCESS). */
class AckedSpans implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly acked: string[]) {}
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code === ExportResultCode.SUCCESS) for (const s of spans) this.acked.push(`${s.spanContext().traceId}/${s.spanContext().spanId}`);
      done(r);
    });
  }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
  forceFlush(): Promise<void> { return this.inner.forceFlush?.() ?? Promise.resolve(); }
}
class AckedLogs implements LogRecordExporter {
  constructor(private readonly inner: LogRecordExporter, private readonly acked: string[]) {}
  export(logs: ReadableLogRecord[], done: (r: ExportResult) => void): void {
    this.inner.export(logs, (r: ExportResult) => {
      if (r.code === ExportResultCode.SUCCESS) for (const l of logs) this.acked.push(typeof l.body === 'string' ? l.body : JSON.stringify(l.body));
      done(r);
    });
  }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
  forceFlush(): Promise<void> { return this.inner.forceFlush(); }
}

/** One instance of checkout: its version, the node it reports to, the real SDK's providers. */
interface Instance { version: string; tracer: Tracer; logger: Logger; flush: () => Promise<void>; shutdown: () => Promise<void> }

function instance(version: string, n: Node, id: string, acked: { spans: string[]; logs: string[] }): Instance {
  const resource = resourceFromAttributes({ 'service.name': 'checkout', 'service.version': version, 'deployment.environment.name': 'production', 'service.instance.id': id });
  // Exports ride out a failover: the SDK retries 503 and refused connections within this time.
  const timeoutMillis = 30_000;
  const tp = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new AckedSpans(new OTLPTraceExporter({ url: url(n, '/v1/traces'), timeoutMillis }), acked.spans), { scheduledDelayMillis: 200, maxQueueSize: 8192, exportTimeoutMillis: timeoutMillis })] });
  const lp = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new AckedLogs(new OTLPLogExporter({ url: url(n, '/v1/logs'), timeoutMillis }), acked.logs), scheduledDelayMillis: 200, maxQueueSize: 8192, exportTimeoutMillis: timeoutMillis })] });
  return {
    version, tracer: tp.getTracer('checkout'), logger: lp.getLogger('checkout'),
    flush: async () => { await Promise.all([tp.forceFlush(), lp.forceFlush()]); },
    shutdown: async () => { await Promise.all([tp.shutdown(), lp.shutdown()]); },
  };
}

/**
 * Checkout's traffic: 300 requests a second (as many as are due, whatever the timer's drift), a
 * SERVER span each and a log line for every third. The 2.0.0 instance serves `canaryWeight()` %
 * of them (smooth: exactly that share), 4 in 5 of them failing; 1.0.0's instances (one reporting
 * to each node) serve the rest, healthy. Latencies alike for both versions: log-normal around
 * 15 ms (seeded), with the tail a verification compares.
 */
function traffic(stable: Instance[], canary: Instance, canaryWeight: () => number): { pause: () => Promise<void>; resume: () => void; stop: () => Promise<void>; requests: () => number } {
  const RATE = 300;
  let on = true;
  let paused = false;
  let acc = 0;
  let seq = 0;
  let canaryN = 0;
  let seed = 42;
  let due = 0;
  let last = Date.now();
  const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  const latencyMs = (): number => 15 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()));
  const loop = (async () => {
    while (on) {
      const now = Date.now();
      due += ((now - last) / 1000) * RATE;
      last = now;
      for (; !paused && due >= 1; due--) {
        acc += canaryWeight();
        const isCanary = acc >= 100;
        if (isCanary) acc -= 100;
        const inst = isCanary ? canary : stable[seq % stable.length];
        const fails = isCanary && canaryN++ % 5 < 4;
        const span = inst.tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER, startTime: now - latencyMs(), attributes: { 'http.route': '/checkout' } });
        if (fails) span.setStatus({ code: SpanStatusCode.ERROR, message: 'payment declined' });
        if (seq % 3 === 0) inst.logger.emit({ body: `checkout ${inst.version} request ${seq}`, severityNumber: fails ? SeverityNumber.ERROR : SeverityNumber.INFO, context: trace.setSpan(context.active(), span) });
        span.end(now);
        seq++;
      }
      if (paused) due = 0;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const all = [...stable, canary];
  return {
    /** Stops making requests and waits until every export made so far was answered. */
    pause: async () => { paused = true; await Promise.all(all.map((x) => x.flush())); },
    resume: () => { paused = false; },
    stop: async () => { on = false; await loop; await Promise.all(all.map((x) => x.flush())); await Promise.all(all.map((x) => x.shutdown())); },
    requests: () => seq,
  };
}

/** The rollout row and its deploy as PostgreSQL holds them (what a new holder would read). */
async function stored(deployId: string): Promise<{ rollout: Rollout; deployStatus: string; runStatus: string | null }> {
  const q = state.db as unknown as Kysely<Record<string, Record<string, string>>>;
  const row = await q.selectFrom('rollout_rollouts').select('data').where('deploy_id', '=', deployId).executeTakeFirstOrThrow();
  const rollout = JSON.parse(row.data) as Rollout;
  const deploy = await q.selectFrom('deploys').select('status').where('id', '=', deployId).executeTakeFirstOrThrow();
  const runId = rollout.steps[0].runId;
  const run = runId === null ? undefined : await q.selectFrom('actions_runs').select('status').where('id', '=', runId).executeTakeFirst();
  return { rollout, deployStatus: deploy.status, runStatus: run?.status ?? null };
}

beforeAll(async () => {
  if (!installed) return;
  receiver = await startWebhookReceiver();
  engine = await startClickHouseEngine();
  db = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  state = await openStateStore({ dialect: 'postgres', connectionString: db.connectionString, migrate: false });
  // checkout 1.0.0 was recorded and passed its verification yesterday: what serves, and what a rollback restores.
  const day = new Date(Date.now() - 86_400_000).toISOString();
  await (state.db as unknown as Kysely<{ deploys: Record<string, unknown> }>).insertInto('deploys').values({
    id: '01JCHLOOPBASELINE0000000000', service: 'checkout', version: '1.0.0', environment: 'production', previous_version: null,
    status: 'passed', source: 'api', commit_sha: null, commit_time: null, url: null, actor: 'ci', rollback_of: null,
    started_at: day, finished_at: day, decided_at: day, verification_id: null, updated_at: day,
  }).execute();
}, 120_000);

afterAll(async () => {
  await children.stopAll();
  await state?.close();
  await db?.drop();
  await engine?.stop();
  await receiver?.close();
});

describe.skipIf(!installed)('the whole multi-node deployment: PostgreSQL state, one ClickHouse, three tightloop processes', () => {
  it('SIGKILL of the lease holder while it verifies a rollout step: resumed once, rolled back once and verified, one incident resolved by itself, each notification once, every acknowledged span and log stored once', async () => {
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string): void => { marks.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`); };
    onTestFailed(() => {
      for (const n of nodes) process.stderr.write(`--- node ${n.name} (port ${n.port}) stdout and stderr:\n${n.out.slice(-8000)}\n${n.err.slice(-3000)}\n`);
      process.stderr.write(`--- ${marks.join(', ')}\n--- hooks ${JSON.stringify(receiver.hooks.map((h) => [h.path, h.body])).slice(0, 4000)}\n`);
    });
    // Started at once: one of them takes the lease (`a` below), the other two are its standbys.
    const started3 = await Promise.all(['n1', 'n2', 'n3'].map((n) => children.start(n)));
    const a = await eventually(async () => {
      for (const n of started3) if (await isActive(n)) return n;
      return undefined;
    }, 30_000);
    const [b, c] = started3.filter((n) => n !== a);
    const token = readFileSync(join(a.dataDir, 'admin.token'), 'utf8').trim();
    const holderA = (await callApi<ClusterView>(url(c), token, 'GET', '/api/cluster')).body.leases[0].holder;
    mark('nodes up');

    // The deploy tool's state: the weight the last deploy action set. The 2.0.0 instance serves
    // nothing while `held` (until the holder is killed, below). A rollback switches it off once
    // the alert was notified: whichever comes first on the new holder, the failed verdict or the
    // alert, the test sees both of the alert's edges.
    let held = true;
    const weight = (): number => {
      const set = hooksAt('/deploy').at(-1);
      if (held || set === undefined || (hooksAt('/rollback').length > 0 && alertHooks().length > 0)) return 0;
      return Number(set.weight);
    };
    const acked = { spans: [] as string[], logs: [] as string[] };
    const load = traffic([instance('1.0.0', b, 'stable-b', acked), instance('1.0.0', c, 'stable-c', acked)], instance('2.0.0', b, 'canary-b', acked), weight);
    let via = c;
    try {
      // 1.0.0 serves alone long enough to be what healthy looks like (3,000 requests acknowledged:
      // a rollback's verification compares its latency tail with these).
      await eventually(() => (acked.spans.length >= 3_000 ? true : undefined), 60_000);
      mark('history');

      // The rollout, through b (forwarded to a); a runs the 25 % step's deploy action and verifies it.
      const started = await callApi<Rollout>(url(b), token, 'POST', '/api/deploys/rollouts', { service: 'checkout', version: '2.0.0', commit: 'bad1234' });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const deployId = started.body.deployId;
      onTestFailed(async () => {
        const r = await callApi<Rollout>(url(via), token, 'GET', `/api/deploys/rollouts/${started.body.id}`);
        process.stderr.write(`--- the rollout: ${JSON.stringify(r).slice(0, 4000)}\n`);
        if (r.body.rollbackDeployId !== null) {
          const v = await callApi(url(via), token, 'GET', `/api/deploys/${r.body.rollbackDeployId}/verification`);
          process.stderr.write(`--- the rollback's verification: ${JSON.stringify(v).slice(0, 6000)}\n`);
        }
      });
      // The kill lands inside the step's verification: PostgreSQL holds the step's succeeded
      // deploy action and the deploy `verifying`, and no 2.0.0 request was served yet.
      await eventually(async () => {
        const s = await stored(deployId);
        return s.runStatus === 'succeeded' && s.deployStatus === 'verifying' && s.rollout.steps[0].verdicts.length === 0 ? true : undefined;
      }, 30_000);
      expect(hooksAt('/deploy').map((h) => h.weight)).toEqual([25]);
      // Every export so far answered (an export in flight at a kill may be stored twice: at least once, telemetry/README.md).
      await load.pause();
      const gone = new Promise((r) => a.child.once('exit', r));
      a.child.kill('SIGKILL');
      await gone;
      mark('holder killed');
      held = false;
      load.resume();

      const next = await eventually(async () => {
        for (const s of [b, c]) if (await isActive(s)) return s;
        return undefined;
      }, 60_000);
      via = next === b ? c : b;
      mark(`new holder ${next.name}`);

      // The new holder resumes the rollout: the 25 % step's verification fails (2.0.0 now serves),
      // the rollback runs, and its verification passes against 1.0.0's own history.
      const ended = await eventually(async () => {
        const r = (await callApi<Rollout>(url(via), token, 'GET', `/api/deploys/rollouts/${started.body.id}`)).body;
        return r.status === 'running' ? undefined : r;
      }, 90_000);
      mark('rolled back and verified');
      expect(ended).toMatchObject({ status: 'rolled_back', resumed: 1, rollbackVerdict: 'pass' });
      expect(ended.steps.map((s) => [s.weight, s.verdicts.map((v) => v.outcome)])).toEqual([[25, ['fail']], [50, []], [100, []]]);

      // The alert (fired on the new holder while 2.0.0 served) resolves; the incident resolves by itself.
      await eventually(() => (alertHooks().some((h) => h.status === 'resolved') ? true : undefined), 30_000);
      await eventually(async () => {
        const list = (await callApi<{ incidents: Array<{ status: string }> }>(url(via), token, 'GET', '/api/incidents')).body.incidents;
        return list.length > 0 && list.every((i) => i.status === 'resolved') ? true : undefined;
      }, 30_000);
      mark('incident resolved');
    } finally {
      await load.stop();
    }

    // The deploy tool saw one deploy action (25 %: the new holder verified the step, it did not
    // set the weight again) and one rollback, to 1.0.0.
    expect(hooksAt('/deploy').map((h) => [h.version, h.weight])).toEqual([['2.0.0', 25]]);
    expect(hooksAt('/rollback').map((h) => [h.version, h.to])).toEqual([['2.0.0', '1.0.0']]);
    const runs = (await callApi<{ runs: ActionRun[] }>(url(via), token, 'GET', '/api/actions/runs?limit=100')).body.runs;
    expect(runs.map((r) => [r.action, r.status]).sort()).toEqual([['deploy-checkout', 'succeeded'], ['rollback-checkout', 'succeeded']]);
    const resumed = (await callApi<{ records: unknown[] }>(url(via), token, 'GET', '/api/audit?kind=rollout.resumed')).body.records;
    expect(resumed).toHaveLength(1);

    // The rollback deploy passed, compared with 1.0.0's own history (ingested by the dead node).
    const deploys = (await callApi<{ deploys: Deploy[] }>(url(via), token, 'GET', '/api/deploys?service=checkout')).body.deploys;
    const bad = deploys.find((d) => d.version === '2.0.0')!;
    expect(bad.status).toBe('rolled_back');
    const rollbacks = deploys.filter((d) => d.rollbackOf === bad.id);
    expect(rollbacks.map((d) => [d.source, d.version, d.status])).toEqual([['rollback', '1.0.0', 'passed']]);
    const v = (await callApi<Verification>(url(via), token, 'GET', `/api/deploys/${rollbacks[0].id}/verification`)).body;
    expect(v.evidence.find((e) => e.signal === 'baseline')?.detail).toMatch(/^own history: 1\.0\.0 serving alone before 2\.0\.0 began/);

    // One incident, resolved by itself (the fix passed): not "recovered but unverified".
    const incidents = (await callApi<{ incidents: Array<{ id: string }> }>(url(via), token, 'GET', '/api/incidents')).body.incidents;
    expect(incidents).toHaveLength(1);
    const story = (await callApi<IncidentStory>(url(via), token, 'GET', `/api/incidents/${incidents[0].id}`)).body;
    expect(story.incident).toMatchObject({ status: 'resolved', resolution: 'auto', recoveredUnverified: false, suspectDeployId: bad.id });
    const kinds = story.timeline.map((e) => e.kind);
    for (const k of ['alert.fired', 'alert.resolved', 'resolved']) expect(kinds.filter((x) => x === k), `${k} in ${kinds.join(', ')}`).toHaveLength(1);
    expect(kinds).not.toContain('fix_unverified');

    // Each notification once: the alert's two edges, distinct Idempotency-Keys.
    await eventually(async () => {
      const s = (await callApi<IncidentStory>(url(via), token, 'GET', `/api/incidents/${incidents[0].id}`)).body;
      return s.incident.status === 'resolved' ? true : undefined;
    }, 5_000);
    expect(alertHooks().map((h) => h.status)).toEqual(['firing', 'resolved']);
    const keys = receiver.hooks.filter((h) => h.path === '/hook').map((h) => h.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(keys.length);

    // The audit chain verifies (through a standby, forwarded to the holder).
    const verify = spawn(process.execPath, [BIN, 'audit', 'verify', '--url', url(via), '--token', token], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    verify.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    verify.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((r) => verify.once('exit', r));
    expect([code, out]).toEqual([0, expect.stringContaining('audit chain OK')]);

    // Every span and log line an exporter had acknowledged (through b or c, before and after the
    // kill) is in ClickHouse once; nothing is there twice.
    const ch = new ChSql(parseClickHouseUrl(engine.url(DATABASE)));
    try {
      const spans = await ch.rows<{ k: string; n: number }>(`SELECT concat(trace_id, '/', span_id) AS k, count() AS n FROM spans WHERE service = 'checkout' GROUP BY k`);
      const logs = await ch.rows<{ k: string; n: number }>(`SELECT body AS k, count() AS n FROM logs WHERE service = 'checkout' GROUP BY k`);
      for (const [what, rows, sent] of [['spans', spans, acked.spans], ['logs', logs, acked.logs]] as const) {
        const counts = new Map(rows.map((r) => [r.k, Number(r.n)]));
        expect(rows.filter((r) => Number(r.n) !== 1), `${what} stored more than once`).toEqual([]);
        expect(sent.filter((k) => counts.get(k) !== 1), `${what} acknowledged but not stored`).toEqual([]);
        expect(new Set(sent).size, `${what} acknowledged twice`).toBe(sent.length);
      }
      marks.push(`${acked.spans.length} spans and ${acked.logs.length} logs acknowledged of ${load.requests()} requests; stored ${spans.length} and ${logs.length}`);
    } finally {
      await ch.close();
    }
    const after = (await callApi<ClusterView>(url(via), token, 'GET', '/api/cluster')).body;
    expect(after.leases[0].holder).not.toBe(holderA);
    expect(a.child.signalCode).toBe('SIGKILL');
    process.stderr.write(`cluster-clickhouse-loop: ${marks.join(', ')}\n`);
  }, 240_000);
});
