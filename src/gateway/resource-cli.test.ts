import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, startApi, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { startGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { containing } from '../../test/helpers/match.js';

/** `resource add` warns about a superuser upstream login; `resource set-policy` replaces a policy. */

let upstream: Upstream;
let h: GatewayHarness;
let api: { url: string; close(): Promise<void> };
let dir: string;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  api = await startApi(h);
  dir = mkdtempSync(join(tmpdir(), 'tightloop-rescli-'));
  await upstreamSql(upstream, `CREATE ROLE gw_least LOGIN PASSWORD 'least-secret' NOSUPERUSER; GRANT SELECT ON ALL TABLES IN SCHEMA public TO gw_least`);
  process.env.TIGHTLOOP_CRED_TEST_LEAST = 'least-secret';
});
afterAll(async () => {
  await api?.close();
  await h?.close();
  await upstream?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('resource CLI', () => {
  const flags = (): string[] => ['--url', api.url, '--token', h.admin.token];
  const add = (name: string, user: string, cred: string) =>
    cli(['resource', 'add', name, '--host', '127.0.0.1', '--port', String(upstream.port), '--database', 'shop', '--user', user, '--credential', cred, '--tls', 'disable', ...flags()]);

  it('warns when the upstream login is a superuser, not when it is least-privilege', async () => {
    const su = await add('shop-su', 'app_scram', 'env:TIGHTLOOP_TEST_PG_SCRAM');
    expect(su.code).toBe(0);
    expect(su.stderr).toMatch(/warning: upstream login "app_scram" is a superuser/);
    const least = await add('shop-least', 'gw_least', 'env:TIGHTLOOP_CRED_TEST_LEAST');
    expect(least.code).toBe(0);
    expect(least.stderr).toBe('');
  });

  it('set-policy replaces the policy; a bad policy is refused', async () => {
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ guardrails: { allowFunctions: ['pg_sleep'] }, masking: { columns: [{ name: 'email', mode: 'hash' }] } }));
    const r = await cli(['resource', 'set-policy', 'shop-least', file, ...flags()]);
    expect(r).toMatchObject({ code: 0, stdout: containing('policy of shop-least replaced') });
    const got = await h.gateway.resources.get('shop-least');
    expect(got?.policy.guardrails.allowFunctions).toEqual(['pg_sleep']);
    expect(got?.policy.masking.columns).toEqual([{ name: 'email', mode: 'hash' }]);
    writeFileSync(file, JSON.stringify({ masking: { mode: 'sometimes' } }));
    expect((await cli(['resource', 'set-policy', 'shop-least', file, ...flags()])).code).toBe(1);
    expect((await cli(['resource', 'set-policy', 'shop-least', join(dir, 'missing.json'), ...flags()])).code).toBe(2);
  });

  it('show prints the policy and the columns masking classified (after a session read the catalog)', async () => {
    const before = await cli(['resource', 'show', 'shop', ...flags()]);
    expect(before).toMatchObject({ code: 0, stdout: containing('not yet classified') });
    const c = new pg.Client({ connectionString: h.url(h.users.alice, 'shop') });
    await c.connect();
    await c.end();
    const r = await cli(['resource', 'show', 'shop', ...flags()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/public\.customers\s+email\s+sample\s+email\s+values\s+partial/);
    expect(r.stdout).not.toMatch(/\sname\s/);
  });
});
