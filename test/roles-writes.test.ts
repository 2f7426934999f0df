import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, startTestServer, type TestServer } from './helpers/server.js';

/**
 * The writes a viewer used to be able to make (issue 22, item 5), each refused; the same calls
 * by a member go through; and no silence may mute every alert, whoever asks.
 */

let server: TestServer;
let member: string;
let viewer: string;
let actionsDir: string;

async function user(name: string, role: string): Promise<string> {
  const r = await callApi<{ token: string }>(server.url, server.token, 'POST', '/api/users', { name, role });
  expect(r.status).toBe(201);
  return r.body.token;
}

beforeAll(async () => {
  actionsDir = mkdtempSync(join(tmpdir(), 'tightloop-roles-actions-'));
  mkdirSync(actionsDir, { recursive: true });
  writeFileSync(join(actionsDir, 'dump.yaml'), 'kind: command\nargv: [node, -e, "process.stdout.write(\'password=hunter2\')"]\n');
  server = await startTestServer({ actionsDir });
  member = await user('mia', 'member');
  viewer = await user('vic', 'viewer');
});

afterAll(async () => {
  await server.close();
  rmSync(actionsDir, { recursive: true, force: true });
});

interface ErrorBody { error: { code: string; message: string } }

describe('viewers read, members act', () => {
  it('a viewer can neither silence, nor change rules, error groups, deploys, projects or incidents', async () => {
    const rule = { name: 'errors', type: 'threshold', signal: 'error_rate', service: 'shop', op: '>', threshold: 0.1, for: '1m' };
    const calls: Array<[string, string, unknown?]> = [
      ['POST', '/api/silences', { matchers: { service: 'shop' }, duration: '1h', comment: 'x' }],
      ['DELETE', '/api/silences/x'],
      ['POST', '/api/rules', rule],
      ['PUT', '/api/rules/x', rule],
      ['DELETE', '/api/rules/x'],
      ['PATCH', `/api/errors/${'0'.repeat(32)}`, { status: 'resolved' }],
      ['POST', '/api/deploys', { service: 'shop', version: '2' }],
      ['POST', '/api/projects', { name: 'mine' }],
      ['POST', '/api/incidents/x/ack'],
      ['POST', '/api/incidents/x/assign', { assignee: 'vic' }],
      ['POST', '/api/incidents/x/resolve'],
    ];
    for (const [method, path, body] of calls) {
      const r = await callApi<ErrorBody>(server.url, viewer, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe('forbidden');
    }
    expect((await callApi<{ silences: unknown[] }>(server.url, viewer, 'GET', '/api/silences')).body.silences).toEqual([]);
    expect((await callApi<{ deploys: unknown[] }>(server.url, viewer, 'GET', '/api/deploys')).body.deploys).toEqual([]);
  });

  it('a member silences one service; nobody may silence everything', async () => {
    const ok = await callApi<{ id: string; createdBy: string }>(server.url, member, 'POST', '/api/silences', { matchers: { service: 'shop' }, duration: '1h', comment: 'deploy' });
    expect(ok.status).toBe(201);
    expect(ok.body.createdBy).toBe('mia');
    const everything = [
      [{ name: 'service', op: '=~', value: '.*' }],
      [{ name: 'service', op: '=~', value: '.+' }],
      [{ name: 'service', op: '=~', value: 'x|.*' }],
      [{ name: 'service', op: '!=', value: 'nothing' }],
      [{ name: 'service', op: '!~', value: 'nothing' }],
      [{ name: 'env', op: '=', value: '' }],
      [{ name: 'service', op: '=~', value: '.*' }, { name: 'rule', op: '!=', value: 'x' }],
    ];
    for (const matchers of everything) {
      for (const token of [member, server.token]) {
        const r = await callApi<ErrorBody>(server.url, token, 'POST', '/api/silences', { matchers, duration: '1h', comment: 'all' });
        expect(r.status, JSON.stringify(matchers)).toBe(400);
        expect(r.body.error.message).toMatch(/matches everything/);
      }
    }
    // One narrowing matcher is enough, beside broad ones.
    const narrowed = await callApi(server.url, member, 'POST', '/api/silences', {
      matchers: [{ name: 'service', op: '=~', value: 'shop|cart' }, { name: 'env', op: '!=', value: 'dev' }], duration: '1h', comment: 'two',
    });
    expect(narrowed.status).toBe(201);
    const list = (await callApi<{ silences: unknown[] }>(server.url, viewer, 'GET', '/api/silences')).body.silences;
    expect(list).toHaveLength(2);
    expect((await callApi(server.url, member, 'DELETE', `/api/silences/${ok.body.id}`)).status).toBe(200);
  });
});

describe('what viewers read', () => {
  it('access requests and action runs: metadata, not reasons, notes or output; members see them whole', async () => {
    const res = await callApi(server.url, server.token, 'POST', '/api/resources', { name: 'crm', host: '127.0.0.1', port: 5432, database: 'crm', user: 'app', credential: 'env:TIGHTLOOP_CRED_CRM_DB', tls: { mode: 'disable' } });
    expect(res.status).toBe(201);
    const asked = await callApi<{ id: string }>(server.url, member, 'POST', '/api/access/requests', { resource: 'crm', mode: 'read', duration: '10m', reason: 'ticket 4711: customer Jane Doe' });
    expect(asked.status).toBe(201);
    const denied = await callApi(server.url, server.token, 'POST', `/api/access/requests/${asked.body.id}/deny`, { note: 'ask Jane first' });
    expect(denied.status).toBe(200);
    const run = await callApi<{ id: string; output: string }>(server.url, member, 'POST', '/api/actions/dump/runs', { wait: true });
    expect(run.body.output).toBe('password=hunter2');

    const one = await callApi<Record<string, unknown>>(server.url, viewer, 'GET', `/api/access/requests/${asked.body.id}`);
    expect(one.body).toMatchObject({ id: asked.body.id, status: 'denied', mode: 'read', reason: null, note: null, redacted: ['reason', 'note'] });
    const list = await callApi<{ requests: Array<Record<string, unknown>> }>(server.url, viewer, 'GET', '/api/access/requests');
    expect(list.body.requests.map((r) => [r.reason, r.note])).toEqual([[null, null]]);
    const runs = await callApi<{ runs: Array<Record<string, unknown>> }>(server.url, viewer, 'GET', '/api/actions/runs');
    expect(runs.body.runs).toEqual([expect.objectContaining({ id: run.body.id, status: 'succeeded', output: null, redacted: ['output'] })]);
    expect((await callApi<Record<string, unknown>>(server.url, viewer, 'GET', `/api/actions/runs/${run.body.id}`)).body.output).toBeNull();
    expect(JSON.stringify([one.body, list.body, runs.body])).not.toMatch(/Jane|hunter2/);

    expect((await callApi<Record<string, unknown>>(server.url, member, 'GET', `/api/access/requests/${asked.body.id}`)).body).toMatchObject({ reason: 'ticket 4711: customer Jane Doe', note: 'ask Jane first' });
    expect((await callApi<Record<string, unknown>>(server.url, member, 'GET', `/api/actions/runs/${run.body.id}`)).body.output).toBe('password=hunter2');
  });
});
