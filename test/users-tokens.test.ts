import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';
import { serverConfigSchema } from '../src/http/config.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { UPSTREAM, startUpstream, type Upstream } from '../src/gateway/harness.conformance.js';
import { testStateDialect } from '../src/state/dialects.conformance.js';
import { callApi, testStateUrl } from './helpers/server.js';
import { anyOf, containing, matching } from './helpers/match.js';

/**
 * Users and API tokens end to end: a real server on an ephemeral port, the REST API with real
 * tokens, and the real CLI (`tightloop user …`, `tightloop token …`) against it.
 */

let dataDir: string;
let server: RunningServer;
let admin: string;
let state: Awaited<ReturnType<typeof testStateUrl>>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-users-'));
  state = await testStateUrl(testStateDialect()); // runs on SQLite and on PostgreSQL (STATE_SUITES)
  const config = serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl: state.stateUrl });
  server = await startServer(config, pino({ level: 'silent' }));
  admin = server.adminToken ?? '';
});

afterAll(async () => {
  await server.close();
  await state.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface ErrorBody { error: { code: string; message: string } }
interface UserOut { id: string; name: string; role: string; createdAt: string }
interface CreatedUser extends UserOut { token: string; tokenId: string }
interface TokenOut { id: string; userId: string; name: string; prefix: string; createdAt: string; expiresAt: string | null; lastUsedAt: string | null; revokedAt: string | null }

async function api<T>(method: string, path: string, as: string, body?: unknown): Promise<{ status: number; body: T }> {
  return callApi<T>(server.url, as, method, path, body);
}

async function cli(args: string[], token = admin): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
  try {
    const code = await run(['node', 'tightloop', ...args, '--url', server.url, '--token', token]);
    return { code, out, err };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
  }
}

describe('users API', () => {
  let alice: CreatedUser;

  it('an admin creates a member whose first token authenticates with the member role', async () => {
    const created = await api<CreatedUser>('POST', '/api/users', admin, { name: 'alice', role: 'member' });
    expect(created.status).toBe(201);
    alice = created.body;
    expect(alice).toMatchObject({ name: 'alice', role: 'member', id: anyOf(String), createdAt: anyOf(String) });
    expect(alice.token).toMatch(/^tl_[0-9A-Za-z]{43}$/);

    const listed = await api<{ users: Array<Record<string, unknown>> }>('GET', '/api/users', alice.token);
    expect(listed.status).toBe(200);
    expect(listed.body.users.map((u) => [u.name, u.role])).toEqual([['admin', 'admin'], ['alice', 'member']]);
    // Only the public fields: no token, no hash.
    expect(Object.keys(listed.body.users[1]).sort()).toEqual(['createdAt', 'id', 'name', 'role']);
    expect(JSON.stringify(listed.body)).not.toContain(alice.token.slice(3));

    // The token speaks for alice, a member: admin-only routes refuse her.
    const refused = await api<ErrorBody>('POST', '/api/users', alice.token, { name: 'mallory', role: 'admin' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect((await api<ErrorBody>('DELETE', `/api/users/${alice.id}`, alice.token)).status).toBe(403);
  });

  it('refuses a taken name (409), a bad name or role (400), and unknown users (404)', async () => {
    const dup = await api<ErrorBody>('POST', '/api/users', admin, { name: 'alice', role: 'viewer' });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'conflict', message: containing('alice') });

    for (const name of ['', '1alice', 'al ice', 'alice;drop', `a${'b'.repeat(63)}`, 'bob@example']) {
      const bad = await api<ErrorBody>('POST', '/api/users', admin, { name, role: 'member' });
      expect(bad.status, name).toBe(400);
      expect(bad.body.error.code).toBe('bad_request');
    }
    const longest = `a${'b'.repeat(62)}`;
    expect((await api('POST', '/api/users', admin, { name: longest, role: 'viewer' })).status).toBe(201);

    const badRole = await api<ErrorBody>('POST', '/api/users', admin, { name: 'carol', role: 'owner' });
    expect(badRole.status).toBe(400);
    expect(badRole.body.error.message).toContain('role');
    expect((await api('POST', '/api/users', admin, { name: 'carol', role: 'member', extra: 1 })).status).toBe(400);
    expect((await api<ErrorBody>('DELETE', '/api/users/nobody', admin)).status).toBe(404);
    expect((await api('GET', '/api/users', 'tl_not-a-token')).status).toBe(401);
  });

  it('an admin cannot delete themself', async () => {
    const me = (await api<{ users: UserOut[] }>('GET', '/api/users', admin)).body.users.find((u) => u.name === 'admin');
    const r = await api<ErrorBody>('DELETE', `/api/users/${me?.id ?? ''}`, admin);
    expect(r.status).toBe(409);
    expect((await api('GET', '/api/users', admin)).status).toBe(200);
  });

  it('deleting a user makes all their tokens stop working at once', async () => {
    const bob = (await api<CreatedUser>('POST', '/api/users', admin, { name: 'bob', role: 'viewer' })).body;
    const second = await api<{ token: string }>('POST', '/api/tokens', bob.token, { name: 'laptop' });
    expect(second.status).toBe(201);
    // Both work (and are now in the verification cache).
    expect((await api('GET', '/api/users', bob.token)).status).toBe(200);
    expect((await api('GET', '/api/users', second.body.token)).status).toBe(200);

    const del = await api<UserOut>('DELETE', `/api/users/${bob.id}`, admin);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ id: bob.id, name: 'bob', role: 'viewer' });
    expect((await api('GET', '/api/users', bob.token)).status).toBe(401);
    expect((await api('GET', '/api/users', second.body.token)).status).toBe(401);
    const names = (await api<{ users: UserOut[] }>('GET', '/api/users', admin)).body.users.map((u) => u.name);
    expect(names).not.toContain('bob');
    // The name is free again; the new bob's token is a new token.
    const bob2 = await api<CreatedUser>('POST', '/api/users', admin, { name: 'bob', role: 'member' });
    expect(bob2.status).toBe(201);
    expect(bob2.body.id).not.toBe(bob.id);
  });
});

