import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import type { ActionRun } from '../src/deploys/actions/index.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { callApi, stateUrlFor } from './helpers/server.js';
import { matching } from './helpers/match.js';

/** Actions through a real tightloop: REST API, `tightloop action ...`, approvals, audit. */

let server: RunningServer;
let dataDir: string;
let token: string;
let bob: { token: string };

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-actions-api-'));
  const actionsDir = join(dataDir, 'runbooks');
  mkdirSync(actionsDir);
  writeFileSync(join(actionsDir, 'greet.yaml'), `
description: Says hello
params:
  NAME: { type: string, required: true, pattern: "[A-Za-z]+" }
  TIMES: { type: int, default: 1, min: 1, max: 3 }
kind: command
argv: [node, -e, "process.stdout.write(('hello ' + process.argv[1] + ' ').repeat(Number(process.argv[2])).trim())", "\${NAME}", "\${TIMES}"]
`);
  writeFileSync(join(actionsDir, 'explode.yaml'), 'kind: command\nargv: [node, -e, "process.exit(2)"]\n');
  writeFileSync(join(actionsDir, 'restart-db.yaml'), 'kind: command\napproval: required\nargv: [node, -e, "process.stdout.write(\'restarted\')"]\n');
  writeFileSync(join(actionsDir, 'typo.yaml'), 'kind: comand\nargv: [true]\n');
  const config = serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent', actionsDir });
  server = await startServer(config, pino({ level: 'silent' }));
  token = server.adminToken ?? '';
  bob = await server.createUser('bob', 'admin');
});

afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown, as = token): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, as, method, path, body);
}

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return cliAs(token, ...args);
}

/** `tightloop ...` with another user's token (e.g. a second admin approving). */
async function cliAs(as: string, ...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    const code = await run(['node', 'tightloop', ...args, '--url', server.url, '--token', as]);
    return { code, out };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('actions API', () => {
  it('lists file and built-in actions, and names a file that did not load', async () => {
    const r = await api<{ actions: { name: string; kind: string; source: string }[]; errors: { file: string; message: string }[] }>('GET', '/api/actions');
    expect(r.status).toBe(200);
    expect(r.body.actions.map((a) => a.name)).toEqual(['explode', 'greet', 'local-deploy', 'local-rollback', 'restart-db']);
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0].message).toMatch(/typo\.yaml:1: kind: /);
    const typo = await api<{ error: { code: string; message: string } }>('POST', '/api/actions/typo/runs', { params: {} });
    expect(typo.status).toBe(400);
    expect(typo.body.error.code).toBe('action_file_invalid');
  });

  it('answers bad parameters with 400 naming each one', async () => {
    const r = await api<{ error: { code: string; message: string } }>('POST', '/api/actions/greet/runs', { params: { NAME: 'x1', TIMES: 7, COLOR: 'red' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: 'action_params_invalid',
      message: `action greet: param 'COLOR': unknown parameter (known: NAME, TIMES); param 'NAME': "x1" does not match pattern [A-Za-z]+; param 'TIMES': must be ≤ 3, got 7`,
    });
    expect((await api('POST', '/api/actions/nope/runs', { params: {} })).status).toBe(404);
  });

  it('does not let a viewer run actions or start rollouts', async () => {
    const viewer = await server.createUser('vera', 'viewer');
    const r = await api<{ error: { code: string; message: string } }>('POST', '/api/actions/greet/runs', { params: { NAME: 'Ada' } }, viewer.token);
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'forbidden', message: matching(/needs the member role/) });
    const ro = await api<{ error: { code: string } }>('POST', '/api/deploys/rollouts', { service: 'shop', version: '2' }, viewer.token);
    expect(ro.status).toBe(403);
  });

  it('runs an action and returns the finished run with wait', async () => {
    const r = await api<ActionRun>('POST', '/api/actions/greet/runs', { params: { NAME: 'Ada', TIMES: '2' }, wait: true });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ action: 'greet', status: 'succeeded', exitCode: 0, actor: 'admin', params: { NAME: 'Ada', TIMES: 2 }, output: 'hello Ada hello Ada' });
    const got = await api<ActionRun>('GET', `/api/actions/runs/${r.body.id}`);
    expect(got.body.output).toBe('hello Ada hello Ada');
  });

  it('needs another admin to approve a guarded action', async () => {
    const r = await api<ActionRun>('POST', '/api/actions/restart-db/runs', { params: {} });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending_approval');
    const own = await api<{ error: { message: string } }>('POST', `/api/actions/runs/${r.body.id}/approve`, {});
    expect(own.status).toBe(403);
    expect(own.body.error.message).toBe('you cannot approve your own action run');
    const ok = await api<ActionRun>('POST', `/api/actions/runs/${r.body.id}/approve`, { note: 'go' }, bob.token);
    expect(ok.status).toBe(200);
    expect(ok.body.decidedBy).toBe('bob');
    const done = await server.actions.waitFor(r.body.id);
    expect(done).toMatchObject({ status: 'succeeded', output: 'restarted' });
  });
});

