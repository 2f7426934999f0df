import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnDdl } from '../src/telemetry/duckdb-chunks.js';
import { LOG_COLUMNS } from '../src/telemetry/duckdb-schema.js';
import { DuckDbTelemetryStore } from '../src/telemetry/duckdb-store.js';
import { logBatch } from '../src/telemetry/conformance-batches.js';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { eventually, startTestServer, type TestServer } from './helpers/server.js';

/**
 * LogRecord.event_name (OTLP 1.5, field 12): stored from protobuf and JSON, returned and
 * searchable (GET /api/logs?eventName=); a data dir from before the column gets it on open.
 */

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

interface Log { body: string; eventName: string; service: string }

async function logsWhere(query: string, n: number): Promise<Log[]> {
  return eventually(async () => {
    const r = await server.api<{ logs: Log[] }>(`/api/logs?${query}&from=now-1h`);
    return r.body.logs.length >= n ? r.body.logs : undefined;
  });
}

describe('LogRecord.event_name', () => {
  it('JSON and protobuf records keep their event name; the API filters by it', async () => {
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const json = JSON.stringify({ resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'events-json' } }] },
      scopeLogs: [{ scope: { name: 'browser' }, logRecords: [
        { timeUnixNano: now, eventName: 'browser.page_view', body: { stringValue: 'viewed /cart' } },
        { timeUnixNano: now, body: { stringValue: 'a plain log line' } },
      ] }],
    }] });
    const r1 = await fetch(`${server.url}/v1/logs`, { method: 'POST', body: json, headers: { 'content-type': 'application/json' } });
    expect(r1.status).toBe(200);
    // The OTel SDK's own protobuf exporter writes event_name as field 12.
    const provider = new LoggerProvider({ resource: resourceFromAttributes({ 'service.name': 'events-proto' }),
      processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${server.url}/v1/logs` }) })] });
    provider.getLogger('app').emit({ eventName: 'app.checkout', body: 'checkout done' });
    await provider.forceFlush();
    await provider.shutdown();

    const views = await logsWhere('eventName=browser.page_view', 1);
    expect(views).toEqual([expect.objectContaining({ body: 'viewed /cart', eventName: 'browser.page_view', service: 'events-json' })]);
    const checkout = await logsWhere('eventName=app.checkout', 1);
    expect(checkout).toEqual([expect.objectContaining({ body: 'checkout done', eventName: 'app.checkout', service: 'events-proto' })]);
    const plain = await logsWhere('service=events-json&q=plain', 1);
    expect(plain[0].eventName).toBe('');
  });
});

describe('a data dir from before event_name', () => {
  it('gets the column on open; old rows read as plain logs, new rows keep their name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-migrate-'));
    const path = join(dir, 'telemetry.duckdb');
    try {
      const old = LOG_COLUMNS.filter((c) => c.name !== 'event_name');
      const db = await DuckDBInstance.create(path);
      const con = await db.connect();
      await con.run(`CREATE TABLE logs (${columnDdl(old)})`);
      await con.run(`INSERT INTO logs (time_us, observed_time_us, severity_number, severity_text, body, trace_id, span_id, flags, service, version, environment, resource_id, attrs)
        VALUES (${Date.now() * 1000}, 0, 9, 'INFO', 'written by an older tightloop', 0, 0, 0, 'legacy', '', '', 0, '{}')`);
      con.closeSync();
      db.closeSync();

      const store = new DuckDbTelemetryStore(path);
      await store.open();
      try {
        await store.append([{ logs: logBatch([{ timeUs: Date.now() * 1000, body: 'new', service: 'legacy', eventName: 'app.started' }]) }]);
        const rows = await store.searchLogs({ service: 'legacy', fromUs: (Date.now() - 60_000) * 1000, toUs: (Date.now() + 60_000) * 1000, limit: 10 });
        expect(rows.map((r) => [r.body, r.eventName]).sort()).toEqual([['new', 'app.started'], ['written by an older tightloop', '']]);
        const named = await store.searchLogs({ eventName: 'app.started', fromUs: (Date.now() - 60_000) * 1000, toUs: (Date.now() + 60_000) * 1000, limit: 10 });
        expect(named.map((r) => r.body)).toEqual(['new']);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
