import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toTimestamp } from '../state/index.js';
import { startApi, UPSTREAM, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { gatewayDb } from './schema.js';
import { grantAccess, startGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Credential sources and how a password leaves the gateway: an API admin must not be able to
 * read the server's files or environment through a resource credential, and the password goes
 * out in cleartext or MD5 only over TLS unless the resource opts in.
 */

let upstream: Upstream;
let h: GatewayHarness;
let api: { url: string; close(): Promise<void> };

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  api = await startApi(h);
  process.env.TIGHTLOOP_CRED_TEST_PLAIN = UPSTREAM.plain.password;
});
afterAll(async () => {
  await api?.close();
  await h?.close();
  await upstream?.stop();
});

async function addResource(name: string, credential: string, extra: Record<string, unknown> = {}): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`${api.url}/api/resources`, {
    method: 'POST', headers: { authorization: `Bearer ${h.admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.plain.user, credential, tls: { mode: 'disable' }, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

async function grant(name: string): Promise<void> {
  await grantAccess(h, h.users.alice, name, 'read');
}

async function login(resource: string): Promise<string> {
  const c = new pg.Client({ connectionString: h.url(h.users.alice, resource), connectionTimeoutMillis: 20_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return String((await c.query<{ u: string }>('SELECT current_user AS u')).rows[0].u);
  } catch (err) {
    return `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe('credential sources', () => {
  it('refuses files outside the credential directory and variables outside the allow-list (400)', async () => {
    const credDir = join(h.dataDir, 'credentials');
    for (const ref of ['file:/proc/self/environ', 'file:/etc/shadow', 'file:/etc/passwd', `file:${credDir}/../state.db`, `file:${h.dataDir}/admin.token`,
      `file:${credDir}`, 'file:relative/path', 'env:HOME', 'env:PATH', 'env:TIGHTLOOP_TEST_PG_SCRAMX', 'env:TIGHTLOOP_CREDX']) {
      const r = await addResource(`bad-${ulid().toLowerCase()}`, ref);
      expect(r.status, ref).toBe(400);
      // (a relative path already fails the reference's syntax)
      expect(r.body.error?.code, ref).toBe(ref === 'file:relative/path' ? 'bad_request' : 'credential_source_refused');
    }
    expect((await addResource('ok-env', 'env:TIGHTLOOP_CRED_TEST_PLAIN', { allowInsecurePassword: true })).status).toBe(201);
    expect((await addResource('ok-file', `file:${credDir}/plain.secret`, { allowInsecurePassword: true })).status).toBe(201);
    for (const r of ['ok-env', 'ok-file']) {
      await grant(r);
      expect(await login(r)).toBe(UPSTREAM.plain.user);
    }
  });

  it('at connect time too: a link out of the directory, or a row that predates the rules, is refused', async () => {
    const credDir = join(h.dataDir, 'credentials');
    symlinkSync('/etc/passwd', join(credDir, 'sneaky'));
    expect((await addResource('via-link', `file:${credDir}/sneaky`, { allowInsecurePassword: true })).status).toBe(201);
    await grant('via-link');
    expect(await login('via-link')).toMatch(/credential file leads outside/);

    const db = gatewayDb(h.state.db);
    for (const [name, ref] of [['old-env', 'env:HOME'], ['old-file', 'file:/proc/self/environ']]) {
      const now = toTimestamp(Date.now());
      await db.insertInto('gateway_resources').values({
        id: ulid(), name, host: '127.0.0.1', port: upstream.port, database: 'shop', upstream_user: UPSTREAM.plain.user, credential_ref: ref,
        tls_mode: 'disable', tls_ca_file: null, tls_server_name: null, allow_insecure_password: 1, policy: '{}', created_at: now, updated_at: now,
      }).execute();
      await grant(name);
      expect(await login(name), ref).toMatch(/is not allowed|must be inside/);
    }
  });

  it('a regular file of at most 64 KiB', async () => {
    const big = join(h.dataDir, 'credentials', 'big');
    writeFileSync(big, 'x'.repeat(100_000));
    expect((await addResource('big', `file:${big}`, { allowInsecurePassword: true })).status).toBe(201);
    await grant('big');
    expect(await login('big')).toMatch(/regular file of at most 64 KiB/);
  });
});

describe('password on the wire', () => {
  it('no cleartext or MD5 password without TLS unless the resource opts in', async () => {
    const make = (name: string, user: string, credential: string, tls: string, allowInsecurePassword: boolean) =>
      h.gateway.resources.create({ name, host: '127.0.0.1', port: upstream.port, database: 'shop', user, credential, tls: { mode: tls }, allowInsecurePassword });
    await make('plain-no', UPSTREAM.plain.user, 'env:TIGHTLOOP_CRED_TEST_PLAIN', 'disable', false);
    await make('md5-no', UPSTREAM.md5.user, 'env:TIGHTLOOP_TEST_PG_MD5', 'disable', false);
    await make('plain-tls', UPSTREAM.plain.user, 'env:TIGHTLOOP_CRED_TEST_PLAIN', 'require', false);
    await make('md5-tls', UPSTREAM.md5.user, 'env:TIGHTLOOP_TEST_PG_MD5', 'require', false);
    await make('plain-yes', UPSTREAM.plain.user, 'env:TIGHTLOOP_CRED_TEST_PLAIN', 'disable', true);
    for (const r of ['plain-no', 'md5-no', 'plain-tls', 'md5-tls', 'plain-yes']) await grant(r);
    expect(await login('plain-no')).toMatch(/^08001 .*in cleartext on a connection without TLS: refused/);
    expect(await login('md5-no')).toMatch(/^08001 .*as MD5 on a connection without TLS: refused/);
    expect(await login('plain-tls')).toBe(UPSTREAM.plain.user);
    expect(await login('md5-tls')).toBe(UPSTREAM.md5.user);
    expect(await login('plain-yes')).toBe(UPSTREAM.plain.user);
    // SCRAM never reveals the password: no opt-in needed without TLS.
    expect(await login('shop')).toBe(UPSTREAM.scram.user);
  });
});
