import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { apiError } from '../src/core/app-error.js';
import { AuditAnchor } from '../src/gateway/audit-anchor.js';
import { startNode, type RunningNode } from '../src/http/cluster.js';
import { checkAdvertiseUrl, registerForwarding } from '../src/http/cluster-forward.js';
import { serverConfigSchema } from '../src/http/config.js';
import { SERVER_STATE_MIGRATIONS } from '../src/http/state-migrations.js';
import { openStateStore } from '../src/state/index.js';
import { createTestDatabase } from '../src/state/pg-cluster.conformance.js';
import { BIN, freePort } from './helpers/child-server.js';
import { callApi, eventually } from './helpers/server.js';
import { matching, thrownBy } from './helpers/match.js';

/**
 * The URL a node registers for the others to forward to (docs/cluster.md, "Bind addresses"): a
 * node bound to 0.0.0.0 or :: registered that address, so every other node "forwarded" to
 * itself and answered 503. Now such a node needs `cluster.advertiseUrl` (refused at start
 * without it), registers that URL, and a node never forwards to its own URL.
 */

const silent = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
const describePg = process.env.TIGHTLOOP_TEST_PG === '0' ? describe.skip : describe;
const PG = 'postgres://u:p@127.0.0.1:1/none';
const DIR = mkdtempSync(join(tmpdir(), 'tightloop-advertise-cfg-'));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('cluster.advertiseUrl', () => {
  it('a PostgreSQL node bound to an unspecified address needs it (config, flag and exit code); SQLite and a real address do not', async () => {
    for (const host of ['0.0.0.0', '::', '[::]']) {
      const err = await loadConfig({ flags: { dataDir: DIR, stateUrl: PG, host }, env: {} }).then(() => undefined, (e: unknown) => e);
      expect(err, host).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/TIGHTLOOP_ADVERTISE_URL.*binds every interface/);
    }
    expect((await loadConfig({ flags: { dataDir: DIR, stateUrl: PG, host: '0.0.0.0', 'cluster.advertiseUrl': 'http://10.0.0.5:4318' }, env: {} })).config.cluster.advertiseUrl).toBe('http://10.0.0.5:4318');
    expect((await loadConfig({ flags: { dataDir: DIR, host: '0.0.0.0' }, env: {} })).config.host).toBe('0.0.0.0');
    expect((await loadConfig({ flags: { dataDir: DIR, stateUrl: PG, host: '10.0.0.5' }, env: {} })).config.cluster.advertiseUrl).toBeUndefined();
    expect((await loadConfig({ flags: { dataDir: DIR, stateUrl: PG, host: '0.0.0.0' }, env: { TIGHTLOOP_ADVERTISE_URL: 'http://tl-2.internal:4318' } })).config.cluster.advertiseUrl).toBe('http://tl-2.internal:4318');
    for (const bad of ['10.0.0.5:4318', 'https://10.0.0.5', 'http://0.0.0.0:4318', 'http://[::]:4318', 'http://h:1/api', 'http://u:p@h:1']) {
      const err = await loadConfig({ flags: { dataDir: DIR, stateUrl: PG, host: '0.0.0.0', 'cluster.advertiseUrl': bad }, env: {} }).then(() => undefined, (e: unknown) => e);
      expect((err as Error | undefined)?.message, bad).toMatch(/cluster\.advertiseUrl/);
    }
    expect(thrownBy(() => checkAdvertiseUrl('postgres', '0.0.0.0', undefined))).toMatchObject({ code: 'advertise_url_required' });

    // The CLI: refused before anything starts (no PostgreSQL is reached), exit 2, naming the setting.
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-advertise-'));
    cleanups.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--host', '0.0.0.0', '--port', '0', '--state', PG], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect([code, err]).toEqual([2, matching(/--advertise-url \/ TIGHTLOOP_ADVERTISE_URL.*binds every interface/)]);
  });

  it('a node never forwards to its own URL (503 at once, no request to itself)', async () => {
    const app = Fastify();
    let seen = 0;
    app.addHook('onRequest', (_req, _reply, done) => { seen++; done(); });
    app.setErrorHandler((e: Error & { status?: number }, _req, reply) => reply.code(e.status ?? 500).send({ error: e.message }));
    let url = '';
    const stop = registerForwarding(app, {
      self: 'me', selfUrl: () => url, holder: () => Promise.resolve({ id: 'other', url }), reachable: () => true, publicBind: false,
      notServing: () => apiError('node_standby', 'no holder', { retryAfterS: 2 }), log: silent,
    });
    cleanups.push(async () => { stop(); await app.close(); });
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    url = `http://127.0.0.1:${port}`;
    const res = await fetch(`${url}/api/rules`);
    expect(res.status).toBe(503);
    expect(seen).toBe(1);
  });
});

describePg('nodes bound to 0.0.0.0 on one PostgreSQL', () => {
  it('register their advertised URL and forward to each other through it', async () => {
    const db = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
    cleanups.push(() => db.drop());
    const keyDir = mkdtempSync(join(tmpdir(), 'tightloop-advertise-key-'));
    const anchor = new AuditAnchor(join(keyDir, 'gateway-audit.anchor'), join(keyDir, 'gateway-audit.key'), silent);
    await anchor.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
    await anchor.close();
    cleanups.push(() => Promise.resolve(rmSync(keyDir, { recursive: true, force: true })));
    const node = async (): Promise<RunningNode> => {
      const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-advertise-'));
      for (const f of ['gateway-audit.key', 'gateway-audit.anchor']) copyFileSync(join(keyDir, f), join(dataDir, f));
      const port = await freePort();
      const config = serverConfigSchema.parse({ dataDir, host: '0.0.0.0', port, logLevel: 'silent', stateUrl: db.connectionString, cluster: { advertiseUrl: `http://127.0.0.1:${port}` } });
      const n = await startNode(config, silent, { timing: { heartbeatMs: 300, leaseMs: 5_000, marginMs: 500 }, gatewayPort: 0 });
      cleanups.push(async () => { await n.close(); rmSync(dataDir, { recursive: true, force: true }); });
      return n;
    };
    // Without the setting startNode itself refuses (a caller that skipped the config checks).
    await expect(startNode(serverConfigSchema.parse({ dataDir: keyDir, host: '0.0.0.0', port: 0, logLevel: 'silent', stateUrl: db.connectionString }), silent))
      .rejects.toMatchObject({ code: 'advertise_url_required' });

    const a = await node();
    const b = await node();
    const admin = a.active()?.adminToken ?? '';
    const store = await openStateStore({ dialect: 'postgres', connectionString: db.connectionString, migrate: false });
    cleanups.push(() => store.close());
    const urls = await eventually(async () => {
      const r = await sql<{ url: string }>`select url from cluster_nodes order by started_ms`.execute(store.db);
      return r.rows.length === 2 && r.rows.every((x) => x.url !== '') ? r.rows.map((x) => x.url) : undefined;
    });
    expect(urls.sort()).toEqual([`http://127.0.0.1:${a.port}`, `http://127.0.0.1:${b.port}`].sort());
    // b does not hold the lease: it forwards to a's advertised URL (was: to 0.0.0.0, itself: 503).
    const res = await callApi<{ rules: unknown[] }>(`http://127.0.0.1:${b.port}`, admin, 'GET', '/api/rules');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });
});
