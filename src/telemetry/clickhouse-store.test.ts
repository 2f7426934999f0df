/**
 * The ClickHouse store on a real ClickHouse engine (test/clickhouse-engine: ClickHouse 26.x as
 * chdb behind its HTTP interface): the same conformance suite as DuckDB, plus what only a shared
 * server has (several nodes, deduplicated retries).
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickHouseEngineInstalled, startClickHouseEngine, type RunningEngine } from '../../test/clickhouse-engine/harness.js';
import { ClickHouseTelemetryStore } from './clickhouse-store.js';
import { ChSql, describeClickHouse, parseClickHouseUrl, str } from './clickhouse-sql.js';
import { clickHouseSchema } from './clickhouse-schema.js';
import { hexOf, logBatch, metricBatch, spanBatch } from './conformance-batches.js';
import type { RollupSecond } from './rollup.js';
import { runTelemetryStoreConformance, T0, US } from './store.conformance.js';
import { thrownBy } from '../../test/helpers/match.js';

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;
let n = 0;

describe.skipIf(!installed)('ClickHouse store', () => {
  beforeAll(async () => { engine = await startClickHouseEngine(); }, 60_000);
  afterAll(async () => { await engine?.stop(); });

  runTelemetryStoreConformance('clickhouse', () => {
    const url = engine.url(`conformance_${process.pid}_${++n}`);
    return {
      store: new ClickHouseTelemetryStore({ url, nodeId: 'a' }),
      reopen: () => new ClickHouseTelemetryStore({ url, nodeId: 'a' }),
      cleanup: async () => dropDatabase(url),
    };
  });

  it('is on a current ClickHouse', () => {
    expect(Number(engine.version.split('.')[0])).toBeGreaterThanOrEqual(24);
  });

  it('stores an INSERT once when its response is lost and it is retried (deduplication token)', async () => {
    // A proxy that lets the first INSERT reach ClickHouse, then cuts the connection before the reply.
    let cut = 0;
    const proxy = await startProxy(engine.http, (url) => {
      if (cut === 0 && /INSERT/.test(decodeURIComponent(url))) { cut++; return true; }
      return false;
    });
    const db = `dedup_${process.pid}`;
    const store = new ClickHouseTelemetryStore({ url: `clickhouse://tl:secret@127.0.0.1:${proxy.port}/${db}`, nodeId: 'a' });
    await store.open();
    try {
      const spans = Array.from({ length: 50 }, (_, i) => ({ traceId: hexOf(i + 1, 32), spanId: hexOf(i + 1, 16), kind: 2, name: 'GET /', service: 'shop', startUs: T0 + i * 1000 }));
      await store.append([{ spans: spanBatch(spans) }]);
      expect(cut).toBe(1);
      const sql = new ChSql(parseClickHouseUrl(engine.url(db)));
      try {
        expect(await sql.rows('SELECT count() AS n FROM spans')).toEqual([{ n: 50 }]);
        expect(await sql.rows('SELECT sum(count) AS n FROM rollup_second WHERE all_operations')).toEqual([{ n: 50 }]);
      } finally {
        await sql.close();
      }
      expect((await store.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 }))[0].count).toBe(50);
    } finally {
      await store.close();
      await proxy.close();
      await dropDatabase(engine.url(db));
    }
  });

  it('lets several nodes ingest into one database: each reads all rows, RED adds up exactly', async () => {
    const url = engine.url(`nodes_${process.pid}`);
    // Node 1 polls the others only when told (syncPeers), not each second.
    const nodes = [new ClickHouseTelemetryStore({ url, nodeId: 'n1', flushIntervalMs: 3_600_000 }), new ClickHouseTelemetryStore({ url, nodeId: 'n2' }), new ClickHouseTelemetryStore({ url, nodeId: 'n3' })];
    for (const s of nodes) await s.open();
    // What node 1's detectors and deploy verification get: its own deltas and, polled, the others'.
    const live: RollupSecond[] = [];
    const off = nodes[0].onCommittedRollups((rows) => live.push(...rows));
    try {
      // Each node: 100 requests in the same seconds, one in ten an error with an exception event.
      await Promise.all(nodes.map((s, k) => s.append([{ spans: spanBatch(Array.from({ length: 100 }, (_, i) => ({
        traceId: hexOf(k * 1000 + i + 1, 32), spanId: hexOf(k * 1000 + i + 1, 16), kind: 2, name: 'GET /cart', service: 'shop',
        startUs: T0 + (i % 10) * US, durationNs: (k + 1) * 10e6, statusCode: i % 10 === 0 ? 2 : 0,
        events: i % 10 === 0 ? [{ timeUs: T0, name: 'exception', attrs: { 'exception.type': `E${k}` } }] : [],
      }))) }])));
      for (const s of nodes) {
        const [b] = await s.red({ service: 'shop', fromUs: T0, toUs: T0 + 60 * US, stepS: 60 });
        expect([b.count, b.errors]).toEqual([300, 30]);
        // The three nodes' latencies (10, 20, 30 ms) merge into one sketch.
        expect(b.p50Ms).toBeCloseTo(20, 0);
        expect(await s.getTrace(hexOf(2 * 1000 + 5, 32))).toHaveLength(1);
        const ops = await s.operationRollups('second', T0, T0 + 60 * US, 100);
        expect(ops.reduce((a, r) => a + r.count, 0)).toBe(300);
        expect(new Set(ops.map((r) => r.second)).size).toBe(10);
      }
      expect(live.reduce((a, r) => a + r.count, 0)).toBe(100);
      await nodes[0].syncPeers();
      await nodes[0].syncPeers(); // each other node's INSERT once
      expect(live.reduce((a, r) => a + r.count, 0)).toBe(300);
      expect(live.reduce((a, r) => a + r.errors, 0)).toBe(30);
      expect(new Set(live.map((r) => r.sketch.quantile(0.5)! / 1e6).map(Math.round))).toEqual(new Set([10, 20, 30]));
      // The other nodes' deltas (read as RowBinary) name the same series and seconds as the node's own.
      expect(new Set(live.map((r) => `${r.service}|${r.operation}|${r.version}|${r.environment}`)).size).toBe(1);
      expect(new Set(live.map((r) => r.second))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => T0 + i * US)));
      expect(live.filter((r) => r.second === T0).reduce((a, r) => a + r.count, 0)).toBe(30);
      // Replays after a crash are the node's own: the other nodes' error spans are theirs.
      const own = await nodes[1].spansWithEventSince(0, 'exception');
      expect(own.length).toBe(10);
      expect(new Set(own.events.map((e) => (JSON.parse(e) as { attrs: Record<string, unknown> }[])[0].attrs['exception.type']))).toEqual(new Set(['E1']));
    } finally {
      off();
      for (const s of nodes) await s.close();
      await dropDatabase(url);
    }
  });

  it('drops spans starting outside 1970 … 2106 or without a finite duration, counted, and keeps the rest of the batch', async () => {
    const url = engine.url(`range_${process.pid}`);
    const store = new ClickHouseTelemetryStore({ url, nodeId: 'a' });
    await store.open();
    try {
      await store.append([{ spans: spanBatch([
        { traceId: hexOf(1, 32), spanId: hexOf(1, 16), startUs: T0 },
        { traceId: hexOf(1, 32), spanId: hexOf(2, 16), startUs: 2 ** 60 },
        { traceId: hexOf(1, 32), spanId: hexOf(3, 16), startUs: T0, durationNs: Number.NaN },
        { traceId: hexOf(1, 32), spanId: hexOf(4, 16), startUs: -US },
      ]) }]);
      expect(store.spansDroppedOutOfRange).toBe(3);
      expect((await store.getTrace(hexOf(1, 32))).map((s) => s.spanId)).toEqual([hexOf(1, 16)]);
    } finally {
      await store.close();
      await dropDatabase(url);
    }
  });

  it('stores logs and metric points with times outside 1970 … 2106 at the range\'s edge instead of failing the INSERT', async () => {
    const url = engine.url(`times_${process.pid}`);
    const store = new ClickHouseTelemetryStore({ url, nodeId: 'a' });
    await store.open();
    try {
      await store.append([{
        logs: logBatch([{ timeUs: 2 ** 62, body: 'far future' }, { timeUs: Number.NaN, body: 'no time' }, { timeUs: T0, body: 'fine' }]),
        metrics: metricBatch([{ name: 'cpu', timeUs: -(2 ** 62), value: 1 }, { name: 'cpu', timeUs: T0, value: 2 }]),
      }]);
      const all = await store.searchLogs({ fromUs: -(2 ** 62), toUs: 2 ** 62, limit: 10 });
      expect(all.map((l) => l.body).sort()).toEqual(['far future', 'fine', 'no time']);
      expect((await store.searchLogs({ fromUs: T0, toUs: T0 + US, limit: 10 })).map((l) => l.body)).toEqual(['fine']);
      const m = await store.queryMetric({ name: 'cpu', agg: 'sum', groupBy: [], fromUs: T0, toUs: T0 + 60 * US, stepS: 60 });
      expect(m[0].points).toEqual([[T0, 2]]);
    } finally {
      await store.close();
      await dropDatabase(url);
    }
  });

  it('stores text of every length and script, and non-finite metric values, byte for byte (RowBinary rows)', async () => {
    const url = engine.url(`text_${process.pid}`);
    const store = new ClickHouseTelemetryStore({ url, nodeId: 'ü-node' });
    await store.open();
    // Lengths around the 1-, 2- and 3-byte LEB128 length prefixes, in 1-, 2-, 3- and 4-byte UTF-8.
    const texts = ['', 'a', 'é'.repeat(42), '€'.repeat(42), '€'.repeat(43), 'x'.repeat(127), 'x'.repeat(128), '😀'.repeat(40),
      'tab\tnl\nnul\u0000quote"back\\slash', '€'.repeat(5462), 'y'.repeat(16_384), 'ж'.repeat(70_000)];
    try {
      await store.append([{
        spans: spanBatch(texts.map((t, i) => ({ traceId: hexOf(1, 32), spanId: hexOf(i + 1, 16), startUs: T0 + i, name: `op ${i}`, attrs: { t }, events: [{ timeUs: T0, name: t, attrs: {} }] }))),
        logs: logBatch(texts.map((t, i) => ({ timeUs: T0 + i, body: t, traceId: hexOf(1, 32), attrs: { i } }))),
        metrics: metricBatch([{ name: 'g', timeUs: T0, value: Number.NaN }, { name: 'g', timeUs: T0 + 1, value: Infinity }, { name: 'g', timeUs: T0 + 2, value: -1.5e300 }]),
      }]);
      const spans = await store.getTrace(hexOf(1, 32));
      expect(spans.map((s) => s.attrs.t)).toEqual(texts);
      expect(spans.map((s) => s.events[0]?.name)).toEqual(texts);
      const logs = await store.searchLogs({ fromUs: T0, toUs: T0 + 60 * US, limit: 100 });
      expect(logs.map((l) => l.body).reverse()).toEqual(texts);
      const sql = new ChSql(parseClickHouseUrl(url));
      try {
        expect(await sql.rows('SELECT toString(value) AS v, node FROM metric_points ORDER BY time')).toEqual([
          { v: 'nan', node: 'ü-node' }, { v: 'inf', node: 'ü-node' }, { v: '-1.5e300', node: 'ü-node' }]);
      } finally {
        await sql.close();
      }
    } finally {
      await store.close();
      await dropDatabase(url);
    }
  });

  it('stores every row of INSERTs whose bytes hold blank lines, semicolons and SQL, none twice (the engine once cut such data)', async () => {
    const url = engine.url(`cut_${process.pid}`);
    const store = new ClickHouseTelemetryStore({ url, nodeId: 'a' });
    await store.open();
    // Multi-line log bodies (a stack trace with a blank line) and text that reads as SQL; the
    // test engine used to end an INSERT's data at the first blank line and parse the rest as SQL.
    const bodies = ['Traceback (most recent call last):\n\n  File "app.py", line 1', 'a\n\n\nb', ';\n\nSELECT 1;\n\n', '\r\n\r\nend', '\n\n'];
    try {
      for (let round = 0; round < 4; round++) {
        await store.append([{
          logs: logBatch(Array.from({ length: 500 }, (_, i) => ({ timeUs: T0 + round * 1000 + i, body: `${bodies[i % bodies.length]} #${round}.${i}` }))),
          spans: spanBatch(Array.from({ length: 500 }, (_, i) => ({ traceId: hexOf(round * 1000 + i + 1, 32), spanId: hexOf(i + 1, 16), startUs: T0 + round * 1000 + i,
            name: 'GET /', service: 'shop', attrs: { 'exception.stacktrace': bodies[i % bodies.length] } }))),
        }]);
      }
      const sql = new ChSql(parseClickHouseUrl(url));
      try {
        expect(await sql.rows('SELECT count() AS n, uniqExact(body) AS u FROM logs')).toEqual([{ n: 2000, u: 2000 }]);
        expect(await sql.rows('SELECT count() AS n, uniqExact(trace_id) AS u FROM spans')).toEqual([{ n: 2000, u: 2000 }]);
      } finally {
        await sql.close();
      }
      const logs = await store.searchLogs({ fromUs: T0, toUs: T0 + 10_000, limit: 10_000 });
      expect(new Set(logs.map((l) => l.body))).toEqual(new Set(Array.from({ length: 2000 }, (_, k) => `${bodies[(k % 500) % bodies.length]} #${Math.floor(k / 500)}.${k % 500}`)));
      expect((await store.getTrace(hexOf(3001, 32)))[0].attrs['exception.stacktrace']).toBe(bodies[0]);
    } finally {
      await store.close();
      await dropDatabase(url);
    }
  });

  it('generates ON CLUSTER DDL the engine parses: Replicated tables under Distributed ones, views on the local tables', async () => {
    // chdb has no keeper and no cluster: the DDL is parsed by the engine (formatQuery), not run.
    const ddl = clickHouseSchema({ spans: 7 }, 'tl_cluster');
    const sql = new ChSql(parseClickHouseUrl(engine.url('default')));
    try {
      const formatted: string[] = [];
      for (const q of ddl) formatted.push(str((await sql.rows('SELECT formatQuery({q:String}) AS f', { q }))[0]?.f));
      expect(formatted.every((f) => f.includes('ON CLUSTER tl_cluster'))).toBe(true);
      const find = (prefix: string): string => formatted.find((f) => f.startsWith(prefix)) ?? '';
      expect(find('CREATE TABLE IF NOT EXISTS spans_local')).toContain("ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/spans_local', '{replica}')");
      expect(find('CREATE TABLE IF NOT EXISTS spans ON')).toContain('ENGINE = Distributed(tl_cluster, currentDatabase(), spans_local, cityHash64(trace_id))');
      expect(find('CREATE TABLE IF NOT EXISTS rollup_second_local')).toContain('ReplicatedAggregatingMergeTree');
      expect(find('CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_second_mv')).toMatch(/TO rollup_second_local[\s\S]*FROM spans_local/);
      expect(find('CREATE MATERIALIZED VIEW IF NOT EXISTS spans_input_mv')).toMatch(/TO spans\s/);
      expect(formatted.some((f) => f.includes('non_replicated_deduplication_window'))).toBe(false);
      // One server: no cluster, no replication.
      expect(clickHouseSchema({ spans: 7 }).some((q) => /ON CLUSTER|Replicated|Distributed|_local/.test(q))).toBe(false);
    } finally {
      await sql.close();
    }
    // On a server without that cluster the store fails to open with ClickHouse's own error.
    const store = new ClickHouseTelemetryStore({ url: engine.url(`cluster_${process.pid}`), nodeId: 'a', cluster: 'tl_cluster' });
    await expect(store.open()).rejects.toThrow(/cluster|keeper|zookeeper|distributed/i);
    await store.close();
  });

  it('fails to open with ClickHouse\'s own error on wrong credentials', async () => {
    const store = new ClickHouseTelemetryStore({ url: engine.url('nope').replace('secret', 'wrong'), nodeId: 'a' });
    await expect(store.open()).rejects.toMatchObject({ code: '516', type: 'AUTHENTICATION_FAILED' });
  });
});

describe('ClickHouse URLs', () => {
  it('reads clickhouse:// and clickhouses:// with credentials and database, and rejects the rest', () => {
    expect(parseClickHouseUrl('clickhouse://u:p%40ss@db.example:9000/tele')).toEqual({ url: 'http://db.example:9000', username: 'u', password: 'p@ss', database: 'tele' });
    expect(parseClickHouseUrl('clickhouses://h/x')).toEqual({ url: 'https://h:8443', username: 'default', password: '', database: 'x' });
    expect(parseClickHouseUrl('clickhouse://h')).toMatchObject({ url: 'http://h:8123', database: 'default' });
    expect(describeClickHouse(parseClickHouseUrl('clickhouse://u:secret@h:8123/db'))).not.toContain('secret');
    for (const bad of ['postgres://h/db', 'clickhouse://h/db;drop', 'not a url']) {
      expect(thrownBy(() => parseClickHouseUrl(bad))).toMatchObject({ code: 'bad_telemetry_url' });
    }
  });
});

/** An HTTP proxy to `target` that drops the connection after forwarding a request `cut` selects. */
async function startProxy(target: string, cut: (url: string) => boolean): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const drop = cut(req.url ?? '');
    const up = request(target + (req.url ?? ''), { method: req.method, headers: req.headers }, (upRes) => {
      if (drop) {
        upRes.resume();
        upRes.on('end', () => req.socket.destroy());
        return;
      }
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

async function dropDatabase(url: string): Promise<void> {
  const loc = parseClickHouseUrl(url);
  const sql = new ChSql(loc, 'default');
  try {
    await sql.command(`DROP DATABASE IF EXISTS ${loc.database}`);
  } finally {
    await sql.close();
  }
}
