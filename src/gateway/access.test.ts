import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverConfigSchema } from '../http/config.js';
import { stateUrlFor } from '../../test/helpers/server.js';
import { startServer } from '../http/server.js';
import { cli, startApi, startHarness, startUpstream, UPSTREAM, type GatewayHarness, type TestUser, type Upstream } from './harness.conformance.js';
import { gatewayDb } from './schema.js';
import { containing } from '../../test/helpers/match.js';

let upstream: Upstream;
let h: GatewayHarness;
let api: { url: string; close(): Promise<void> };
let hook: Server;
const hooks: { text: string; blocks: unknown[] }[] = [];
const alerts: string[] = [];
const sys = () => ({ userId: h.admin.id, userName: 'admin', role: 'admin' });

beforeAll(async () => {
  upstream = await startUpstream();
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as { text: string; blocks: unknown[] });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const port = (hook.address() as { port: number }).port;
  h = await startHarness(upstream, { webhookUrl: `http://127.0.0.1:${port}/hook`, onAlert: (s) => alerts.push(s) });
  api = await startApi(h);
});
afterAll(async () => {
  await api?.close();
  await h?.close();
  await upstream?.stop();
  hook?.close();
});

async function connect(user: TestUser, resource = 'shop'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(user, resource) });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function refusal(user: string, token: string, resource: string): Promise<{ code?: string; message: string }> {
  const c = new pg.Client({ connectionString: `postgres://${user}:${token}@127.0.0.1:${h.gateway.port}/${resource}` });
  return c.connect().then(
    async () => {
      await c.end();
      return { message: 'connected' };
    },
    (e: Error & { code?: string }) => ({ code: e.code, message: e.message }),
  );
}

const as = (u: TestUser) => ({ url: api.url, token: u.token });
const flags = (u: TestUser) => ['--url', as(u).url, '--token', as(u).token];

describe('login and authorisation', () => {
  it('wrong token, another user\'s token, unknown user, unknown resource and no grant get proper errors', async () => {
    expect(await refusal('alice', 'tl_' + 'x'.repeat(43), 'shop')).toMatchObject({ code: '28P01' });
    expect(await refusal('alice', h.users.bob.token, 'shop')).toMatchObject({ code: '28P01' });
    expect(await refusal('mallory', h.users.alice.token, 'shop')).toMatchObject({ code: '28P01' });
    expect(await refusal('alice', h.users.alice.token, 'nope')).toMatchObject({ code: '3D000', message: containing('"nope"') });
    expect(await refusal('bob', h.users.bob.token, 'shop')).toMatchObject({ code: '42501', message: containing('no active access grant') });
    const failures = await h.gateway.audit.query({ kind: 'auth.failed', limit: 100 });
    expect(failures.length).toBeGreaterThanOrEqual(3);
  });

  it('a garbage-speaking client gets an error and the gateway carries on', async () => {
    const { connect: tcp } = await import('node:net');
    const s = tcp({ port: h.gateway.port ?? 0, host: '127.0.0.1' });
    const answer = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', () => undefined);
      s.write(Buffer.from([0, 0, 0, 8, 0x12, 0x34, 0x56, 0x78, 1, 2, 3]));
    });
    expect(answer[0]).toBe(0x45); // 'E'
    expect(answer.toString('latin1')).toContain('0A000');
    const c = await connect(h.users.alice);
    expect((await c.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await c.end();
  });
});

