import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { serverConfigSchema, type ServerConfig } from '../../src/http/config.js';
import { startServer } from '../../src/http/server.js';

export interface TestServer {
  url: string;
  token: string;
  dataDir: string;
  api<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** A real tightloop in this process on an ephemeral loopback port with a fresh data dir. */
export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-test-'));
  const config = serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', ...overrides });
  const server = await startServer(config, pino({ level: 'silent' }));
  const token = server.adminToken;
  if (token === undefined) throw new Error('first start must create an admin token');
  return {
    url: server.url,
    token,
    dataDir,
    async api<T>(path: string) {
      const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as T };
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
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