describe('tokens API', () => {
  let dave: CreatedUser;
  beforeAll(async () => {
    dave = (await api<CreatedUser>('POST', '/api/users', admin, { name: 'dave', role: 'member' })).body;
  });

  it('creates, lists and revokes your own tokens; a revoked token gets 401', async () => {
    const made = await api<TokenOut & { token: string }>('POST', '/api/tokens', dave.token, { name: 'ci', expiresIn: '30d' });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'ci', userId: dave.id, revokedAt: null });
    const days = (Date.parse(made.body.expiresAt ?? '') - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect(made.body.prefix).toBe(made.body.token.slice(0, 9));

    expect((await api('GET', '/api/users', made.body.token)).status).toBe(200);
    const mine = await api<{ tokens: Array<Record<string, unknown>> }>('GET', '/api/tokens', dave.token);
    expect(mine.body.tokens.map((t) => t.name)).toEqual(['ci', 'personal token']);
    expect(mine.body.tokens.every((t) => t.userId === dave.id)).toBe(true);
    expect(JSON.stringify(mine.body)).not.toContain(made.body.token.slice(9));
    expect(mine.body.tokens[0].lastUsedAt).not.toBeNull();

    const revoked = await api<TokenOut>('DELETE', `/api/tokens/${made.body.id}`, dave.token);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const after = await api<ErrorBody>('GET', '/api/users', made.body.token);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('unauthorized');
    // Revoked tokens leave the default list but stay in ?all=true.
    expect((await api<{ tokens: TokenOut[] }>('GET', '/api/tokens', dave.token)).body.tokens.map((t) => t.name)).toEqual(['personal token']);
    expect((await api<{ tokens: TokenOut[] }>('GET', '/api/tokens?all=true', dave.token)).body.tokens.map((t) => t.name)).toEqual(['ci', 'personal token']);
  });

  it("keeps members to their own tokens; admins may issue and revoke anyone's", async () => {
    const erin = (await api<CreatedUser>('POST', '/api/users', admin, { name: 'erin', role: 'member' })).body;
    // A member cannot issue for, list or revoke another user's tokens (and cannot tell they exist).
    expect((await api('POST', '/api/tokens', dave.token, { name: 'x', userId: erin.id })).status).toBe(403);
    expect((await api('GET', `/api/tokens?userId=${erin.id}`, dave.token)).status).toBe(403);
    const probe = await api<ErrorBody>('DELETE', `/api/tokens/${erin.tokenId}`, dave.token);
    expect(probe.status).toBe(404);
    expect((await api('GET', '/api/users', erin.token)).status).toBe(200);

    const issued = await api<TokenOut & { token: string; userName: string }>('POST', '/api/tokens', admin, { name: 'for erin', userId: 'erin' });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ userId: erin.id, userName: 'erin' });
    const whoAmI = await api<{ tokens: TokenOut[] }>('GET', '/api/tokens', issued.body.token);
    expect(whoAmI.body.tokens.map((t) => t.name)).toEqual(['for erin', 'personal token']);
    expect((await api<{ tokens: TokenOut[] }>('GET', `/api/tokens?userId=erin`, admin)).body.tokens).toHaveLength(2);

    expect((await api('DELETE', `/api/tokens/${erin.tokenId}`, admin)).status).toBe(200);
    expect((await api('GET', '/api/users', erin.token)).status).toBe(401);
    expect((await api('GET', '/api/users', issued.body.token)).status).toBe(200);
  });

  it('rejects bad token requests with 400 and unknown ids with 404', async () => {
    for (const body of [{ name: '' }, { name: 'x', expiresIn: 'soon' }, { name: 'x', expiresIn: -5 }, { name: 'x', scopes: ['*'] }]) {
      const r = await api<ErrorBody>('POST', '/api/tokens', dave.token, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
    }
    expect((await api('POST', '/api/tokens', admin, { name: 'x', userId: 'ghost' })).status).toBe(404);
    expect((await api('DELETE', '/api/tokens/01ARZ3NDEKTSV4RRFFQ69G5FAV', admin)).status).toBe(404);
  });

  it("an admin changes a role; the user's token carries it from the next request; the last admin stays", async () => {
    const ivan = (await api<CreatedUser>('POST', '/api/users', admin, { name: 'ivan', role: 'member' })).body;
    // An admin-only call, made with ivan's own token: refused while he is a member.
    const adminOnly = async (name: string): Promise<number> => (await api('POST', '/api/users', ivan.token, { name, role: 'viewer' })).status;
    expect(await adminOnly('judy')).toBe(403);
    expect((await api('PATCH', `/api/users/${ivan.id}`, ivan.token, { role: 'admin' })).status).toBe(403);

    const promoted = await api<UserOut>('PATCH', '/api/users/ivan', admin, { role: 'admin' });
    expect(promoted.status).toBe(200);
    expect(promoted.body).toMatchObject({ id: ivan.id, name: 'ivan', role: 'admin' });
    expect(await adminOnly('judy')).toBe(201);
    expect((await api<UserOut>('PATCH', `/api/users/${ivan.id}`, admin, { role: 'viewer' })).body.role).toBe('viewer');
    expect(await adminOnly('kate')).toBe(403);
    expect((await api<{ users: UserOut[] }>('GET', '/api/users', admin)).body.users.find((u) => u.name === 'ivan')?.role).toBe('viewer');

    expect((await api<ErrorBody>('PATCH', '/api/users/ivan', admin, { role: 'owner' })).body.error).toMatchObject({ code: 'bad_request', message: containing('role') });
    expect((await api('PATCH', '/api/users/ivan', admin, { role: 'member', name: 'x' })).status).toBe(400);
    expect((await api('PATCH', '/api/users/nobody', admin, { role: 'member' })).status).toBe(404);
    const last = await api<ErrorBody>('PATCH', '/api/users/admin', admin, { role: 'member' });
    expect(last.status).toBe(409);
    expect(last.body.error.message).toContain('only admin');
    expect((await api('POST', '/api/users', admin, { name: 'lena', role: 'viewer' })).status).toBe(201);
  });

  it('the audit trail records user and token changes, never a token', async () => {
    const audit = await api<{ records: Array<{ kind: string; actor: string; resource: string; data: Record<string, unknown> }> }>('GET', '/api/audit?limit=1000', admin);
    expect(audit.status).toBe(200);
    const kinds = audit.body.records.map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['user.created', 'user.deleted', 'user.role_changed', 'token.created', 'token.revoked']));
    expect(audit.body.records.filter((r) => r.kind === 'user.role_changed' && r.resource === 'user:ivan').map((r) => r.data))
      .toEqual(expect.arrayContaining([expect.objectContaining({ from: 'member', to: 'admin' }), expect.objectContaining({ from: 'admin', to: 'viewer' })]));
    expect(audit.body.records.find((r) => r.kind === 'user.created' && r.resource === 'user:dave')).toMatchObject({ actor: 'admin', data: { role: 'member' } });
    expect(JSON.stringify(audit.body)).not.toMatch(/tl_[0-9A-Za-z]{43}/);
  });
});