describe('tightloop action', () => {
  it('run --wait prints the output and exits 0; a failing action exits 1 and is recorded failed', async () => {
    const ok = await cli('action', 'run', 'greet', '--param', 'NAME=Grace', '--wait');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/greet {2}succeeded {2}exit 0/);
    expect(ok.out).toContain('hello Grace');
    const bad = await cli('action', 'run', 'explode', '--wait', '--json');
    expect(bad.code).toBe(1);
    const out = JSON.parse(bad.out) as ActionRun;
    expect(out).toMatchObject({ status: 'failed', exitCode: 2, error: 'exited with code 2' });
  });

  it('reports bad parameters as a usage error (exit 2)', async () => {
    const r = await cli('action', 'run', 'greet', '--param', 'TIMES=zero');
    expect(r.code).toBe(2);
    expect(r.out).toContain(`param 'NAME': required (string); param 'TIMES': expected an integer, got "zero"`);
    expect((await cli('action', 'run', 'greet', '--param', 'oops')).code).toBe(2);
  });

  it('approve: a guarded run waits until a second admin approves it, then runs', async () => {
    const started = await cli('action', 'run', 'restart-db', '--json');
    expect(started.code).toBe(0);
    const pending = JSON.parse(started.out) as ActionRun;
    expect(pending.status).toBe('pending_approval');
    // The requester cannot approve their own run: 403 from the server (exit 2, like any refused auth), still pending.
    const own = await cli('action', 'approve', pending.id);
    expect(own.code).toBe(2);
    expect(own.out).toContain('you cannot approve your own action run');
    expect((await api<ActionRun>('GET', `/api/actions/runs/${pending.id}`)).body.status).toBe('pending_approval');

    const ok = await cliAs(bob.token, 'action', 'approve', pending.id, '--note', 'checked with on-call');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(new RegExp(`^run ${pending.id} {2}restart-db {2}(running|succeeded)`));
    const done = await server.actions.waitFor(pending.id);
    expect(done).toMatchObject({ status: 'succeeded', output: 'restarted', decidedBy: 'bob' });
    expect((await api<ActionRun>('GET', `/api/actions/runs/${pending.id}`)).body.status).toBe('succeeded');
    // Deciding twice is a conflict (exit 1).
    const again = await cliAs(bob.token, 'action', 'approve', pending.id);
    expect(again.code).toBe(1);
    expect(again.out).toContain('not pending approval');

    const audit = await api<{ records: { actor: string; resource: string; data: Record<string, unknown> }[] }>('GET', '/api/audit?kind=action.approved&limit=100');
    expect(audit.body.records.find((x) => x.data.run === pending.id)).toMatchObject({ actor: 'bob', resource: 'action:restart-db', data: { note: 'checked with on-call' } });
  });

  it('list shows actions with their parameters', async () => {
    const r = await cli('action', 'list');
    expect(r.code).toBe(0);
    expect(r.out).toContain('greet  command  NAME:string [TIMES:int=1]');
    expect(r.out).toContain('restart-db  command  (approval required)');
    expect(r.out).toContain('not loaded: ');
  });
});

describe('audit and OpenAPI', () => {
  it('records every run in the audit chain, which verifies', async () => {
    const r = await api<{ records: { actor: string; resource: string; data: Record<string, unknown> }[] }>('GET', '/api/audit?kind=action.run&limit=100');
    const failed = r.body.records.find((x) => x.resource === 'action:explode');
    expect(failed).toMatchObject({ actor: 'admin', data: { status: 'failed', exitCode: 2, params: {} } });
    expect(r.body.records.find((x) => x.resource === 'action:restart-db')?.data).toMatchObject({ status: 'succeeded', approvedBy: 'bob' });
    expect((await api<{ ok: boolean }>('GET', '/api/audit/verify')).body.ok).toBe(true);
  });

  it('describes the routes', async () => {
    const doc = await api<{ paths: Record<string, unknown> }>('GET', '/api/openapi.json');
    for (const p of ['/api/actions', '/api/actions/{name}/runs', '/api/actions/runs/{id}', '/api/actions/runs/{id}/approve', '/api/deploys/rollouts', '/api/local-services']) {
      expect(doc.body.paths[p], p).toBeDefined();
    }
  });
});
