import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickHouseEngineInstalled, ENGINE_PASSWORD, ENGINE_USER, startClickHouseEngine, type RunningEngine } from './clickhouse-engine/harness.js';
import { anything } from './helpers/match.js';

/**
 * The test engine (test/clickhouse-engine/server.mjs) through the official client: what the
 * ClickHouse store relies on behaves as on a ClickHouse server — bound parameters, per-request
 * settings, errors with their codes, authentication, deduplicated INSERTs.
 */

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;
let client: ClickHouseClient;

describe.skipIf(!installed)('ClickHouse test engine', () => {
  beforeAll(async () => {
    engine = await startClickHouseEngine();
    client = createClient({ url: engine.http, username: ENGINE_USER, password: ENGINE_PASSWORD, log: { level: ClickHouseLogLevel.OFF } });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await engine?.stop();
  });

  it('answers ping and runs queries with bound parameters as sent', async () => {
    expect((await client.ping()).success).toBe(true);
    const text = "it's a \\ back\tslash\nline";
    const rows = await (await client.query({
      query: 'SELECT {s:String} AS s, {a:Array(String)} AS a, {n:Int64} + 1 AS n, version() AS v',
      query_params: { s: text, a: ["x'y", 'z\\'], n: 41 }, format: 'JSONEachRow',
    })).json<{ s: string; a: string[]; n: number | string; v: string }>();
    expect(rows).toEqual([{ s: text, a: ["x'y", 'z\\'], n: anything(), v: engine.version }]);
    expect(Number(rows[0].n)).toBe(42);
  });

  it('applies settings to their own request only', async () => {
    const threads = async (settings: Record<string, number>): Promise<string> => (await (await client.query({
      query: "SELECT value FROM system.settings WHERE name = 'max_threads'", format: 'JSONEachRow', clickhouse_settings: settings,
    })).json<{ value: string }>())[0].value;
    expect(await threads({ max_threads: 1 })).toBe('1');
    expect(await threads({})).not.toBe('1');
    await expect(client.query({ query: 'SELECT 1', clickhouse_settings: { no_such_setting: 1 } })).rejects.toMatchObject({ code: '115', type: 'UNKNOWN_SETTING' });
  });

  it('reports ClickHouse errors with their code and type, and refuses wrong credentials', async () => {
    await expect(client.query({ query: 'SELECT * FROM no_such_table' })).rejects.toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    const wrong = createClient({ url: engine.http, username: ENGINE_USER, password: 'wrong', log: { level: ClickHouseLogLevel.OFF } });
    await expect(wrong.query({ query: 'SELECT 1' })).rejects.toMatchObject({ code: '516', type: 'AUTHENTICATION_FAILED' });
    await wrong.close();
  });

  it('stores binary INSERT data whole, whatever its bytes (RowBinary with blank lines, semicolons, SQL)', async () => {
    await client.command({ query: 'CREATE TABLE bin (a Int64, s String) ENGINE = MergeTree ORDER BY a' });
    // Deterministic bytes: every value 0..255 in the strings, runs of line feeds, text that reads as SQL.
    let seed = 7;
    const next = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; };
    const extra = [Buffer.from('\n\n'), Buffer.from(';\n\nSELECT 1;\n'), Buffer.from('\r\n\r\n'), Buffer.from('-- c\n\n')];
    let rows = 0;
    let bytes = 0;
    for (let k = 0; k < 20; k++) {
      const parts: Buffer[] = [];
      for (let i = 0; i < 300; i++) {
        const s = Buffer.concat([Buffer.from(Array.from({ length: next() % 40 }, next)), extra[(k + i) % extra.length]]);
        const head = Buffer.alloc(9);
        head.writeBigInt64LE(BigInt(rows++));
        head[8] = s.length;
        parts.push(head, s);
        bytes += s.length;
      }
      const r = await client.exec({ query: 'INSERT INTO bin FORMAT RowBinary', values: Readable.from([Buffer.concat(parts)]) });
      for await (const chunk of r.stream) void chunk;
    }
    const [t] = await (await client.query({ query: 'SELECT count() AS n, sum(length(s)) AS b, max(a) AS m FROM bin', format: 'JSONEachRow' }))
      .json<{ n: number | string; b: number | string; m: number | string }>();
    expect([Number(t.n), Number(t.b), Number(t.m)]).toEqual([rows, bytes, rows - 1]);
  });

  it('refuses data for an INSERT it would have to rewrite beyond INSERT INTO … FORMAT name', async () => {
    await expect(client.exec({ query: 'INSERT INTO bin SETTINGS async_insert = 0 FORMAT RowBinary', values: Readable.from([Buffer.alloc(9)]) })).rejects.toMatchObject({ code: '62' });
    await expect(client.exec({ query: 'INSERT INTO bin VALUES', values: Readable.from([Buffer.from('(1, \'x\')')]) })).rejects.toMatchObject({ code: '48', type: 'NOT_IMPLEMENTED' });
  });

  it('stores an INSERT retried with its deduplication token once', async () => {
    await client.command({ query: 'CREATE TABLE dedup (a UInt32) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100' });
    for (const token of ['t1', 't1', 't2']) {
      await client.insert({ table: 'dedup', values: [{ a: 1 }, { a: 2 }], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: token } });
    }
    const [{ n }] = await (await client.query({ query: 'SELECT count() AS n FROM dedup', format: 'JSONEachRow' })).json<{ n: number | string }>();
    expect(Number(n)).toBe(4);
  });
});
