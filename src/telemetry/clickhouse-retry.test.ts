/**
 * Retries into ClickHouse store nothing twice when an append fails part-way: the writer groups a
 * traces request and a logs request into one append (one INSERT per signal), the logs INSERT
 * fails every attempt after the spans INSERT succeeded. The traces request is acknowledged (its
 * rows are stored) and only the logs request is refused, so a sender that retries what was
 * refused stores each row once. On a real ClickHouse (test/clickhouse-engine), the failure injected
 * by a proxy in front of it that refuses INSERTs into `logs_input` as ClickHouse would.
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickHouseEngineInstalled, startClickHouseEngine, type RunningEngine } from '../../test/clickhouse-engine/harness.js';
import { AppError } from '../core/app-error.js';
import { CLICKHOUSE_WRITER_OPTIONS, ClickHouseTelemetryStore } from './clickhouse-store.js';
import { ChSql, parseClickHouseUrl } from './clickhouse-sql.js';
import { hexOf, logBatch, spanBatch } from './conformance-batches.js';
import { PartialAppendError, type TelemetryBatches } from './store.js';
import { T0, US } from './store.conformance.js';
import { TelemetryWriter } from './writer.js';

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;

describe.skipIf(!installed)('ClickHouse append that fails part-way', () => {
  beforeAll(async () => { engine = await startClickHouseEngine(); }, 60_000);
  afterAll(async () => { await engine?.stop(); });

  it('acknowledges the requests it stored and refuses only the rest, so a sender\'s retries store each row once', async () => {
    let failLogs = true;
    let refused = 0;
    const proxy = await startProxy(engine.http, (url) => {
      if (failLogs && /^INSERT INTO logs_input\b/.test(new URL(url, 'http://proxy').searchParams.get('query') ?? '')) { refused++; return true; }
      return false;
    });
    const db = `partial_${process.pid}`;
    const store = new ClickHouseTelemetryStore({ url: `clickhouse://tl:secret@127.0.0.1:${proxy.port}/${db}`, nodeId: 'a', insertAttempts: 2 });
    await store.open();
    // A long delay: both requests wait for each other and go into one append.
    const writer = new TelemetryWriter(store, { maxDelayMs: 200, ...CLICKHOUSE_WRITER_OPTIONS });
    try {
      const spans = Array.from({ length: 50 }, (_, i) => ({ traceId: hexOf(i + 1, 32), spanId: hexOf(i + 1, 16), kind: 2, name: 'GET /', service: 'shop', startUs: T0 + i * 1000 }));
      const logs = Array.from({ length: 20 }, (_, i) => ({ timeUs: T0 + i * 1000, body: `line ${i}`, service: 'shop' }));
      const requests: TelemetryBatches[] = [{ spans: spanBatch(spans) }, { logs: logBatch(logs) }];
      const first = await Promise.allSettled(requests.map((r) => writer.submit(r)));
      expect(refused).toBe(2); // both attempts of the one logs INSERT

      // The sender retries what was refused, as OTLP exporters do on 503.
      failLogs = false;
      for (let i = 0; i < requests.length; i++) if (first[i].status === 'rejected') await writer.submit(requests[i]);

      const sql = new ChSql(parseClickHouseUrl(engine.url(db)));
      try {
        expect(await sql.rows('SELECT count() AS n FROM spans')).toEqual([{ n: 50 }]);
        expect(await sql.rows('SELECT count() AS n FROM logs')).toEqual([{ n: 20 }]);
        expect(await sql.rows('SELECT sum(count) AS n FROM rollup_second WHERE all_operations')).toEqual([{ n: 50 }]);
      } finally {
        await sql.close();
      }
      expect((await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 }))[0].count).toBe(50);
      // Because the traces request was acknowledged and only the logs request refused.
      expect(first.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
      const err = (first[1] as PromiseRejectedResult).reason as unknown;
      expect(err).toBeInstanceOf(PartialAppendError);
      expect((err as AppError).status).toBe(503);
      expect((err as PartialAppendError).stored).toEqual([true, false]);
      expect(writer.stats()).toMatchObject({ requestsCommitted: 2, rowsCommitted: 70 });
    } finally {
      await writer.close();
      await store.close();
      await proxy.close();
      const sql = new ChSql(parseClickHouseUrl(engine.url(db)), 'default');
      try { await sql.command(`DROP DATABASE IF EXISTS ${db}`); } finally { await sql.close(); }
    }
  });
});

/** An HTTP proxy to `target` that answers the requests `refuse` selects with a ClickHouse error, without forwarding them. */
async function startProxy(target: string, refuse: (url: string) => boolean): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (refuse(req.url ?? '')) {
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'X-ClickHouse-Exception-Code': '242', 'Content-Type': 'text/plain; charset=UTF-8' });
        res.end('Code: 242. DB::Exception: Table is in readonly mode (injected by the test). (TABLE_IS_READ_ONLY)\n');
      });
      return;
    }
    const up = request(target + (req.url ?? ''), { method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 500, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