describe('tightloop user / token', () => {
  it('user add prints the id and the token once, with how to use it; the token works', async () => {
    const r = await cli(['user', 'add', 'frank']);
    expect(r.code).toBe(0);
    const token = /tl_[0-9A-Za-z]{43}/.exec(r.out)?.[0] ?? '';
    expect(token).not.toBe('');
    expect(r.out).toMatch(/user frank created \(member\), id [0-9A-Z]{26}/);
    // The hint names the port the gateway really listens on (an ephemeral one here).
    expect(server.gatewayPort).toBeGreaterThan(0);
    expect(r.out).toContain(`psql "postgres://frank:${token}@127.0.0.1:${String(server.gatewayPort)}/<resource>"`);
    expect((await api<{ users: UserOut[] }>('GET', '/api/users', token)).status).toBe(200);

    const json = await cli(['user', 'add', 'grace', '--role', 'viewer', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ name: 'grace', role: 'viewer', token: matching(/^tl_/) });

    const dup = await cli(['user', 'add', 'frank']);
    expect(dup.code).toBe(1);
    expect(dup.err).toContain('409');
    const bad = await cli(['user', 'add', 'frank!', '--role', 'member']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('invalid user name');
    const asViewer = await cli(['user', 'add', 'henry'], (JSON.parse(json.out) as { token: string }).token);
    expect(asViewer.code).toBe(2);
    expect(asViewer.err).toContain('admin');
  });

  it('user list shows names and roles; user rm takes a name or an id', async () => {
    const list = await cli(['user', 'list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/frank\s+member/);
    const users = JSON.parse((await cli(['user', 'list', '--json'])).out) as UserOut[];
    const grace = users.find((u) => u.name === 'grace');
    expect(grace?.role).toBe('viewer');

    const setRole = await cli(['user', 'set-role', 'frank', 'viewer']);
    expect({ code: setRole.code, err: setRole.err }).toEqual({ code: 0, err: '' });
    expect(setRole.out).toBe('user frank is now viewer\n');
    expect((await cli(['user', 'list'])).out).toMatch(/frank\s+viewer/);
    const badRole = await cli(['user', 'set-role', 'frank', 'owner']);
    expect(badRole.code).toBe(2);
    expect(badRole.err).toContain("invalid role 'owner'");

    expect((await cli(['user', 'rm', 'frank'])).code).toBe(0);
    const byId = await cli(['user', 'rm', grace?.id ?? '']);
    expect(byId.code).toBe(0);
    expect(byId.out).toContain('user grace deleted');
    const gone = await cli(['user', 'rm', 'frank']);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('not found');
    const names = (JSON.parse((await cli(['user', 'list', '--json'])).out) as UserOut[]).map((u) => u.name);
    expect(names).not.toContain('frank');
    expect(names).not.toContain('grace');
  });

  it('token create, list and revoke; a revoked token fails the next command', async () => {
    const ivy = (await api<CreatedUser>('POST', '/api/users', admin, { name: 'ivy', role: 'member' })).body;
    const made = await cli(['token', 'create', '--name', 'deploys', '--expires-in', '30d', '--json'], ivy.token);
    expect(made.code).toBe(0);
    const t = JSON.parse(made.out) as TokenOut & { token: string };
    expect(t).toMatchObject({ name: 'deploys', userId: ivy.id });
    expect(t.expiresAt).not.toBeNull();

    const text = await cli(['token', 'create', '--for-user', 'ivy'], admin);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^token [0-9A-Z]{26} for ivy \(cli token\), expires never\n {2}tl_[0-9A-Za-z]{43}\n/);

    const list = await cli(['token', 'list'], t.token);
    expect(list.code).toBe(0);
    expect(list.out.trim().split('\n')).toHaveLength(3);
    expect(list.out).toContain(`${t.prefix}…`);
    expect(list.out).not.toContain(t.token);
    const forIvy = JSON.parse((await cli(['token', 'list', '--for-user', 'ivy', '--json'])).out) as TokenOut[];
    expect(forIvy.map((x) => x.name)).toEqual(['cli token', 'deploys', 'personal token']);

    const rev = await cli(['token', 'revoke', t.id], ivy.token);
    expect(rev.code).toBe(0);
    expect(rev.out).toContain(`token ${t.id} (deploys) revoked`);
    const after = await cli(['token', 'list'], t.token);
    expect(after.code).toBe(2);
    expect(after.err).toContain('401');
    expect((await cli(['token', 'revoke', 'nope'], ivy.token)).code).toBe(1);
    const all = JSON.parse((await cli(['token', 'list', '--all', '--json'], ivy.token)).out) as TokenOut[];
    expect(all.find((x) => x.id === t.id)?.revokedAt).not.toBeNull();
  });

  it('the OpenAPI document describes the routes', async () => {
    const doc = (await api<{ paths: Record<string, Record<string, unknown>> }>('GET', '/api/openapi.json', admin)).body;
    expect(Object.keys(doc.paths['/api/users']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/users/{id}'])).toEqual(['patch', 'delete']);
    expect(Object.keys(doc.paths['/api/tokens']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/tokens/{id}'])).toEqual(['delete']);
  });

  it('a bad --expires-in is a usage error', async () => {
    const r = await cli(['token', 'create', '--expires-in', 'tomorrow']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('expiresIn');
  });
});

describe('a new user logs in through the gateway with real psql', () => {
  let upstream: Upstream;
  const execFileP = promisify(execFile);

  beforeAll(async () => {
    upstream = await startUpstream();
    process.env.TIGHTLOOP_CRED_TEST_USERS_PG = UPSTREAM.scram.password;
    const r = await api('POST', '/api/resources', admin, {
      name: 'shop', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user,
      credential: 'env:TIGHTLOOP_CRED_TEST_USERS_PG', tls: { mode: 'disable' },
    });
    expect(r.status).toBe(201);
  });
  afterAll(async () => {
    await upstream?.stop();
  });

  async function psql(url: string): Promise<{ code: number; out: string }> {
    try {
      const r = await execFileP('psql', [url, '-X', '-A', '-t', '-c', 'SELECT count(*) FROM orders'], { timeout: 20_000 });
      return { code: 0, out: r.stdout };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  }

  it('user add → access grant → psql with the printed token; user rm ends it', async () => {
    const added = await cli(['user', 'add', 'kim', '--role', 'member', '--json']);
    expect(added.code).toBe(0);
    const kim = JSON.parse(added.out) as CreatedUser;
    expect((await cli(['access', 'grant', 'kim', 'shop', '--mode', 'read', '--for', '1h'])).code).toBe(0);

    const url = `postgres://kim:${kim.token}@127.0.0.1:${server.gatewayPort ?? 0}/shop`;
    const first = await psql(url); // the password message: enrols a SCRAM verifier
    expect(first).toEqual({ code: 0, out: '100\n' });
    expect(await psql(url)).toEqual({ code: 0, out: '100\n' }); // SCRAM from now on

    // A live session of kim's ends when kim is deleted, and her token no longer logs in.
    const live = new pg.Client({ connectionString: url });
    live.on('error', () => undefined);
    await live.connect();
    expect((await live.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const grantsOfKim = async (): Promise<unknown[]> =>
      (await api<{ grants: Array<{ subject: string }> }>('GET', '/api/access/grants', admin)).body.grants.filter((g) => g.subject === kim.id);
    expect(await grantsOfKim()).toHaveLength(1);
    expect((await cli(['user', 'rm', 'kim'])).code).toBe(0);
    expect(await grantsOfKim()).toHaveLength(0); // her grant is revoked with her, not left behind
    await expect(live.query('SELECT 1')).rejects.toThrow();
    await live.end().catch(() => undefined);
    const after = await psql(url);
    expect(after.code).not.toBe(0);
    expect(after.out).toMatch(/authentication failed|password/i);
  });
});
