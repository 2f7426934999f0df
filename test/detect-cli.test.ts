import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer } from '../src/http/server.js';
import { startTestServer, type TestServer, stateUrlFor } from './helpers/server.js';

/** `tightloop silence add|list|rm` against a running server, the rules API, and rules.yaml errors at start. */

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return runCli([...args, '--url', server.url, '--token', server.token]);
}

async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    const code = await run(['node', 'tightloop', ...args]);
    return { code, out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('tightloop silence', () => {
  it('adds, lists and removes a silence through the API', async () => {
    const added = await cli('silence', 'add', 'service=checkout', 'operation=~GET .*', '--duration', '2h', '--comment', 'deploy', '--json');
    expect(added.code).toBe(0);
    const s = JSON.parse(added.out) as { id: string; matchers: unknown[] };
    expect(s.matchers).toEqual([{ name: 'service', op: '=', value: 'checkout' }, { name: 'operation', op: '=~', value: 'GET .*' }]);
    const listed = await cli('silence', 'list');
    expect(listed.out).toContain(s.id);
    expect(listed.out).toContain('service=checkout');
    expect((await cli('silence', 'rm', s.id)).code).toBe(0);
    const after = JSON.parse((await cli('silence', 'list', '--json')).out) as unknown[];
    expect(after).toEqual([]);
    expect((await cli('silence', 'add', 'nonsense')).code).toBe(2);
    expect((await cli('silence', 'rm', 'nope')).code).toBe(1);
  });

  it('rules API: create, validate, update, delete', async () => {
    const post = (body: unknown, method = 'POST', path = '/api/rules'): Promise<Response> => fetch(server.url + path, {
      method, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const bad = await post({ name: 'x', type: 'threshold', signal: 'error_rate', threshold: 0.1, window: '5q' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("window: invalid duration '5q'");
    const ok = await post({ name: 'slo checkout', type: 'slo', objective: 0.999, select: { service: 'checkout' } });
    expect(ok.status).toBe(201);
    const rule = (await ok.json()) as { id: string; spec: { period: number } };
    expect(rule.spec.period).toBe(30 * 86_400_000);
    expect((await post({ name: 'slo checkout', type: 'absence' })).status).toBe(409);
    expect((await post({ name: 'slo checkout', type: 'absence', for: '2m' }, 'PUT', `/api/rules/${rule.id}`)).status).toBe(200);
    const list = await server.api<{ rules: Array<{ id: string; spec: { type: string } }> }>('/api/rules');
    expect(list.body.rules.map((r) => r.spec.type)).toEqual(['absence']);
    expect((await fetch(`${server.url}/api/rules/${rule.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${server.token}` } })).status).toBe(204);
    expect((await server.api<{ rules: unknown[] }>('/api/rules')).body.rules).toEqual([]);
    // Patterns run in linear time; what needs backtracking is a precise 400.
    const backref = await post({ name: 'x', type: 'log', match: { regex: '(a)\\1' }, threshold: 1 });
    expect(backref.status).toBe(400);
    expect(((await backref.json()) as { error: { message: string } }).error.message).toContain('match.regex: unsupported pattern: backreferences are not supported');
    const redos = await post({ name: 'redos', type: 'log', match: { regex: '^(a|aa)+$' }, threshold: 1 });
    expect(redos.status).toBe(201);
    const redosId = ((await redos.json()) as { id: string }).id;
    expect((await fetch(`${server.url}/api/rules/${redosId}`, { method: 'DELETE', headers: { authorization: `Bearer ${server.token}` } })).status).toBe(204);
    const look = await post({ matchers: [{ name: 'service', op: '=~', value: '(?!checkout).*' }], duration: '1h' }, 'POST', '/api/silences');
    expect(look.status).toBe(400);
    expect(((await look.json()) as { error: { message: string } }).error.message).toContain('matchers.0.value: unsupported pattern: lookaround assertions are not supported');
  });
});

describe('tightloop rule', () => {
  it('adds rules from a file, lists and removes them; check validates a rules.yaml offline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-rule-cli-'));
    try {
      writeFileSync(join(dir, 'new.yaml'), `rules:
  - name: queue depth
    type: metric
    metric: queue.depth
    agg: max
    threshold: 100
    by: [service, attr.queue]
  - name: payment failures
    type: log
    match: { pattern: payment failed, min_severity: ERROR }
    threshold: 5
`);
      const added = await cli('rule', 'add', join(dir, 'new.yaml'), '--json');
      expect(added.code).toBe(0);
      const made = JSON.parse(added.out) as Array<{ id: string; spec: { type: string } }>;
      expect(made.map((r) => r.spec.type)).toEqual(['metric', 'log']);
      const listed = await cli('rule', 'list');
      expect(listed.out).toMatch(/ metric +queue depth +max\(queue\.depth\) > 100 over 1 min/);
      expect(listed.out).toMatch(/ log +payment failures +log records >= ERROR "payment failed" count > 5 over 1 min/);
      writeFileSync(join(dir, 'bad.yaml'), 'name: spike\ntype: error\nevent: spike\nwindow: 10m\nbaseline: 1m\n');
      const bad = await cli('rule', 'add', join(dir, 'bad.yaml'));
      expect(bad.code).toBe(2);
      expect(bad.out).toContain('baseline: baseline must be at least the window');
      for (const r of made) expect((await cli('rule', 'rm', r.id)).code).toBe(0);
      expect((await cli('rule', 'list')).out).toContain('no rules');

      writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - name: a\n    type: metric\n    metric: m\n    agg: median\n    threshold: 1\n');
      const check = await runCli(['rule', 'check', join(dir, 'rules.yaml')]);
      expect(check.code).toBe(1);
      expect(check.out).toMatch(/rules\.yaml:5: rules\.0\.agg:/);
      writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - name: a\n    type: metric\n    metric: m\n    agg: p95\n    threshold: 1\n');
      expect((await runCli(['rule', 'check', join(dir, 'rules.yaml')])).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rules.yaml at start', () => {
  it('a mistake stops the start, naming line and field; fixed, the server starts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-rules-'));
    const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' });
    writeFileSync(join(dataDir, 'rules.yaml'), 'rules:\n  - name: a\n    type: threshold\n    signal: error_rate\n    threshold: high\n');
    await expect(startServer(config, pino({ level: 'silent' }))).rejects.toThrow(/rules\.yaml:5: rules\.0\.threshold:/);
    writeFileSync(join(dataDir, 'rules.yaml'), 'rules:\n  - name: a\n    type: threshold\n    signal: error_rate\n    threshold: 0.5\n');
    const s = await startServer(config, pino({ level: 'silent' }));
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
});
