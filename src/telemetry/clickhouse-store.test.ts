/**
 * The ClickHouse store on a real ClickHouse engine (test/clickhouse-engine: ClickHouse 26.x as
 * chdb behind its HTTP interface): the same conformance suite as DuckDB, plus what only a shared
 * server has (several nodes, deduplicated retries).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickHouseEngineInstalled, startClickHouseEngine, type RunningEngine } from '../../test/clickhouse-engine/harness.js';
import { ClickHouseTelemetryStore } from './clickhouse-store.js';
import { ChSql, parseClickHouseUrl } from './clickhouse-sql.js';
import { hexOf, spanBatch } from './conformance-batches.js';
import { runTelemetryStoreConformance, T0, US } from './store.conformance.js';

const installed = clickHouseEngineInstalled();
let engine: RunningEngine;
let n = 0;

describe.skipIf(!installed)('ClickHouse store', () => {
  beforeAll(async () => { engine = await startClickHouseEngine(); }, 60_000);
  afterAll(async () => { await engine?.stop(); });

  runTelemetryStoreConformance('clickhouse', async () => {
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
});

async function dropDatabase(url: string): Promise<void> {
  const loc = parseClickHouseUrl(url);
  const sql = new ChSql(loc, 'default');
  try {
    await sql.command(`DROP DATABASE IF EXISTS ${loc.database}`);
  } finally {
    await sql.close();
  }
}

export { hexOf, spanBatch, T0, US };
