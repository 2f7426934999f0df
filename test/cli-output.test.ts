import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { renderStory } from '../src/cli/incidents.js';
import { run } from '../src/cli/main.js';
import { ruleCondition } from '../src/cli/rule-text.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * What list commands print for people: `--version`, `deploy list`, `rule list` (with each rule's
 * condition), `access list` (user and resource by name, the access asked for and for how long),
 * and `incident show` linking into the console rather than to the JSON API. Run against a real
 * server in this process.
 */

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
  try {
    return { code: await run(['node', 'tightloop', ...args]), out, err };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

const cli = (...args: string[]) => runCli([...args, '--url', server.url, '--token', server.token]);

/** The rows of a column listing, split on runs of two or more spaces. */
const rows = (text: string): string[][] => text.trimEnd().split('\n').map((l) => l.split(/ {2,}/));

describe('tightloop --version', () => {
  it('prints the package version and exits 0; `deploy record --version` is still the deploy\'s version', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect([r.code, r.out.trim()]).toEqual([0, pkg.version]);
    }
    const rec = await cli('deploy', 'record', '--service', 'ver', '--version', '9.9.9', '--no-verify', '--json');
    expect(rec.code, rec.err).toBe(0);
    expect((JSON.parse(rec.out) as { version: string }).version).toBe('9.9.9');
  });
});

