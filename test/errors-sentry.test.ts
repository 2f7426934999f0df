import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as Sentry from '@sentry/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli/main.js';
import type { ErrorGroup, StoredErrorEvent } from '../src/errors/index.js';
import { eventually } from './helpers/server.js';
import { startErrorsServer, type ErrorsTestServer } from './helpers/errors.js';

/**
 * The real @sentry/node SDK, configured with a DSN printed by `tightloop project create`, sends
 * exceptions, messages, an unhandled error (child process) and a transaction to tightloop.
 */

let t: ErrorsTestServer;
let dsn = '';
let projectId = 0;

interface GroupList { groups: ErrorGroup[] }
interface GroupDetail { group: ErrorGroup; releases: Record<string, number>; environments: Record<string, number>;
  latestEvent: StoredErrorEvent & { payload: { exception?: unknown } } | null; traceIds: string[] }

async function groupsWhere(pred: (g: ErrorGroup) => boolean, n = 1): Promise<ErrorGroup[]> {
  return eventually(async () => {
    const r = await t.api<GroupList>(`/api/errors?project=${projectId}`);
    const found = r.body.groups.filter(pred);
    return found.length >= n ? found : undefined;
  });
}

beforeAll(async () => {
  t = await startErrorsServer();
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => { out.push(String(s)); return true; });
  let code: number;
  try {
    code = await run(['node', 'tightloop', 'project', 'create', 'shop', '--url', t.url, '--token', t.token, '--json']);
  } finally {
    process.stdout.write = write;
  }
  expect(code).toBe(0);
  const created = JSON.parse(out.join('')) as { id: number; dsn: string };
  dsn = created.dsn;
  projectId = created.id;
  Sentry.init({ dsn, release: 'shop@1.0.0', environment: 'production', tracesSampleRate: 1, defaultIntegrations: false,
    integrations: [Sentry.linkedErrorsIntegration(), Sentry.contextLinesIntegration()] });
  Sentry.setTag('team', 'payments');
});

afterAll(async () => {
  await Sentry.close(2000);
  await t.close();
});

function failCheckout(orderId: number): never {
  throw new Error(`checkout failed for order ${orderId}`);
}
function failPayment(): never {
  throw new RangeError('payment amount out of range');
}

