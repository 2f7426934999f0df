import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, UPSTREAM, type Upstream } from '../src/gateway/harness.conformance.js';
import { BIN, freePort } from './helpers/child-server.js';
import { jsonTraceRequest, randomTraceId } from './helpers/otlp-json.js';
import { haveStrace, readTrace, spawnTraced, stopTraced, syncedBeforeAck, tcpPorts, type Call, type Traced } from './helpers/strace.js';

/**
 * Acknowledged means synced, checked from the system calls. test/durability.test.ts kills the
 * server with SIGKILL, which keeps the page cache: it would pass with every fsync deleted. Here
 * the built server runs under `strace -f` and, for every acknowledged request, the record that
 * carries its marker must be written to its durable file, that file fsync'ed/fdatasync'ed, and
 * the sync returned, before the acknowledgement goes out:
 *  - OTLP traces and logs: ingest-log segment, then the HTTP 200;
 *  - Sentry events: state.db-wal (errors commit worker), then the HTTP 200;
 *  - the gateway's audit chain: the `statement.start` record in state.db-wal, then the statement
 *    to the upstream database (audit before effect).
 * Each fails when the sync is deleted or moved after the acknowledgement (checked by editing
 * dist/ once for each path). Nothing here is timed.
 */

const dirs: string[] = [];
const running: Traced[] = [];
afterAll(async () => {
  for (const t of running) await stopTraced(t, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'tightloop-sync-'));
  dirs.push(d);
  return d;
}

