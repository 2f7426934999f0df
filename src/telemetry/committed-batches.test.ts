import { describe, expect, it } from 'vitest';
import { DuckDbTelemetryStore, type CommittedBatches } from './duckdb-store.js';
import { hexOf, spanBatch } from './conformance-batches.js';

/**
 * onCommittedBatches carries each append's ingest time and how far every append has settled;
 * spansWithEventSince re-reads spans with a named event committed after a given ingest time —
 * together they let errors/ derive data after the ack and rebuild it after a crash.
 */
describe('DuckDbTelemetryStore committed batches and replay', () => {
  it('reports seq and settledThroughSeq, and re-reads spans with an event after a seq', async () => {
    let clock = 1_700_000_000_000_000;
    const store = new DuckDbTelemetryStore({ path: ':memory:', nowUs: () => clock });
    await store.open();
    try {
      expect(store.settledThroughSeq).toBe(0);
      const got: CommittedBatches[] = [];
      store.onCommittedBatches((c) => got.push(c));
      const t = clock;
      const exception = [{ timeUs: t + 5, name: 'exception', attrs: { 'exception.type': 'Boom' } }];
      const batch = (n: number, withException: boolean) => spanBatch([
        { traceId: hexOf(n, 32), spanId: hexOf(n, 16), name: `op ${n}`, startUs: t, service: 'shop', events: withException ? exception : [] },
        { traceId: hexOf(n, 32), spanId: hexOf(n + 100, 16), name: 'child', startUs: t, service: 'shop',
          events: [{ timeUs: t, name: 'cache.miss', attrs: {} }] },
      ]);

      await store.append([{ spans: batch(1, true) }]);
      expect(got).toHaveLength(1);
      const first = got[0].seq!;
      expect(first).toBe(clock);
      expect(got[0].settledThroughSeq).toBe(first);

      // Two appends at once on the two write connections: while the other is in flight, the
      // first to commit cannot claim it settled.
      clock += 10;
      await Promise.all([store.append([{ spans: batch(2, false) }]), store.append([{ spans: batch(3, true) }])]);
      expect(got).toHaveLength(3);
      const [a, b] = [got[1], got[2]];
      expect(new Set([a.seq, b.seq]).size).toBe(2);
      for (const c of [a, b]) expect(c.settledThroughSeq!).toBeLessThanOrEqual(Math.max(a.seq!, b.seq!));
      expect(a.settledThroughSeq!).toBeLessThan(Math.max(a.seq!, b.seq!)); // the other one was still appending
      expect(store.settledThroughSeq).toBe(Math.max(a.seq!, b.seq!));

      const all = await store.spansWithEventSince(0, 'exception');
      expect(all.spanId.sort()).toEqual([hexOf(1, 16), hexOf(3, 16)]);
      expect((JSON.parse(all.events[0]) as { name: string }[])[0].name).toBe('exception');
      const later = await store.spansWithEventSince(first, 'exception');
      expect(later.spanId).toEqual([hexOf(3, 16)]);
      expect(later.traceId).toEqual([hexOf(3, 32)]);
      expect(later.service).toEqual(['shop']);
      expect((await store.spansWithEventSince(store.settledThroughSeq, 'exception')).length).toBe(0);
      expect((await store.spansWithEventSince(0, 'cache.miss')).length).toBe(3);
    } finally {
      await store.close();
    }
  });
});
