import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { serverConfigSchema, type ServerConfig } from '../../src/http/config.js';
import { startServer } from '../../src/http/server.js';
import { SERVER_STATE_MIGRATIONS } from '../../src/http/state-migrations.js';
import { testStateDialect } from '../../src/state/dialects.conformance.js';
import { createTestDatabase } from '../../src/state/pg-cluster.conformance.js';
import type { StateDialectName } from '../../src/state/index.js';

export interface TestServer {
  url: string;
  token: string;
  dataDir: string;
  /** The PostgreSQL state database, undefined on SQLite. */
  stateUrl: string | undefined;
  api<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/**
 * A state database for a test server: `undefined` for SQLite (the data dir's file), or a fresh
 * PostgreSQL database on the run's shared test cluster, copied from the migrated template.
 */
export async function testStateUrl(dialect: StateDialectName): Promise<{ stateUrl: string | undefined; drop(): Promise<void> }> {
  if (dialect === 'sqlite') return { stateUrl: undefined, drop: () => Promise.resolve() };
  const database = await createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS });
  return { stateUrl: database.connectionString, drop: () => database.drop() };
}

const databasesByDataDir = new Map<string, Promise<string>>();

/**
 * The `stateUrl` for a server on `dataDir` in this vitest project: undefined on SQLite (the file
 * in the data dir), else a PostgreSQL database created for that data dir on first use, so a
 * server restarted on the same data dir finds its state again. Dropped with the test cluster.
 */
export async function stateUrlFor(dataDir: string, dialect: StateDialectName = testStateDialect()): Promise<string | undefined> {
  if (dialect === 'sqlite') return undefined;
  let url = databasesByDataDir.get(dataDir);
  if (url === undefined) {
    url = createTestDatabase({ migrations: SERVER_STATE_MIGRATIONS }).then((d) => d.connectionString);
    databasesByDataDir.set(dataDir, url);
  }
  return await url;
}

/**
 * A real tightloop in this process on an ephemeral loopback port with a fresh data dir, its
 * state on `dialect` (default: the vitest project's, see STATE_SUITES in vitest.loop.config.ts).
 */
export async function startTestServer(overrides: Partial<ServerConfig> = {}, dialect: StateDialectName = testStateDialect()): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-test-'));
  const state = await testStateUrl(dialect);
  const config = serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl: state.stateUrl, ...overrides });
  const server = await startServer(config, pino({ level: 'silent' }));
  const token = server.adminToken;
  if (token === undefined) throw new Error('first start must create an admin token');
  return {
    url: server.url,
    token,
    dataDir,
    stateUrl: state.stateUrl,
    async api<T>(path: string) {
      const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as T };
    },
    async close() {
      await server.close();
      await state.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One call to a tightloop API with a bearer token; a body goes as JSON. The answer's status and
 * parsed body ({} when it has none or it is not JSON).
 */
export async function callApi<T>(baseUrl: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}
