import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import type { ClusterView } from '../src/state/cluster.js';
import { createTestDatabase, type TestDatabase } from '../src/state/pg-cluster.conformance.js';
import { ClusterChildren, isActive, nodeUrl, type ClusterChild } from './helpers/cluster-children.js';
import { callApi, eventually } from './helpers/server.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * Failover with real processes: three `bin/tightloop up` (the built dist/) on one real
 * PostgreSQL state database, default lease timing (2 s heartbeat, 6 s TTL). The active node
 * fires an alert and is SIGKILLed; one standby takes the lease within 10 s, serves on its own
 * ports, resolves that alert and fires a new one: the webhook receiver sees each edge once.
 * Needs `npx tsc -p tsconfig.build.json` first (a loop test: LOOP_TESTS).
 */

type Node = ClusterChild;
interface Hook { status: string; alerts: Array<{ rule: { name: string }; series: Record<string, string> }> }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let db: TestDatabase;
let receiver: WebhookReceiver;

const RULES = (hook: string): string => `receivers:
  - name: hook
    url: ${hook}
rules:
${['shop', 'pay'].map((s) => `  - name: ${s}-errors
    type: threshold
    signal: error_rate
    select: { service: ${s} }
    threshold: 0.5
    window: 2s
    min_count: 10
`).join('')}`;

/** The nodes (docs/cluster.md: they share the audit key); the process handling is test/helpers/cluster-children.ts. */
const children = new ClusterChildren({
  prefix: 'tightloop-failover', stateUrl: () => db.connectionString, configure: (dataDir) => writeFileSync(join(dataDir, 'rules.yaml'), RULES(receiver.url)),
});
const startChild = (name: string): Promise<Node> => children.start(name);

const url = nodeUrl;

/** SERVER spans of `service`, OTLP/JSON: every request an error, or none. */
async function sendSpans(n: Node, service: string, seconds: number, failing = true): Promise<void> {
  for (let t = 0; t < seconds * 5; t++) {
    const now = Date.now() * 1e6;
    const spans = Array.from({ length: 10 }, (_, i) => ({
      traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'POST /checkout', kind: 2,
      startTimeUnixNano: String(now + i * 1000), endTimeUnixNano: String(now + i * 1000 + 5_000_000), status: { code: failing ? 2 : 1 },
    }));
    const res = await fetch(url(n, '/v1/traces'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 't' }, spans }] }] }),
    });
    expect(res.status).toBe(200);
    await sleep(200);
  }
}

const hooksFor = (rule: string): Hook[] => receiver.hooks.map((h) => h.body as unknown as Hook).filter((h) => h.alerts[0]?.rule.name === rule);

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  db = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
});

afterAll(async () => {
  await children.stopAll();
  await receiver.close();
  await db.drop();
});

describe('three tightloop processes on one PostgreSQL', () => {
  it('SIGKILL of the active node: a standby takes the lease within 10 s and keeps working, each notification once', async () => {
    const a = await startChild('a');
    expect(await isActive(a)).toBe(true);
    const token = readFileSync(join(a.dataDir, 'admin.token'), 'utf8').trim();
    const b = await startChild('b');
    const c = await startChild('c');
    for (const s of [b, c]) {
      expect(await isActive(s)).toBe(false);
      expect(s.out).toMatch(/STANDBY/);
    }
    const before = await callApi<ClusterView>(url(b, ''), token, 'GET', '/api/cluster');
    expect(before.status).toBe(200);
    const holderA = before.body.leases[0].holder;
    expect(before.body.nodes.filter((n) => n.alive)).toHaveLength(3);
    expect(before.body.nodes.find((n) => n.id === holderA)?.url).toBe(url(a, ''));

    // The active node fires shop-errors and notifies it.
    await sendSpans(a, 'shop', 3);
    await eventually(() => (hooksFor('shop-errors').length > 0 ? true : undefined), 20_000);
    expect(hooksFor('shop-errors').map((h) => h.status)).toEqual(['firing']);

    a.child.kill('SIGKILL');
    const killedAt = performance.now();
    const next = await eventually(async () => {
      for (const s of [b, c]) if (await isActive(s)) return s;
      return undefined;
    }, 60_000);
    const other = next === b ? c : b;
    process.stdout.write(`failover: ${((performance.now() - killedAt) / 1000).toFixed(1)} s from SIGKILL to /api/health/active 200 on node ${next.name}\n`);

    const after = await callApi<ClusterView>(url(next, ''), token, 'GET', '/api/cluster');
    const lease = after.body.leases[0];
    const dead = after.body.nodes.find((n) => n.id === holderA);
    expect(lease).toMatchObject({ name: 'active', token: 2, expired: false });
    expect(lease.holder).not.toBe(holderA);
    expect(dead?.alive).toBe(false);
    // On PostgreSQL's clock: from the dead node's last heartbeat to the takeover.
    const takeoverMs = Date.parse(lease.acquiredAt) - Date.parse(dead?.lastHeartbeatAt ?? '');
    process.stdout.write(`failover: ${(takeoverMs / 1000).toFixed(1)} s from the last heartbeat to the new lease (PostgreSQL clock)\n`);
    expect(takeoverMs).toBeLessThanOrEqual(10_000);
    expect(await isActive(other)).toBe(false);

    // The new active node keeps working: it fires a new alert, and resolves the old one once
    // the shop serves without errors (no data alone keeps an alert as it is), without notifying
    // its firing again.
    await Promise.all([sendSpans(next, 'pay', 3), sendSpans(next, 'shop', 3, false)]);
    await eventually(() => (hooksFor('pay-errors').length > 0 ? true : undefined), 20_000);
    await eventually(() => (hooksFor('shop-errors').some((h) => h.status === 'resolved') ? true : undefined), 30_000);
    await sleep(3_000); // anything sent twice would arrive by now
    expect(hooksFor('shop-errors').map((h) => h.status)).toEqual(['firing', 'resolved']);
    expect(hooksFor('pay-errors').filter((h) => h.status === 'firing')).toHaveLength(1);
    // The third node is still a standby, and the killed one never answered again.
    expect(await isActive(other)).toBe(false);
    expect(a.child.signalCode).toBe('SIGKILL');
  });
});
