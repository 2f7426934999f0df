import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, startTestServer, type TestServer } from './helpers/server.js';

/**
 * The writes a viewer used to be able to make (issue 22, item 5), each refused; the same calls
 * by a member go through; and no silence may mute every alert, whoever asks.
 */

let server: TestServer;
let member: string;
let viewer: string;

async function user(name: string, role: string): Promise<string> {
  const r = await callApi<{ token: string }>(server.url, server.token, 'POST', '/api/users', { name, role });
  expect(r.status).toBe(201);
  return r.body.token;
}

beforeAll(async () => {
  server = await startTestServer();
  member = await user('mia', 'member');
  viewer = await user('vic', 'viewer');
});

afterAll(async () => {
  await server.close();
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
