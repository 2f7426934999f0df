import { describe, expect, it } from 'vitest';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { hexOf, spanBatch } from './conformance-batches.js';
import type { RollupSecond } from './rollup.js';

/** onCommittedRollups: each committed append's entry-span deltas, before append() resolves. */
describe('DuckDbTelemetryStore.onCommittedRollups', () => {
  it('delivers per-operation deltas of entry spans right after the commit', async () => {
    const store = new DuckDbTelemetryStore(':memory:');
    await store.open();
    try {
      const got: RollupSecond[][] = [];
      const off = store.onCommittedRollups((rows) => got.push(rows));
      const t = 1_700_000_000_000_000;
      const spans = spanBatch([
        { traceId: hexOf(1, 32), spanId: hexOf(1, 16), name: 'GET /a', startUs: t, service: 'shop', durationNs: 5e6 },
        { traceId: hexOf(2, 32), spanId: hexOf(2, 16), name: 'GET /a', startUs: t + 10, service: 'shop', statusCode: 2 },
        { traceId: hexOf(3, 32), spanId: hexOf(3, 16), name: 'GET /b', startUs: t + 1_000_000, service: 'shop' },
        // A child span is not an entry span: it is not counted.
        { traceId: hexOf(3, 32), spanId: hexOf(4, 16), parentSpanId: hexOf(3, 16), name: 'SELECT', startUs: t, service: 'shop' },
      ]);
      await store.append([{ spans }]);
      expect(got).toHaveLength(1);
      const rows = got[0].map((r) => ({ op: r.operation, second: r.second, count: r.count, errors: r.errors, n: r.sketch.count }))
        .sort((a, b) => a.second - b.second);
      expect(rows).toEqual([
        { op: 'GET /a', second: t, count: 2, errors: 1, n: 2 },
        { op: 'GET /b', second: t + 1_000_000, count: 1, errors: 0, n: 1 },
      ]);
      off();
      await store.append([{ spans: spanBatch([{ traceId: hexOf(5, 32), spanId: hexOf(5, 16), startUs: t, service: 'shop' }]) }]);
      expect(got).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