describe('just-in-time access', () => {
  it('request → webhook → no self-approval → approval by an approver → a working session', async () => {
    const req = await cli(['access', 'request', 'shop', '--mode', 'write', '--for', '1h', '--reason', 'fix order 42', ...flags(h.users.bob), '--json']);
    expect(req.code).toBe(0);
    const request = JSON.parse(req.stdout) as { id: string; status: string };
    expect(request.status).toBe('pending');
    await new Promise((r) => setTimeout(r, 200));
    expect(hooks.some((p) => p.text.includes('bob requests *write* access to *shop*') && Array.isArray(p.blocks))).toBe(true);

    expect((await cli(['access', 'approve', request.id, ...flags(h.users.bob)]))).toMatchObject({ code: 1, stderr: containing('own request') });
    expect((await cli(['access', 'approve', request.id, ...flags(h.users.alice)]))).toMatchObject({ code: 1, stderr: containing('admin') });
    const ok = await cli(['access', 'approve', request.id, '--note', 'ok', ...flags(h.admin)]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/approved \(grant \w+\)/);
    const c = await connect(h.users.bob);
    await c.query('INSERT INTO orders (customer, total) VALUES (1, 9)');
    await c.end();
    const kinds = (await h.gateway.audit.query({ limit: 5000 })).map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['request.created', 'request.approved', 'grant.created', 'connection.open']));
  });

  it('an expiring grant ends the live session with an ErrorResponse, and later logins are refused', async () => {
    const carol = await h.addUser('carol');
    const grant = await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: carol.id, resource: 'shop', mode: 'read', durationS: 2 });
    const c = new pg.Client({ connectionString: h.url(carol, 'shop') });
    const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    expect((await c.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    const err = await ended;
    expect(err.code).toBe('57P01');
    expect(err.message).toContain('access grant expired');
    expect(await refusal('carol', carol.token, 'shop')).toMatchObject({ code: '42501' });
    await h.gateway.sweep();
    const expired = await h.gateway.audit.query({ kind: 'grant.expired', limit: 100 });
    expect(expired.some((r) => r.data.grant === grant.id)).toBe(true);
  });

  it('revoking a grant from the CLI terminates its sessions', async () => {
    const dave = await h.addUser('dave');
    const grant = await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: dave.id, resource: 'shop', mode: 'read' });
    const c = new pg.Client({ connectionString: h.url(dave, 'shop') });
    const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    const r = await cli(['access', 'revoke', grant.id, ...flags(h.admin)]);
    expect(r).toMatchObject({ code: 0, stdout: containing(grant.id) });
    expect((await ended).message).toContain('revoked');
  });

  it('break-glass needs the resource to allow it, demands a reason and raises an alert', async () => {
    const args = ['access', 'request', 'shop-md5', '--mode', 'admin', '--for', '15m', '--break-glass', ...flags(h.users.bob)];
    expect(await cli([...args, '--reason', 'db on fire'])).toMatchObject({ code: 1, stderr: containing('not enabled') });
    const put = await fetch(`${api.url}/api/resources/shop-md5/policy`, {
      method: 'PUT', headers: { authorization: `Bearer ${h.admin.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ breakGlass: true }),
    });
    expect(put.status).toBe(200);
    expect(await cli([...args, '--reason', 'x'])).toMatchObject({ code: 1, stderr: containing('reason') });
    const r = await cli([...args, '--reason', 'db on fire']);
    expect(r).toMatchObject({ code: 0, stdout: containing('break-glass access granted') });
    expect(alerts.some((a) => a.includes('BREAK-GLASS'))).toBe(true);
    const c = await connect(h.users.bob, 'shop-md5');
    await c.end();
  });

  it('deny and list from the CLI', async () => {
    const r = JSON.parse((await cli(['access', 'request', 'shop', '--mode', 'admin', '--for', '30m', '--reason', 'curious', ...flags(h.users.alice), '--json'])).stdout) as { id: string };
    const pending = await cli(['access', 'list', '--status', 'pending', ...flags(h.admin)]);
    // Columns: id, user, resource, access, for, status, created, reason (this harness serves no
    // /api/users, so the user column falls back to the id).
    expect(pending.stdout).toMatch(new RegExp(`${r.id}\\s+\\S+\\s+shop\\s+admin\\s+30m\\s+pending\\s+\\S+.*curious`));
    expect(await cli(['access', 'deny', r.id, '--note', 'no', ...flags(h.admin)])).toMatchObject({ code: 0, stdout: `request ${r.id} denied\n` });
    expect((await cli(['access', 'list', '--status', 'pending', ...flags(h.admin), '--json'])).stdout).not.toContain(r.id);
  });

  it('POST /api/gateway/credentials enrols a token, so its very first gateway login is SCRAM', async () => {
    const erin = await h.addUser('erin');
    await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: erin.id, resource: 'shop', mode: 'read' });
    const res = await fetch(`${api.url}/api/gateway/credentials`, { method: 'POST', headers: { authorization: `Bearer ${erin.token}` } });
    expect(res.status).toBe(201);
    const c = await connect(erin);
    await c.end();
    const opened = await h.gateway.audit.query({ kind: 'connection.open', actor: 'erin', limit: 10 });
    expect(opened.map((r) => r.data.auth)).toEqual(['scram-sha-256']);
  });

  it('unreviewed requests expire', async () => {
    const r = await h.gateway.access.request({ userId: h.users.alice.id, userName: 'alice', role: 'member' }, { resource: 'shop', mode: 'admin', durationS: 600, reason: 'maintenance' });
    await h.gateway.access.sweep(Date.now() + 2 * 3600_000);
    expect((await h.gateway.access.get(r.id)).status).toBe('expired');
    expect((await cli(['access', 'approve', r.id, ...flags(h.admin)])).code).toBe(1);
  });
});

describe('resources API and CLI', () => {
  it('add, list and rm; credentials are never echoed; only admins change resources', async () => {
    process.env.TIGHTLOOP_CRED_TEST_SECRET = 'super-secret-password';
    const add = await cli(['resource', 'add', 'analytics', '--host', '127.0.0.1', '--port', String(upstream.port), '--database', 'shop', '--user', 'app_scram', '--credential', 'env:TIGHTLOOP_CRED_TEST_SECRET', '--tls', 'disable', ...flags(h.admin), '--json']);
    expect(add.code).toBe(0);
    expect(add.stdout).not.toContain('super-secret-password');
    const list = await cli(['resource', 'list', ...flags(h.admin)]);
    expect(list.stdout).toMatch(/analytics\s+127\.0\.0\.1/);
    const listJson = await cli(['resource', 'list', ...flags(h.users.alice), '--json']);
    expect(listJson.stdout).not.toContain('secret-password');
    expect(await cli(['resource', 'rm', 'analytics', ...flags(h.users.alice)])).toMatchObject({ code: 1, stderr: containing('admin') });
    expect(await cli(['resource', 'add', 'x', '--host', 'h', '--database', 'd', '--user', 'u', '--credential', 'plain-password', ...flags(h.admin)])).toMatchObject({ code: 1 });
    expect(await cli(['resource', 'rm', 'analytics', ...flags(h.admin)])).toMatchObject({ code: 0 });
    expect(await cli(['resource', 'list', '--url', 'http://127.0.0.1:1', '--token', h.admin.token])).toMatchObject({ code: 2 });
    expect(await cli(['resource', 'list', '--url', api.url, '--data-dir', '/nonexistent'])).toMatchObject({ code: 2 });
    expect(await cli(['resource', 'add'])).toMatchObject({ code: 2 });
  });
});

describe('audit chain', () => {
  it('verify passes, then names the first edited or deleted record; NDJSON export and filters work', async () => {
    const c = await connect(h.users.alice);
    await c.query('SELECT 1');
    await c.end();
    expect(await cli(['audit', 'verify', ...flags(h.admin)])).toMatchObject({ code: 0, stdout: containing('audit chain OK') });
    const db = gatewayDb(h.state.db);
    const victim = await db.selectFrom('gateway_audit').selectAll().where('seq', '=', 5).executeTakeFirstOrThrow();
    await db.updateTable('gateway_audit').set({ data: victim.data.replace('}', ',"x":1}') }).where('seq', '=', 5).execute();
    const edited = await cli(['audit', 'verify', ...flags(h.admin)]);
    expect(edited).toMatchObject({ code: 1, stdout: containing('record 5') });
    expect(edited.stdout).toContain('edited');
    await db.updateTable('gateway_audit').set({ data: victim.data }).where('seq', '=', 5).execute();
    expect((await cli(['audit', 'verify', ...flags(h.admin)])).code).toBe(0);
    await db.deleteFrom('gateway_audit').where('seq', '=', 7).execute();
    expect(await cli(['audit', 'verify', ...flags(h.admin), '--json'])).toMatchObject({ code: 1, stdout: containing('"seq": 8') });
    await db.insertInto('gateway_audit').values({ ...victim, seq: 7 }).execute();
    expect((await cli(['audit', 'verify', ...flags(h.admin)])).code).toBe(1); // a forged record does not fit the chain

    const exp = await cli(['audit', 'export', '--kind', 'request.', ...flags(h.admin)]);
    const lines = exp.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; hash: string });
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.every((l) => l.kind.startsWith('request.') && l.hash.length === 64)).toBe(true);
    const res = await fetch(`${api.url}/api/audit?actor=bob&limit=5`, { headers: { authorization: `Bearer ${h.admin.token}` } });
    const body = (await res.json()) as { records: { actor: string }[] };
    expect(body.records.length).toBeGreaterThan(0);
    expect(body.records.every((r) => r.actor === 'bob')).toBe(true);
    expect((await fetch(`${api.url}/api/audit`, { headers: { authorization: `Bearer ${h.users.alice.token}` } })).status).toBe(403);
  });
});

describe('tightloop up (the README walk-through)', () => {
  it('resource add (with a policy file) → access grant → psql through the gateway → audit verify', async () => {
    const run = promisify(execFile);
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-e2e-'));
    const server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
    try {
      const base = ['--url', server.url, '--data-dir', dataDir];
      process.env.TIGHTLOOP_CRED_ORDERS_DB = UPSTREAM.scram.password;
      const policyFile = join(dataDir, 'policy.json');
      writeFileSync(policyFile, JSON.stringify({ masking: { columns: [{ name: '*ssn*', mode: 'full' }] }, breakGlass: true }));
      const add = await cli(['resource', 'add', 'orders-prod', '--host', '127.0.0.1', '--port', String(upstream.port), '--database', 'shop',
        '--user', UPSTREAM.scram.user, '--credential', 'env:TIGHTLOOP_CRED_ORDERS_DB', '--tls', 'disable', '--policy', policyFile, ...base]);
      expect(add).toMatchObject({ code: 0, stdout: containing('added resource orders-prod') });
      expect(await cli(['access', 'grant', 'admin', 'orders-prod', '--mode', 'read', '--for', '1h', ...base])).toMatchObject({ code: 0 });
      const list = JSON.parse((await cli(['resource', 'list', ...base, '--json'])).stdout) as { resources: { name: string; credential: string; policy: { breakGlass: boolean } }[] };
      expect(list.resources).toMatchObject([{ name: 'orders-prod', credential: 'env:TIGHTLOOP_CRED_ORDERS_DB', policy: { breakGlass: true } }]);

      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const url = `postgres://admin:${token}@127.0.0.1:${server.gatewayPort ?? 0}/orders-prod`;
      const r = await run('psql', [url, '-X', '-A', '-t', '-c', "SELECT email, ssn FROM customers ORDER BY id"]);
      // The e-mail detector keeps the address's shape; the rule's `full` mask is a fixed token.
      expect(r.stdout.trim().split('\n')).toEqual(['*****@******e.com|********', '***@******e.org|********']);
      const blocked = await run('psql', [url, '-X', '-c', 'DELETE FROM orders']).catch((e: { stderr: string }) => e);
      expect(blocked.stderr).toContain('blocked by guardrail "read-only"');

      expect(await cli(['audit', 'verify', ...base])).toMatchObject({ code: 0, stdout: containing('audit chain OK') });
      const exported = await cli(['audit', 'export', '--kind', 'statement', ...base]);
      expect(exported.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind)).toContain('statement');
      const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/resources', '/api/access/requests', '/api/audit', '/api/audit/verify']));
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
