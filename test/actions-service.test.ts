import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionParamsError, ActionService, parseActionsYaml, validateParams, type Actor } from '../src/deploys/actions/index.js';
import { AuditChain, gatewayMigrations } from '../src/gateway/index.js';
import type { StateStore } from '../src/state/index.js';
import { openTestStateStore } from '../src/state/dialects.conformance.js';
import { actionsMigrations } from '../src/deploys/actions/index.js';

/**
 * Actions against real parts: real child processes, a real HTTP receiver for webhooks, a real
 * SQLite state store and the gateway's real audit chain.
 */

const alice: Actor = { userId: 'u-alice', userName: 'alice', role: 'admin' };
const bob: Actor = { userId: 'u-bob', userName: 'bob', role: 'admin' };
const viewer: Actor = { userId: 'u-carol', userName: 'carol', role: 'viewer' };

let dir: string;
let state: StateStore;
let audit: AuditChain;
let actions: ActionService;
let hook: Server;
let hookUrl: string;
const received: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];

const ACTIONS = `
actions:
  - name: echo-args
    kind: command
    params:
      MESSAGE: { type: string, required: true }
      COUNT: { type: int, default: 1, min: 1, max: 5 }
    argv: [node, -e, "process.stdout.write(JSON.stringify(process.argv.slice(1)))", "\${MESSAGE}", "n=\${COUNT}"]
  - name: fail
    kind: command
    argv: [node, -e, "console.error('disk full'); process.exit(3)"]
  - name: slow
    kind: command
    timeoutS: 0.5
    argv: [node, -e, "setTimeout(() => {}, 60000)"]
  - name: chatty
    kind: command
    maxOutputBytes: 1000
    argv: [node, -e, "process.stdout.write('x'.repeat(50000))"]
  - name: env-check
    kind: command
    params:
      REGION: { type: enum, values: [eu, us], required: true }
    env: { TARGET_REGION: "\${REGION}" }
    argv: [node, -e, "process.stdout.write(JSON.stringify({ region: process.env.TARGET_REGION, token: process.env.TIGHTLOOP_TOKEN ?? null }))"]
  - name: dispatch
    kind: webhook
    params:
      REF: { type: string, required: true, pattern: "[a-z0-9/._-]+" }
      DRY_RUN: { type: bool, default: false }
    url: "HOOK/repos/shop/dispatches?ref=\${REF}"
    headers: { Authorization: "Bearer \${env:ACTIONS_TEST_SECRET}" }
    body: { event_type: deploy, client_payload: { ref: "\${REF}", dry_run: "\${DRY_RUN}", note: "ref \${REF}" } }
  - name: dispatch-quick
    kind: webhook
    params:
      REF: { type: string, required: true }
    url: "HOOK/repos/shop/dispatches?ref=\${REF}"
    timeoutS: 0.3
  - name: guarded
    kind: command
    approval: required
    params:
      SERVICE: { type: string, required: true }
    argv: [node, -e, "process.stdout.write('restarted ' + process.argv[1])", "\${SERVICE}"]
`;