async function healthy(t: Traced, port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (t.strace.exitCode !== null) throw new Error(`server exited: ${t.stderr()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${t.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `tightloop up` under strace; the recording is `<dir>/trace`. */
async function upTraced(dir: string, port: number, gatewayPort: number, env?: NodeJS.ProcessEnv): Promise<Traced> {
  const t = await spawnTraced(join(dir, 'trace'), process.execPath, [BIN, 'up', '--data-dir', join(dir, 'data'), '--port', String(port), '--gateway-port', String(gatewayPort), '--log-level', 'warn'], env);
  running.push(t);
  await healthy(t, port);
  return t;
}

/** The HTTP 200 on the connection the request came in on. */
const http200 = (c: Call, request: Call): boolean => c.fd === request.fd && /^\d+<[^"]*"HTTP\/1\.1 200 /.test(c.text.replace(/\[\{iov_base=/, ''));

function expectAllSynced(calls: Call[], markers: string[], file: RegExp, ack: (c: Call, r: Call) => boolean): void {
  const wrong = markers.map((marker) => syncedBeforeAck(calls, { marker, file, ack })).filter((w) => w !== undefined);
  expect(wrong).toEqual([]);
}

describe('acknowledged after the sync (strace)', () => {
  beforeAll(() => {
    if (!haveStrace()) throw new Error('strace is missing: apt-get install strace (.ci/run installs it)');
  });

  it('OTLP traces and logs: the ingest log is fdatasync\'ed before the 200', async () => {
    const dir = scratch();
    const port = await freePort();
    const t = await upTraced(dir, port, await freePort());
    const markers: string[] = [];
    try {
      // One request at a time, so each one's write, sync and response are its own.
      for (let i = 0; i < 4; i++) {
        const traceId = randomTraceId();
        markers.push(traceId);
        const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonTraceRequest(traceId, 3) });
        expect(res.status).toBe(200);
      }
      for (let i = 0; i < 2; i++) {
        const marker = `logline-${randomBytes(8).toString('hex')}`;
        markers.push(marker);
        const body = JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'durable' } }] }, scopeLogs: [{ logRecords: [{ timeUnixNano: String(Date.now() * 1e6), severityText: 'INFO', body: { stringValue: marker } }] }] }] });
        const res = await fetch(`http://127.0.0.1:${port}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status).toBe(200);
      }
    } finally {
      await stopTraced(t);
    }
    expectAllSynced(readTrace(join(dir, 'trace')), markers, /\/ingest-log\/[0-9a-f]{16}\.log$/, http200);
  }, 120_000);

  it('Sentry events: state.db-wal is synced after the commit, before the 200', async () => {
    const dir = scratch();
    const port = await freePort();
    const t = await upTraced(dir, port, await freePort());
    const ids: string[] = [];
    try {
      const dsn = /Sentry DSN\s+(\S+)/.exec(t.stdout())?.[1];
      expect(dsn).toBeDefined();
      const u = new URL(dsn!);
      for (let i = 0; i < 3; i++) {
        const id = randomBytes(16).toString('hex');
        ids.push(id);
        const event = JSON.stringify({ event_id: id, timestamp: Date.now() / 1000, platform: 'node', level: 'error', exception: { values: [{ type: 'Error', value: `boom ${i}`, stacktrace: { frames: [{ filename: '/app/a.js', function: `f${i}`, lineno: i + 1, in_app: true }] } }] } });
        const body = `${JSON.stringify({ event_id: id })}\n${JSON.stringify({ type: 'event', length: Buffer.byteLength(event) })}\n${event}\n`;
        const res = await fetch(`http://127.0.0.1:${port}/api${u.pathname}/envelope/?sentry_key=${u.username}`, { method: 'POST', headers: { 'content-type': 'application/x-sentry-envelope' }, body });
        expect(res.status).toBe(200);
      }
    } finally {
      await stopTraced(t);
    }
    expectAllSynced(readTrace(join(dir, 'trace')), ids, /\/state\.db-wal$/, http200);
  }, 120_000);

  describe('gateway', () => {
    let upstream: Upstream | undefined;
    afterAll(async () => { await upstream?.stop(); });

    it('audit chain: a write\'s statement.start record is synced before the statement goes upstream', async () => {
      upstream = await startUpstream();
      const a = await upstream.admin();
      await a.query('CREATE TABLE sync_probe (n int)');
      await a.end();
      const dir = scratch();
      const port = await freePort();
      const gatewayPort = await freePort();
      const env = { ...process.env, TIGHTLOOP_CRED_TEST_PG: UPSTREAM.scram.password };
      const t = await upTraced(dir, port, gatewayPort, env);
      const markers: string[] = [];
      try {
        const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
        const api = async (path: string, body: unknown): Promise<void> => {
          const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
          expect(res.status).toBeLessThan(300);
        };
        await api('/api/resources', { name: 'shop', host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user, credential: 'env:TIGHTLOOP_CRED_TEST_PG', tls: { mode: 'disable' } });
        await api('/api/access/grants', { user: 'admin', resource: 'shop', mode: 'write' });
        const c = new pg.Client({ host: '127.0.0.1', port: gatewayPort, user: 'admin', password: token, database: 'shop' });
        await c.connect();
        try {
          for (let i = 0; i < 4; i++) {
            // The marker is an identifier: the audit record keeps the normalised SQL (literals out).
            const marker = `m_${randomBytes(8).toString('hex')}`;
            markers.push(marker);
            if (i % 2 === 0) await c.query(`INSERT INTO sync_probe VALUES (${i}) RETURNING n AS ${marker}`);
            else await c.query(`INSERT INTO sync_probe VALUES ($1) RETURNING n AS ${marker}`, [i]);
          }
        } finally {
          await c.end();
        }
      } finally {
        await stopTraced(t);
      }
      const upstreamPort = upstream.port;
      const toUpstream = (c: Call): boolean => tcpPorts(c.fd)?.remote === upstreamPort && markers.some((m) => c.text.includes(m));
      const calls = readTrace(join(dir, 'trace'));
      const wrong = markers.map((marker) => syncedBeforeAck(calls, { marker, file: /\/state\.db-wal$/, ack: (c) => toUpstream(c) && c.text.includes(marker) })).filter((w) => w !== undefined);
      expect(wrong).toEqual([]);
    }, 120_000);
  });
});