describe('@sentry/node against tightloop', () => {
  it('project create prints a DSN; the default project DSN is in the banner data', async () => {
    expect(dsn).toMatch(/^http:\/\/[0-9a-f]{32}@127\.0\.0\.1:\d+\/\d+$/);
    expect(t.server.defaultDsn).toMatch(/\/1$/);
    const list = await t.api<{ projects: { name: string; dsn: string }[] }>('/api/projects');
    expect(list.body.projects.map((p) => p.name)).toEqual(['default', 'shop']);
  });

  it('same throw site twice → one group with count 2; another site → another group', async () => {
    for (const id of [101, 202]) {
      try { failCheckout(id); } catch (e) { Sentry.captureException(e); }
    }
    try { failPayment(); } catch (e) { Sentry.captureException(e); }
    await Sentry.flush(5000);
    const [checkout] = await groupsWhere((g) => g.title.startsWith('Error: checkout failed') && g.count === 2);
    const [payment] = await groupsWhere((g) => g.title.startsWith('RangeError'));
    expect(checkout.id).not.toBe(payment.id);
    expect(checkout.components[0]).toBe('frames');
    expect(checkout.firstRelease).toBe('shop@1.0.0');
    const detail = await t.api<GroupDetail>(`/api/errors/${checkout.id}`);
    expect(detail.body.releases).toEqual({ 'shop@1.0.0': 2 });
    expect(detail.body.environments).toEqual({ production: 2 });
    expect(JSON.stringify(detail.body.latestEvent?.payload.exception)).toContain('failCheckout');
    const events = await t.api<{ events: StoredErrorEvent[] }>(`/api/errors/${checkout.id}/events`);
    expect(events.body.events).toHaveLength(2);
    expect(events.body.events[0].tags).toMatchObject({ team: 'payments' });
    expect(events.body.events[0].release).toBe('shop@1.0.0');
  });

  it('messages group by normalised text', async () => {
    Sentry.captureMessage('user 42 not found in 10.0.0.7', 'warning');
    Sentry.captureMessage('user 7 not found in 10.0.0.9', 'warning');
    await Sentry.flush(5000);
    const [g] = await groupsWhere((x) => x.title.startsWith('user ') && x.count === 2);
    expect(g.components).toEqual(['message', 'user <num> not found in <ip>']);
    expect(g.level).toBe('warning');
  });

  it('an explicit fingerprint wins, with {{ default }} support', async () => {
    for (const m of ['a', 'b']) {
      Sentry.withScope((scope) => { scope.setFingerprint(['payment-provider-down']); Sentry.captureMessage(`provider ${m} down`); });
    }
    Sentry.withScope((scope) => {
      scope.setFingerprint(['{{ default }}', 'eu']);
      try { failPayment(); } catch (e) { Sentry.captureException(e); }
    });
    await Sentry.flush(5000);
    const [fp] = await groupsWhere((g) => g.components.join(',') === 'fingerprint,payment-provider-down' && g.count === 2);
    expect(fp.count).toBe(2);
    const [withDefault] = await groupsWhere((g) => g.components[0] === 'fingerprint' && g.components.at(-1) === 'eu');
    expect(withDefault.components[1]).toBe('frames');
  });

  it('an event inside an active span is linked to that trace, and the trace lists it', async () => {
    const traceId = Sentry.startSpan({ name: 'POST /checkout', op: 'http.server' }, (span) => {
      try { failCheckout(303); } catch (e) { Sentry.captureException(e); }
      return span.spanContext().traceId;
    });
    await Sentry.flush(5000);
    const [g] = await groupsWhere((x) => x.title.startsWith('Error: checkout failed') && x.latestTraceId === traceId);
    expect(g.count).toBe(3);
    const trace = await eventually(async () => {
      const r = await t.api<{ spans: { name: string; service: string }[]; errors: StoredErrorEvent[] }>(`/api/traces/${traceId}`);
      return r.status === 200 && r.body.errors.length > 0 ? r.body : undefined;
    });
    expect(trace.spans.some((s) => s.name === 'POST /checkout' && s.service === 'shop')).toBe(true);
    expect(trace.errors[0].groupId).toBe(g.id);
  });

  it('an unhandled error in a real process is captured with release, environment and tags', async () => {
    const script = fileURLToPath(new URL('./fixtures/sentry-unhandled.mjs', import.meta.url));
    // Asynchronously: the server runs in this process, and a synchronous spawn would stop its
    // event loop (on PostgreSQL state the node's lease lapses after 5 s and the server stops).
    const status = await new Promise<number | null>((resolve) => {
      execFile(process.execPath, [script], { env: { ...process.env, DSN: dsn }, encoding: 'utf8', timeout: 30_000 }, (err) => {
        resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : null);
      });
    });
    expect(status).not.toBe(0);
    const [g] = await groupsWhere((x) => x.title === 'TypeError: card <num> declined' || x.title.startsWith('TypeError: card'));
    expect(g.firstRelease).toBe('shop@2.0.0');
    const ev = await t.api<{ events: StoredErrorEvent[] }>(`/api/errors/${g.id}/events`);
    expect(ev.body.events[0]).toMatchObject({ environment: 'staging', release: 'shop@2.0.0', tags: { team: 'payments' } });
    const staging = await t.api<GroupList>('/api/errors?environment=staging');
    expect(staging.body.groups.map((x) => x.id)).toEqual([g.id]);
    const newIn = await t.api<GroupList>(`/api/errors?newInRelease=${encodeURIComponent('shop@2.0.0')}`);
    expect(newIn.body.groups.map((x) => x.id)).toEqual([g.id]);
  });

  it('resolve then re-send → regressed, and error.regressed is emitted', async () => {
    const [g] = await groupsWhere((x) => x.title.startsWith('RangeError') && x.components[0] === 'frames');
    const seen: string[] = [];
    const off = t.server.errorEvents.on('error.regressed', ({ group }) => seen.push(group.id));
    const patched = await t.api<{ group: ErrorGroup }>(`/api/errors/${g.id}`, { method: 'PATCH', body: { status: 'resolved' } });
    expect(patched.body.group.status).toBe('resolved');
    try { failPayment(); } catch (e) { Sentry.captureException(e); }
    await Sentry.flush(5000);
    await eventually(async () => ((await t.api<GroupDetail>(`/api/errors/${g.id}`)).body.group.status === 'regressed' ? true : undefined));
    expect(seen).toContain(g.id);
    off();
    const regressed = await t.api<GroupList>('/api/errors?status=regressed');
    expect(regressed.body.groups.map((x) => x.id)).toContain(g.id);
  });
});
