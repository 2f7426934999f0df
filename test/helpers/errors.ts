import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { serverConfigSchema } from '../../src/http/config.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { stateUrlFor } from './server.js';

/** A real tightloop for the errors tests, exposing its default DSN and error events. */
export interface ErrorsTestServer {
  server: RunningServer;
  url: string;
  token: string;
  api<T = unknown>(path: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export async function startErrorsServer(): Promise<ErrorsTestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-errors-'));
  const config = serverConfigSchema.parse({ dataDir, port: 0, logLevel: 'silent', stateUrl: await stateUrlFor(dataDir) });
  const server = await startServer(config, pino({ level: 'silent' }));
  const token = server.adminToken!;
  return {
    server, url: server.url, token,
    async api<T>(path: string, init: { method?: string; body?: unknown } = {}) {
      const res = await fetch(server.url + path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
