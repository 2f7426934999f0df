import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, startUpstream, UPSTREAM, type GatewayHarness, type Upstream } from './harness.conformance.js';
import type { TlsMode } from './resources.js';
import { grantAccess } from '../../test/helpers/gateway.js';

/**
 * Every upstream TLS mode against a real PostgreSQL with SSL on, and one without SSL: `prefer`
 * — the CLI's default — must log in both ways (it used to time out against a server without
 * SSL), `require` and `verify-*` must refuse a server without SSL, and `disable` never uses it.
 */

let upstream: Upstream;
let plain: Upstream;
let h: GatewayHarness;

const MODES: Record<string, { mode: TlsMode; caFile?: boolean; serverName?: string }> = {
  'tls-disable': { mode: 'disable' },
  'tls-prefer': { mode: 'prefer' },
  'tls-require': { mode: 'require' },
  'tls-verify-ca': { mode: 'verify-ca', caFile: true },
  'tls-verify-full': { mode: 'verify-full', caFile: true, serverName: 'localhost' },
};

beforeAll(async () => {
  upstream = await startUpstream();
  plain = await startUpstream({ ssl: false });
  h = await startHarness(upstream);
  for (const [server, port] of [['ssl', upstream.port], ['plain', plain.port]] as const) {
    for (const [mode, t] of Object.entries(MODES)) {
      const name = `${server}-${mode}`;
      const tls = { mode: t.mode, ...(t.caFile === true ? { caFile: upstream.certFile } : {}), ...(t.serverName === undefined ? {} : { serverName: t.serverName }) };
      await h.gateway.resources.create({ name, host: '127.0.0.1', port, database: 'shop', user: UPSTREAM.scram.user, credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls });
      await grantAccess(h, h.users.alice, name, 'read');
    }
  }
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
  await plain?.stop();
});

async function sslOf(resource: string): Promise<boolean | string> {
  const c = new pg.Client({ connectionString: h.url(h.users.alice, resource), connectionTimeoutMillis: 20_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl;
  } catch (err) {
    return `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe('upstream TLS modes', () => {
  it('server with SSL: disable stays plain, every other mode encrypts', async () => {
    const got: Record<string, boolean | string> = {};
    for (const name of Object.keys(MODES)) got[name] = await sslOf(`ssl-${name}`);
    expect(got).toEqual({ 'tls-disable': false, 'tls-prefer': true, 'tls-require': true, 'tls-verify-ca': true, 'tls-verify-full': true });
  });

  it('server without SSL: disable and prefer log in in the clear; require and verify-* refuse', async () => {
    const got: Record<string, boolean | string> = {};
    for (const name of Object.keys(MODES)) got[name] = await sslOf(`plain-${name}`);
    expect(got['tls-disable']).toBe(false);
    expect(got['tls-prefer']).toBe(false);
    for (const name of ['tls-require', 'tls-verify-ca', 'tls-verify-full']) expect(got[name], name).toMatch(/^08001 .*refused TLS/);
  });
});
