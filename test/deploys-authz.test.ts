import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deploy } from '../src/deploys/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { callApi, eventually, stateUrlFor } from './helpers/server.js';
import { anyOf } from './helpers/match.js';

/**
 * Who may make tightloop act on a deploy, on a real server: recording needs the member role, the
 * record's actor is the caller and its previous version tightloop's own; a deploy known only from
 * telemetry (tokenless on loopback) that fails verification runs no action at all.
 */

let server: RunningServer;
let dataDir: string;
let admin: string;
let member: string;
let viewer: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-deploys-authz-'));
  mkdirSync(join(dataDir, 'actions'));
  writeFileSync(join(dataDir, 'actions', 'revert.yaml'), [
    'kind: command',
    'params:',
    '  SERVICE: { type: string, required: true }',
    '  VERSION: { type: string, required: true }',
    '  PREVIOUS_VERSION: { type: string, required: true }',
    'argv: [node, -e, "process.stdout.write(process.argv.slice(1).join(\' \'))", "${SERVICE}", "${VERSION}", "${PREVIOUS_VERSION}"]',
    '',
  ].join('\n'));
  writeFileSync(join(dataDir, 'services.yaml'), 'services:\n  - name: pay\n    environment: prod\n    rollbackAction: revert\n    rollback: auto\n');
  server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }), {
    deploys: { verify: { maxDurationS: 30, minSamples: 60, minReferenceSamples: 100 }, tickMs: 100 },
  });
  admin = server.adminToken ?? '';
  member = (await server.createUser('mia', 'member')).token;
  viewer = (await server.createUser('vic', 'viewer')).token;
});

afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface ErrorBody { error: { code: string; message: string } }

/** OTLP/JSON SERVER spans of one version, posted without a token (the server listens on loopback). */
async function spans(service: string, version: string, n: number, errorRate: number): Promise<void> {
  const now = Date.now() * 1e6;
  const list = Array.from({ length: n }, (_, i) => ({
    traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'POST /pay', kind: 2,
    startTimeUnixNano: String(now - 30e6), endTimeUnixNano: String(now),
    status: { code: i < n * errorRate ? 2 : 1 },
  }));
  const body = JSON.stringify({ resourceSpans: [{
    resource: { attributes: [
      { key: 'service.name', value: { stringValue: service } }, { key: 'service.version', value: { stringValue: version } },
      { key: 'deployment.environment.name', value: { stringValue: 'prod' } },
    ] },
    scopeSpans: [{ scope: { name: 'test' }, spans: list }],
  }] });
  const res = await fetch(`${server.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  expect(res.status).toBe(200);
}

describe('recording deploys', () => {
  it('needs the member role: a viewer gets 403, no token 401', async () => {
    const body = { service: 'pay', version: '0.9', environment: 'prod', verify: false };
    expect((await callApi(server.url, viewer, 'POST', '/api/deploys', body)).status).toBe(403);
    expect((await fetch(`${server.url}/api/deploys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status).toBe(401);
    expect((await server.deploys.list({ service: 'pay' })).length).toBe(0);
  });

  it('takes neither actor nor previousVersion nor a tightloop source from the body; the actor is the caller', async () => {
    for (const extra of [{ previousVersion: 'evil' }, { actor: 'admin' }, { source: 'rollback' }, { source: 'implicit' }]) {
      const r = await callApi<ErrorBody>(server.url, member, 'POST', '/api/deploys', { service: 'pay', version: '1.0', environment: 'prod', verify: false, ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
    }
    const ok = await callApi<Deploy>(server.url, member, 'POST', '/api/deploys', { service: 'pay', version: '1.0', environment: 'prod', verify: false });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ actor: 'mia', source: 'api', previousVersion: null });
    const again = await callApi<Deploy>(server.url, admin, 'POST', '/api/deploys', { service: 'pay', version: '1.1', environment: 'prod', source: 'cli', verify: false });
    expect(again.body).toMatchObject({ actor: 'admin', source: 'cli', previousVersion: '1.0' });
  });
});

describe('telemetry alone', () => {
  it('never makes tightloop act: a failing implicit deploy is verified and runs no action', async () => {
    // Healthy "good", then "bad" with 40 % errors beside it: both first seen in telemetry only.
    const until = Date.now() + 40_000;
    let bad: Deploy | undefined;
    while (Date.now() < until) {
      await spans('pay', 'good', 40, 0.01);
      await spans('pay', 'bad', 40, 0.4);
      bad = (await server.deploys.list({ service: 'pay', version: 'bad' }))[0];
      if (bad?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(bad).toMatchObject({ source: 'implicit', status: 'failed' });
    // The verdict is in; give a rollback every chance to start, then check that none did.
    await new Promise((r) => setTimeout(r, 500));
    const runs = await callApi<{ runs: unknown[] }>(server.url, admin, 'GET', '/api/actions/runs');
    expect(runs.body.runs).toEqual([]);
    expect((await server.deploys.list({ service: 'pay' })).some((d) => d.rollbackOf === bad!.id)).toBe(false);
    expect((await server.deploys.get(bad!.id)).status).toBe('failed');
  }, 60_000);

  it('a failing member-recorded deploy runs no action while no version was seen serving healthily before it', async () => {
    // Nothing recorded for pay passed verification: no target, so the failing explicit deploy is left alone.
    const rec = await callApi<Deploy>(server.url, member, 'POST', '/api/deploys', { service: 'pay', version: 'worse', environment: 'prod' });
    expect(rec.status).toBe(201);
    expect(await server.deploys.rollbackTarget(rec.body)).toBeNull();
    expect((await callApi<{ rollbackTarget: string | null; previousVersion: string | null }>(server.url, viewer, 'GET', `/api/deploys/${rec.body.id}`)).body)
      .toMatchObject({ rollbackTarget: null, previousVersion: anyOf(String) });
    const failed = await eventually(async () => {
      await spans('pay', 'good', 40, 0.01);
      await spans('pay', 'worse', 40, 0.4);
      const d = await server.deploys.get(rec.body.id);
      return d.status === 'failed' ? d : undefined;
    }, 40_000);
    expect(failed.status).toBe('failed');
    await new Promise((r) => setTimeout(r, 500));
    expect((await callApi<{ runs: unknown[] }>(server.url, admin, 'GET', '/api/actions/runs')).body.runs).toEqual([]);
  }, 60_000);
});
