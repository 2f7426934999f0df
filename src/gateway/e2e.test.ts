import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serverConfigSchema } from '../http/config.js';
import { startServer, type RunningServer } from '../http/server.js';
import { cli, startUpstream, UPSTREAM, type Upstream } from './harness.conformance.js';

/** The README's gateway walk-through, against a real `tightloop up` (startServer) and psql. */
const run = promisify(execFile);
let upstream: Upstream;
let server: RunningServer;
let dataDir: string;

beforeAll(async () => {
  upstream = await startUpstream();
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-e2e-'));
  server = await startServer(serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
});
afterAll(async () => {
  await server?.close();
  await upstream?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

it('resource add → access grant → psql through the gateway (masked) → audit verify', async () => {
  const base = ['--url', server.url, '--data-dir', dataDir];
  process.env.ORDERS_DB_PASSWORD = UPSTREAM.scram.password;
  const add = await cli(['resource', 'add', 'orders-prod', '--host', '127.0.0.1', '--port', String(upstream.port), '--database', 'shop',
    '--user', UPSTREAM.scram.user, '--credential', 'env:ORDERS_DB_PASSWORD', '--tls', 'disable', ...base]);
  expect(add).toMatchObject({ code: 0, stdout: expect.stringContaining('added resource orders-prod') });
  expect(await cli(['access', 'grant', 'admin', 'orders-prod', '--mode', 'read', '--for', '1h', ...base])).toMatchObject({ code: 0 });
  const list = await cli(['resource', 'list', ...base, '--json']);
  expect(JSON.parse(list.stdout)).toMatchObject({ resources: [{ name: 'orders-prod', credential: 'env:ORDERS_DB_PASSWORD' }] });

  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const url = `postgres://admin:${token}@127.0.0.1:${server.gatewayPort ?? 0}/orders-prod`;
  const r = await run('psql', [url, '-X', '-A', '-t', '-c', 'SELECT email FROM customers ORDER BY id']);
  expect(r.stdout.trim().split('\n')).toEqual(['*****@******e.com', '***@******e.org']);
  const blocked = await run('psql', [url, '-X', '-c', 'DELETE FROM orders']).catch((e: { stderr: string }) => e);
  expect(blocked.stderr).toContain('blocked by guardrail "read-only"');

  expect(await cli(['audit', 'verify', ...base])).toMatchObject({ code: 0, stdout: expect.stringContaining('audit chain OK') });
  const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
  expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/resources', '/api/access/requests', '/api/audit', '/api/audit/verify']));
});
