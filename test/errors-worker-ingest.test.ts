import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freePort, upChild } from './helpers/child-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The built server (bin/tightloop, so error commits run in the worker thread, which also parses
 * the Sentry event items): events committed together stay independent per request — a request
 * whose event item is not JSON answers 400 and stores none of its events, while requests in
 * the same commit are stored and counted; gzip envelopes answer with their event ids.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-errors-worker-'));
let child: ChildProcess | undefined;
let url = '';
let key = '';
let token = '';

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  child = await upChild(dataDir, port);
  token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const projects = await api<{ projects: { id: number; dsn: string }[] }>('/api/projects');
  key = new URL(projects.projects[0].dsn).username;
}, 40_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(path: string): Promise<T> {
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

const newId = (): string => crypto.randomUUID().replace(/-/g, '');

function item(json: string): string {
  return `${JSON.stringify({ type: 'event', length: Buffer.byteLength(json) })}\n${json}\n`;
}

function event(id: string, message: string): string {
  return JSON.stringify({ event_id: id, message, level: 'error', release: 'w1', timestamp: Date.now() / 1000 });
}

async function post(body: string, gzip: boolean): Promise<{ status: number; body: { id?: string; error?: { code: string; message: string } } }> {
  const res = await fetch(`${url}/api/1/envelope/?sentry_key=${key}`, {
    method: 'POST', body: gzip ? new Uint8Array(gzipSync(body)) : body,
    headers: { 'content-type': 'application/x-sentry-envelope', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
  });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: { code: string; message: string } } };
}

interface Group { id: string; title: string; count: number; latestEventId: string }

describe('Sentry events parsed in the commit worker', () => {
  it('a bad event item fails only its own request; the others of the same commit are stored and counted', async () => {
    const good = Array.from({ length: 20 }, () => newId());
    const spoiled = newId();
    // The envelope header has no event_id: the id in the answer comes back from the worker.
    const results = await Promise.all([
      ...good.map((id, i) => post(`{}\n${item(event(id, 'worker batch event'))}`, i % 2 === 0)),
      post(`{}\n${item(event(spoiled, 'worker spoiled event'))}${item('{not json')}`, true),
      post(`{}\n${item('[1,2]')}`, false),
    ]);
    expect(results.slice(0, good.length).map((r) => r.body.id)).toEqual(good);
    expect(results[good.length]).toMatchObject({ status: 400, body: { error: { code: 'invalid_envelope', message: 'malformed envelope: event item is not JSON' } } });
    expect(results[good.length + 1]).toMatchObject({ status: 400, body: { error: { message: 'malformed envelope: event item is not a JSON object' } } });

    const batch = await api<{ groups: Group[] }>('/api/errors?q=worker%20batch');
    expect(batch.groups).toHaveLength(1);
    expect(batch.groups[0].count).toBe(good.length);
    const events = await api<{ events: { eventId: string }[] }>(`/api/errors/${batch.groups[0].id}/events?limit=100`);
    expect(events.events.map((e) => e.eventId).sort()).toEqual([...good].sort());
    expect((await api<{ groups: Group[] }>('/api/errors?q=worker%20spoiled')).groups).toEqual([]);

    // Still serving after the bad ones.
    const after = newId();
    expect(await post(`{}\n${item(event(after, 'worker batch event'))}`, true)).toMatchObject({ status: 200, body: { id: after } });
  }, 30_000);
});