describe('tightloop deploy list', () => {
  it('lists deploys newest first in columns, filtered by service', async () => {
    for (const v of ['1.0.0', '1.1.0']) expect((await cli('deploy', 'record', '--service', 'cart', '--version', v, '--commit', 'abcdef0123456789', '--no-verify')).code).toBe(0);
    expect((await cli('deploy', 'record', '--service', 'other', '--version', '7.0.0', '--no-verify')).code).toBe(0);
    const r = await cli('deploy', 'list', '--service', 'cart');
    expect(r.code, r.err).toBe(0);
    const [head, first, second, ...rest] = rows(r.out);
    expect(head).toEqual(['STARTED', 'SERVICE', 'VERSION', 'ENVIRONMENT', 'STATUS', 'SOURCE', 'COMMIT', 'ID']);
    expect(rest).toEqual([]);
    expect(first.slice(1, 3)).toEqual(['cart', '1.0.0 → 1.1.0']);
    expect(first[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(first[6]).toBe('abcdef012345');
    expect(second.slice(1, 3)).toEqual(['cart', '1.0.0']);
    const json = await cli('deploy', 'list', '--service', 'cart', '--limit', '1', '--json');
    expect((JSON.parse(json.out) as Array<{ version: string }>).map((d) => d.version)).toEqual(['1.1.0']);
    expect((await cli('deploy', 'list', '--limit', '0')).code).toBe(2);
    expect((await cli('deploy', 'list', '--service', 'nothing-here')).out).toBe('no deploys\n');
  });
});

describe('tightloop rule list', () => {
  it('prints id, source, type, name and the condition in columns', async () => {
    const res = await fetch(`${server.url}/api/rules`, {
      method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cart errors', type: 'threshold', select: { service: 'cart' }, by: ['service'], signal: 'error_rate', threshold: 0.02, window: '5m', keep_firing_for: '30s' }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const r = await cli('rule', 'list');
    expect(r.code, r.err).toBe(0);
    const [head, ...body] = rows(r.out);
    expect(head).toEqual(['ID', 'SOURCE', 'TYPE', 'NAME', 'CONDITION']);
    expect(body).toContainEqual([id, 'api', 'threshold', 'cart errors', 'error_rate > 2 % over 5 min where service=cart by service (keep firing 30 s)']);
  });

  it('words every rule type\'s condition', () => {
    expect(ruleCondition({ type: 'threshold', signal: 'p95_ms', op: '>=', threshold: 300, window: 60_000, for: 120_000, by: [] }))
      .toBe('p95_ms >= 300 ms over 1 min (for 2 min)');
    expect(ruleCondition({ type: 'metric', metric: 'queue.depth', agg: 'max', op: '>', threshold: 100, window: 30_000 })).toBe('max(queue.depth) > 100 over 30 s');
    expect(ruleCondition({ type: 'log', match: { min_severity: 'ERROR', pattern: 'timeout' }, signal: 'count', op: '>', threshold: 5, window: 60_000 }))
      .toBe('log records >= ERROR "timeout" count > 5 over 1 min');
    expect(ruleCondition({ type: 'slo', objective: 0.999 })).toBe('SLO 99.9 % (multi-window burn rates)');
    expect(ruleCondition({ type: 'absence', for: 300_000 })).toBe('no data for 5 min');
    expect(ruleCondition({ type: 'error', event: 'new_group', resolve_after: 3_600_000 })).toBe('error new_group (resolves after 1 h)');
    expect(ruleCondition({ type: 'error', event: 'spike', factor: 3, window: 300_000 })).toBe('error spike ×3 over 5 min');
  });
});

describe('tightloop access list', () => {
  it('names the user and resource, the access asked for, for how long, its status and reason', async () => {
    const added = await cli('user', 'add', 'mia', '--role', 'member');
    expect(added.code, added.err).toBe(0);
    const miaToken = /only its hash is stored\): (\S+)/.exec(added.out)?.[1] ?? '';
    expect((await cli('resource', 'add', 'orders', '--host', '127.0.0.1', '--port', '5432', '--database', 'orders', '--user', 'app',
      '--credential', 'env:TIGHTLOOP_CRED_ORDERS', '--tls', 'disable')).code).toBe(0);
    const req = await runCli(['access', 'request', 'orders', '--mode', 'write', '--for', '30m', '--reason', 'check the failed checkouts', '--url', server.url, '--token', miaToken]);
    expect(req.code, req.err).toBe(0);
    const r = await cli('access', 'list');
    expect(r.code, r.err).toBe(0);
    const [head, row] = rows(r.out);
    expect(head).toEqual(['ID', 'USER', 'RESOURCE', 'ACCESS', 'FOR', 'STATUS', 'CREATED', 'REASON', 'STATEMENT']);
    expect([row[1], row[2], row[3], row[4], row[5], row[7]]).toEqual(['mia', 'orders', 'write', '30m', 'pending', 'check the failed checkouts']);
    const json = JSON.parse((await cli('access', 'list', '--json')).out) as { requests: unknown[] };
    expect(json.requests).toHaveLength(1);
  });
});

describe('tightloop incident show', () => {
  it('links the incident, its traces and logs in the console, never the JSON API', () => {
    const text = renderStory({
      incident: {
        id: '01INC', title: 'deploy shop 2.0.0 failed verification', service: 'shop', environment: 'production', status: 'resolved',
        firstBadAt: '2026-12-07T06:01:31.000Z', detectedAt: '2026-12-07T06:01:32.777Z', acknowledgedBy: null, assignee: null,
        resolvedAt: '2026-12-07T06:01:57.871Z', suspectDeployId: null,
      },
      suspectDeploy: null,
      times: { mttdMs: 1777, mttaMs: null, mttrMs: 26_900 },
      links: {
        traces: 'http://127.0.0.1:4318/api/traces?service=shop&status=error&from=1796623291000&to=1796623317871',
        logs: 'http://127.0.0.1:4318/api/logs?service=shop&severity=warn&from=1796623291000&to=1796623317871',
      },
      timeline: [],
    }, 'http://127.0.0.1:4318/');
    const first = Date.parse('2026-12-07T06:01:31.000Z'), end = Date.parse('2026-12-07T06:01:57.871Z');
    expect(text).toContain(`  console http://127.0.0.1:4318/incidents/01INC?from=${first - 120_000}&to=${end + 180_000}\n`);
    expect(text).toContain('  traces http://127.0.0.1:4318/traces?service=shop&status=error&from=1796623291000&to=1796623317871\n');
    expect(text).toContain('  logs http://127.0.0.1:4318/logs?service=shop&severity=warn&from=1796623291000&to=1796623317871\n');
    expect(text).not.toContain('/api/');
  });
});
