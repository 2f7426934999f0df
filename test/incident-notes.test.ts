import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { callApi } from './helpers/server.js';

/**
 * Notes on an incident's timeline (POST /api/incidents/:id/notes): members write them, viewers
 * may not, and viewers read them withheld like other free text (http/redact.ts), title included.
 */

let server: RunningServer;
let dataDir: string;
let admin: string;
let member: string;
let viewer: string;
let incidentId: string;

interface Entry { kind: string; title: string; actor: string | null; data: Record<string, unknown> & { redacted?: string[] } }
interface Story { timeline: Entry[] }

async function user(name: string, role: string): Promise<string> {
  const r = await callApi<{ token: string }>(server.url, admin, 'POST', '/api/users', { name, role });
  expect(r.status).toBe(201);
  return r.body.token;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-notes-'));
  server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  admin = server.adminToken!;
  member = await user('mia', 'member');
  viewer = await user('vic', 'viewer');
  const at = new Date().toISOString();
  server.detectEvents.emit('alert.fired', {
    at,
    alert: {
      id: 'n1', status: 'firing', rule: { id: 'file:errors', name: 'errors', type: 'threshold' }, series: { service: 'shop', environment: 'prod' },
      labels: { service: 'shop', environment: 'prod', alertname: 'errors' }, value: 0.5, values: {}, threshold: { signal: 'error_rate', threshold: 0.2 },
      startsAt: at, endsAt: null, links: { console: '', traces: '' },
    },
  });
  await server.incidents.idle();
  const list = await callApi<{ incidents: { id: string }[] }>(server.url, member, 'GET', '/api/incidents');
  expect(list.body.incidents).toHaveLength(1);
  incidentId = list.body.incidents[0].id;
});

afterAll(async () => {
  await server?.close();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('incident notes', () => {
  it('a member adds a note; it lands on the timeline, whole for members', async () => {
    const r = await callApi<{ id: string }>(server.url, member, 'POST', `/api/incidents/${incidentId}/notes`, { note: ' customer ACME-4411 called; card 4111 declined ' });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(incidentId);
    const story = await callApi<Story>(server.url, member, 'GET', `/api/incidents/${incidentId}`);
    const note = story.body.timeline.find((e) => e.kind === 'note');
    expect(note).toMatchObject({ actor: 'mia', title: 'mia noted: customer ACME-4411 called; card 4111 declined', data: { note: 'customer ACME-4411 called; card 4111 declined' } });
  });

  it('bad notes are refused precisely: empty, not text, too long, unknown incident', async () => {
    for (const body of [{}, { note: '   ' }, { note: 42 }, { note: 'x'.repeat(2001) }]) {
      const r = await callApi<{ error: { code: string } }>(server.url, member, 'POST', `/api/incidents/${incidentId}/notes`, body);
      expect(r.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
    }
    expect((await callApi(server.url, member, 'POST', '/api/incidents/nope/notes', { note: 'x' })).status).toBe(404);
  });

  it('a viewer may not add a note, and reads notes (and manual resolution notes) withheld, title included', async () => {
    const r = await callApi<{ error: { code: string } }>(server.url, viewer, 'POST', `/api/incidents/${incidentId}/notes`, { note: 'hi' });
    expect([r.status, r.body.error.code]).toEqual([403, 'forbidden']);
    expect((await callApi(server.url, member, 'POST', `/api/incidents/${incidentId}/resolve`, { note: 'refunded ACME-4411' })).status).toBe(200);
    const story = await callApi<Story>(server.url, viewer, 'GET', `/api/incidents/${incidentId}`);
    expect(story.status).toBe(200);
    const text = JSON.stringify(story.body);
    expect(text).not.toContain('ACME-4411');
    expect(text).not.toContain('4111');
    const note = story.body.timeline.find((e) => e.kind === 'note');
    expect(note).toMatchObject({ actor: 'mia', title: 'mia noted: note withheld', data: { note: null, redacted: ['note'] } });
    const resolved = story.body.timeline.find((e) => e.kind === 'resolved');
    expect(resolved).toMatchObject({ title: 'resolved (manual): note withheld', data: { note: null, redacted: ['note'] } });
    // Members still read both whole; notes are welcome after resolution (a post-mortem).
    expect((await callApi(server.url, member, 'POST', `/api/incidents/${incidentId}/notes`, { note: 'post-mortem: PM-7' })).status).toBe(200);
    const whole = JSON.stringify((await callApi<Story>(server.url, member, 'GET', `/api/incidents/${incidentId}`)).body);
    expect(whole).toContain('refunded ACME-4411');
    expect(whole).toContain('post-mortem: PM-7');
  });
});
