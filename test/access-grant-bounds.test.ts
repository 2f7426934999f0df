import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessGrant, AccessRequest } from '../src/gateway/index.js';
import { callApi, eventually, startTestServer, type TestServer } from './helpers/server.js';

/**
 * A just-in-time admin grant bounds whatever is done through it (issue 22, item 6), on a real
 * server through the REST API: its holder cannot grant herself anything, nor a whole role, nor
 * past her own expiry; grants she makes or approves end with hers — also those made further
 * down the line — and once hers has ended she approves and grants nothing more.
 */

let server: TestServer;
const tok: Record<string, string> = {};
let mia: AccessGrant;

async function user(name: string, role: string): Promise<void> {
  const r = await callApi<{ token: string }>(server.url, server.token, 'POST', '/api/users', { name, role });
  expect(r.status).toBe(201);
  tok[name] = r.body.token;
}

const call = <T>(who: string, method: string, path: string, body?: unknown) =>
  callApi<T & { error?: { code: string; message: string } }>(server.url, who === 'admin' ? server.token : tok[who], method, path, body);

async function grantsOf(all = true): Promise<AccessGrant[]> {
  return (await call<{ grants: AccessGrant[] }>('admin', 'GET', `/api/access/grants?resource=shop${all ? '&all=1' : ''}`)).body.grants;
}

async function requestAndApprove(asker: string, approver: string, mode: string, duration: string): Promise<AccessGrant> {
  const req = await call<AccessRequest>(asker, 'POST', '/api/access/requests', { resource: 'shop', mode, duration, reason: 'on call' });
  expect(req.status).toBe(201);
  const ok = await call<AccessRequest>(approver, 'POST', `/api/access/requests/${req.body.id}/approve`, {});
  expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  return (await grantsOf()).find((g) => g.id === ok.body.grantId)!;
}

beforeAll(async () => {
  server = await startTestServer();
  for (const name of ['mia', 'bob', 'carol', 'dan']) await user(name, 'member');
  const res = await call('admin', 'POST', '/api/resources', { name: 'shop', host: '127.0.0.1', port: 5432, database: 'shop', user: 'app', credential: 'env:TIGHTLOOP_CRED_SHOP_DB', tls: { mode: 'disable' } });
  expect(res.status).toBe(201);
  // Mia's just-in-time admin access: 30 minutes, approved by the admin.
  mia = await requestAndApprove('mia', 'admin', 'admin', '30m');
  expect(mia).toMatchObject({ mode: 'admin', parentGrantId: null });
});

afterAll(async () => {
  await server.close();
});

describe('grants made through an admin grant', () => {
  it('never go to their holder, nor to a whole role', async () => {
    for (const body of [
      { user: 'mia', resource: 'shop', mode: 'admin' },
      { user: 'mia', resource: 'shop', mode: 'read', duration: '1m' },
      { role: 'member', resource: 'shop', mode: 'admin', duration: '5m' },
      { role: 'viewer', resource: 'shop', mode: 'read', duration: '5m' },
    ]) {
      const r = await call('mia', 'POST', '/api/access/grants', body);
      expect(r.status, JSON.stringify(body)).toBe(403);
      expect(r.body.error?.code).toBe('forbidden');
    }
    expect((await grantsOf()).filter((g) => g.createdBy !== mia.createdBy)).toEqual([]);
  });

  it('never outlast it: no expiry or a longer one becomes its expiry; they record what they were made through', async () => {
    const forever = await call<AccessGrant>('mia', 'POST', '/api/access/grants', { user: 'bob', resource: 'shop', mode: 'admin' });
    expect(forever.status).toBe(201);
    expect(forever.body).toMatchObject({ expiresAt: mia.expiresAt, parentGrantId: mia.id });
    const long = await call<AccessGrant>('mia', 'POST', '/api/access/grants', { user: 'dan', resource: 'shop', mode: 'read', duration: '30d' });
    expect(long.body).toMatchObject({ expiresAt: mia.expiresAt, parentGrantId: mia.id });
    const short = await call<AccessGrant>('mia', 'POST', '/api/access/grants', { user: 'dan', resource: 'shop', mode: 'write', duration: '5m' });
    expect(Date.parse(short.body.expiresAt!)).toBeLessThan(Date.parse(mia.expiresAt!));
    // An approval through her grant is bounded the same way, and so is the next link of the chain.
    const carol = await requestAndApprove('carol', 'bob', 'admin', '1h');
    expect(carol.parentGrantId).toBe(forever.body.id);
    expect(Date.parse(carol.expiresAt!)).toBeLessThanOrEqual(Date.parse(mia.expiresAt!));
    // A tightloop admin is not bounded by anyone's grant.
    const byAdmin = await call<AccessGrant>('admin', 'POST', '/api/access/grants', { role: 'viewer', resource: 'shop', mode: 'read' });
    expect(byAdmin.body).toMatchObject({ expiresAt: null, parentGrantId: null });
    expect((await call('admin', 'DELETE', `/api/access/grants/${byAdmin.body.id}`)).status).toBe(200);
  });

  it('end with it, down the whole chain, and its holder approves and grants nothing more', async () => {
    const pending = await call<AccessRequest>('dan', 'POST', '/api/access/requests', { resource: 'shop', mode: 'admin', duration: '10m', reason: 'later' });
    const derived = (await grantsOf(false)).filter((g) => g.parentGrantId !== null);
    expect(derived.length).toBeGreaterThanOrEqual(4);
    expect((await call('admin', 'DELETE', `/api/access/grants/${mia.id}`)).status).toBe(200);
    const after = await grantsOf();
    for (const g of derived) expect(after.find((x) => x.id === g.id)?.revokedAt, g.id).not.toBeNull();
    expect((await grantsOf(false)).filter((g) => g.subjectKind === 'user')).toEqual([]);
    for (const who of ['mia', 'bob', 'carol']) {
      const approve = await call(who, 'POST', `/api/access/requests/${pending.body.id}/approve`, {});
      expect(approve.status, who).toBe(403);
      const grant = await call(who, 'POST', '/api/access/grants', { user: 'dan', resource: 'shop', mode: 'read', duration: '1m' });
      expect(grant.status, who).toBe(403);
    }
    const audit = await call<{ records: Array<{ actor: string; data: { grant: string; reason?: string } }> }>('admin', 'GET', '/api/audit?kind=grant.revoked&limit=100');
    const cascaded = audit.body.records.filter((r) => r.actor === 'tightloop').map((r) => r.data.grant);
    expect(cascaded.sort()).toEqual(derived.map((g) => g.id).sort());
  });

  it('end when it expires', async () => {
    const short = (await call<AccessGrant>('admin', 'POST', '/api/access/grants', { user: 'mia', resource: 'shop', mode: 'admin', duration: '3s' })).body;
    const child = await call<AccessGrant>('mia', 'POST', '/api/access/grants', { user: 'bob', resource: 'shop', mode: 'read' });
    expect(child.body).toMatchObject({ parentGrantId: short.id, expiresAt: short.expiresAt });
    await eventually(async () => ((await grantsOf(false)).some((g) => g.id === child.body.id) ? undefined : true), 15_000);
    expect((await call('mia', 'POST', '/api/access/grants', { user: 'bob', resource: 'shop', mode: 'read' })).status).toBe(403);
  }, 30_000);
});