beforeAll(async () => {
  process.env.ACTIONS_TEST_SECRET = 's3cret';
  process.env.TIGHTLOOP_TOKEN = 'must-not-leak';
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.includes('ref=slow')) {
        setTimeout(() => res.end(), 3_000).unref();
        return;
      }
      res.writeHead(req.url?.includes('ref=broken') ? 422 : 204);
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}`;
  dir = mkdtempSync(join(tmpdir(), 'tightloop-actions-'));
  mkdirSync(join(dir, 'actions'));
  writeFileSync(join(dir, 'actions', 'team.yaml'), ACTIONS.replaceAll('HOOK', hookUrl));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: { ...gatewayMigrations, ...actionsMigrations } });
  const log = pino({ level: 'silent' });
  audit = new AuditChain(state.db as never, log);
  await audit.open();
  actions = new ActionService({ db: state.db, actionsDir: join(dir, 'actions'), audit, log });
  await actions.open();
});

afterAll(async () => {
  delete process.env.TIGHTLOOP_TOKEN;
  await actions.close();
  await audit.close();
  await state.close();
  await new Promise<void>((r) => hook.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function runToEnd(name: string, params: Record<string, unknown>, who: Actor = alice) {
  const { done } = await actions.start(name, params, who);
  return done;
}

describe('parameters', () => {
  const specs = parseActionsYaml(ACTIONS.replaceAll('HOOK', 'http://x'), 'team.yaml');
  const dispatch = specs.find((a) => a.name === 'dispatch')!;
  const echo = specs.find((a) => a.name === 'echo-args')!;
  const region = specs.find((a) => a.name === 'env-check')!;

  it('converts text values strictly and applies defaults', () => {
    expect(validateParams('echo-args', echo.params, { MESSAGE: 'hi', COUNT: '3' })).toEqual({ MESSAGE: 'hi', COUNT: 3 });
    expect(validateParams('echo-args', echo.params, { MESSAGE: 'hi' })).toEqual({ MESSAGE: 'hi', COUNT: 1 });
    expect(validateParams('dispatch', dispatch.params, { REF: 'main', DRY_RUN: 'yes' })).toEqual({ REF: 'main', DRY_RUN: true });
  });

  it('reports every problem at once, each naming its parameter', () => {
    let err: ActionParamsError | undefined;
    try {
      validateParams('echo-args', echo.params, { COUNT: '2.5', EXTRA: 'x' });
    } catch (e) {
      err = e as ActionParamsError;
    }
    expect(err).toBeInstanceOf(ActionParamsError);
    expect(err!.status).toBe(400);
    expect(err!.code).toBe('action_params_invalid');
    expect(err!.issues).toEqual([
      { param: 'EXTRA', message: 'unknown parameter (known: MESSAGE, COUNT)' },
      { param: 'MESSAGE', message: 'required (string)' },
      { param: 'COUNT', message: 'expected an integer, got "2.5"' },
    ]);
    expect(err!.message).toBe(`action echo-args: param 'EXTRA': unknown parameter (known: MESSAGE, COUNT); param 'MESSAGE': required (string); param 'COUNT': expected an integer, got "2.5"`);
  });

  it('checks bounds, enums, patterns and booleans', () => {
    const issues = (specs: typeof echo.params, input: Record<string, unknown>) => {
      try {
        validateParams('a', specs, input);
        return [];
      } catch (e) {
        return (e as ActionParamsError).issues.map((i) => `${i.param}: ${i.message}`);
      }
    };
    expect(issues(echo.params, { MESSAGE: 'x', COUNT: 9 })).toEqual(['COUNT: must be ≤ 5, got 9']);
    expect(issues(region.params, { REGION: 'ap' })).toEqual(['REGION: must be one of eu, us, got "ap"']);
    expect(issues(dispatch.params, { REF: 'main; rm -rf /' })).toEqual(['REF: "main; rm -rf /" does not match pattern [a-z0-9/._-]+']);
    expect(issues(dispatch.params, { REF: 'main', DRY_RUN: 'maybe' })).toEqual(['DRY_RUN: expected true or false, got "maybe"']);
    expect(issues(echo.params, { MESSAGE: 42 })).toEqual(['MESSAGE: expected a string, got 42']);
  });

  it('rejects a file whose templates name an undeclared parameter, with file and action', () => {
    expect(() => parseActionsYaml('kind: command\nargv: [echo, "${SERVCE}"]\n', 'restart.yaml'))
      .toThrow('restart.yaml: action restart: ${SERVCE} is not a declared parameter');
  });

  it('names file, line and field for a schema error', () => {
    expect(() => parseActionsYaml('kind: command\nargv: [echo]\ntimeoutS: soon\n', 'a.yaml')).toThrow(/^a\.yaml:3: timeoutS: /);
    expect(() => parseActionsYaml('kind: command\nargv: [echo]\nparams:\n  N: { type: int, pattern: "x" }\n', 'b.yaml')).toThrow(/b\.yaml:4: params\.N: `pattern` is only for type string/);
  });

  it('runs parameter patterns in linear time and refuses patterns that need backtracking', () => {
    const [a] = parseActionsYaml('kind: command\nargv: [echo, "${P}"]\nparams:\n  P: { type: string, maxLength: 65536, pattern: "(a|aa)+" }\n', 'p.yaml');
    // RegExp needs years for this value; the linear-time matcher one pass.
    expect(() => validateParams('p', a.params, { P: `${'a'.repeat(60_000)}!` })).toThrow(/does not match pattern \(a\|aa\)\+/);
    expect(validateParams('p', a.params, { P: 'a'.repeat(41) })).toEqual({ P: 'a'.repeat(41) });
    expect(() => parseActionsYaml('kind: command\nargv: [echo]\nparams:\n  P: { type: string, pattern: "(a)\\\\1" }\n', 'q.yaml')).toThrow(/q\.yaml:4: params\.P: unsupported pattern: backreferences are not supported/);
  });
});

describe('command actions', () => {
  it('passes each parameter as one argv element (no shell), and records success', async () => {
    const seen: string[] = [];
    const onStart = (r: { id: string; status: string }) => seen.push(`started ${r.status}`);
    const onEnd = (r: { id: string; status: string }) => seen.push(`finished ${r.status}`);
    actions.events.on('action.started', onStart);
    actions.events.on('action.finished', onEnd);
    const run = await runToEnd('echo-args', { MESSAGE: 'a b; $(touch /tmp/pwned) `id` "q"', COUNT: 2 });
    expect(run.status).toBe('succeeded');
    expect(run.exitCode).toBe(0);
    expect(JSON.parse(run.output)).toEqual(['a b; $(touch /tmp/pwned) `id` "q"', 'n=2']);
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    actions.events.off('action.started', onStart);
    actions.events.off('action.finished', onEnd);
    expect(seen).toEqual(['started running', 'finished succeeded']);
  });

  it('records a failing command as failed with its exit code and output', async () => {
    const run = await runToEnd('fail', {});
    expect(run.status).toBe('failed');
    expect(run.exitCode).toBe(3);
    expect(run.output).toContain('disk full');
    expect(run.error).toBe('exited with code 3');
    expect((await actions.get(run.id)).status).toBe('failed');
  });

  it('stops a command at its timeout and records it failed', async () => {
    const run = await runToEnd('slow', {});
    expect(run.status).toBe('failed');
    expect(run.error).toBe('timed out after 0.5 s');
  });

  it('caps captured output', async () => {
    const run = await runToEnd('chatty', {});
    expect(run.status).toBe('succeeded');
    expect(run.outputTruncated).toBe(true);
    expect(run.output.startsWith('x'.repeat(1000) + '\n… [49000 more bytes not kept]')).toBe(true);
  });

  it('gives the command its declared env, not tightloop\'s secrets', async () => {
    const run = await runToEnd('env-check', { REGION: 'eu' });
    expect(JSON.parse(run.output)).toEqual({ region: 'eu', token: null });
  });
});

describe('webhook actions', () => {
  it('sends the request with URL-encoded and JSON-encoded parameters', async () => {
    received.length = 0;
    const run = await runToEnd('dispatch', { REF: 'release/1.2', DRY_RUN: true });
    expect(run.status).toBe('succeeded');
    expect(run.exitCode).toBe(204);
    expect(received).toHaveLength(1);
    expect(received[0].method).toBe('POST');
    expect(received[0].url).toBe('/repos/shop/dispatches?ref=release%2F1.2');
    expect(received[0].headers.authorization).toBe('Bearer s3cret');
    expect(JSON.parse(received[0].body)).toEqual({ event_type: 'deploy', client_payload: { ref: 'release/1.2', dry_run: true, note: 'ref release/1.2' } });
  });

  it('records a webhook that does not answer in time as failed', async () => {
    const run = await runToEnd('dispatch-quick', { REF: 'slow' });
    expect(run.status).toBe('failed');
    expect(run.exitCode).toBeNull();
    expect(run.error).toBe(`POST ${hookUrl}: timed out after 0.3 s`);
  });

  it('records a non-2xx answer as failed', async () => {
    const run = await runToEnd('dispatch', { REF: 'broken' });
    expect(run.status).toBe('failed');
    expect(run.exitCode).toBe(422);
    expect(run.error).toContain('HTTP 422');
  });
});

describe('approval', () => {
  it('holds a run until another admin approves it', async () => {
    const { run, done } = await actions.start('guarded', { SERVICE: 'shop' }, alice);
    expect(run.status).toBe('pending_approval');
    await expect(actions.approve(alice, run.id)).rejects.toThrow('you cannot approve your own action run');
    await expect(actions.approve(viewer, run.id)).rejects.toThrow('needs the admin role');
    const approved = await actions.approve(bob, run.id, 'looks right');
    expect(approved.decidedBy).toBe('bob');
    const finished = await done;
    expect(finished.status).toBe('succeeded');
    expect(finished.output).toBe('restarted shop');
    await expect(actions.approve(bob, run.id)).rejects.toThrow(/is succeeded, not pending approval/);
  });

  it('a denied run never runs', async () => {
    const { run, done } = await actions.start('guarded', { SERVICE: 'db' }, alice);
    await actions.deny(bob, run.id, 'not now');
    const finished = await done;
    expect(finished.status).toBe('denied');
    expect(finished.output).toBe('');
  });
});

describe('audit', () => {
  it('writes every run to the audit chain, which verifies', async () => {
    const records = await audit.query({ kind: 'action.', limit: 1000 });
    const runs = records.filter((r) => r.kind === 'action.run');
    const failed = runs.find((r) => r.resource === 'action:fail');
    expect(failed?.actor).toBe('alice');
    expect(failed?.data).toMatchObject({ status: 'failed', exitCode: 3, params: {} });
    expect(String(failed?.data.output)).toContain('disk full');
    const guarded = runs.find((r) => r.resource === 'action:guarded');
    expect(guarded?.data).toMatchObject({ status: 'succeeded', params: { SERVICE: 'shop' }, approvedBy: 'bob' });
    expect(records.map((r) => r.kind)).toEqual(expect.arrayContaining(['action.requested', 'action.approved', 'action.denied']));
    const chained = await audit.verify();
    expect(chained.ok).toBe(true);
  });
});
