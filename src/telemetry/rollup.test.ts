import { describe, expect, it } from 'vitest';
import { hexOf, spanBatch } from './conformance-batches.js';
import { RollupBuffer } from './rollup.js';
import { TraceIndex } from './trace-index.js';

const US = 1_000_000;
const T0 = Date.UTC(2026, 0, 1) * 1000;
const spans = (n: number, startUs: number, from = 1) => spanBatch(Array.from({ length: n }, (_, i) => ({
  traceId: hexOf(from + i, 32), spanId: hexOf(from + i, 16), kind: 2, name: 'op', service: 's', version: 'v', environment: 'e', startUs,
})));
const count = (rows: Array<{ count: number; allOperations: boolean }>): number => rows.filter((r) => !r.allOperations).reduce((a, r) => a + r.count, 0);

describe('a flush takes what it persists, nothing added meanwhile', () => {
  it('RollupBuffer: spans added while a flush runs stay buffered; a failed flush puts its rows back', () => {
    const b = new RollupBuffer();
    b.add(spans(3, T0));
    const taken = b.take(T0 / US + 1, T0 / US / 60 + 1);
    expect(count(taken.seconds)).toBe(3);
    b.add(spans(2, T0 + 10)); // late: the same second, while the flush commits
    // Readers still see all five until the flush has committed.
    expect(count(b.buffered('second', T0, T0 + US))).toBe(5);
    b.committed();
    expect(b.flushId).toBe(1);
    expect(count(b.buffered('second', T0, T0 + US))).toBe(2);
    expect(count(b.buffered('minute', T0, T0 + 60 * US))).toBe(2);
    // A failed flush: its rows are merged back with what came meanwhile.
    b.take(T0 / US + 1, T0 / US / 60 + 1);
    b.add(spans(4, T0 + 20));
    b.restore();
    expect(b.flushId).toBe(1);
    expect(count(b.buffered('second', T0, T0 + US))).toBe(6);
    expect(count(b.take(T0 / US + 1, T0 / US / 60 + 1).minutes)).toBe(6);
    expect(() => b.take(0, 0)).toThrow(/already running/);
  });

  it('TraceIndex: a trace indexed while a flush runs is found after it commits, or after it fails', () => {
    const index = new TraceIndex();
    index.add([hexOf(1, 32)], [T0], 1);
    const rows = index.take(T0 / 60 / US + 1);
    index.add([hexOf(2, 32)], [T0 + 5], 1); // same minute, while the flush commits
    expect(index.candidateMinutes(hexOf(1, 32))).toEqual([T0]);
    index.committed(rows);
    expect(index.candidateMinutes(hexOf(2, 32))).toEqual([T0]);
    expect(index.candidateMinutes(hexOf(1, 32))).toEqual([T0]);
    index.take(T0 / 60 / US + 1);
    index.add([hexOf(3, 32)], [T0 + 6], 1);
    index.restore();
    for (const id of [1, 2, 3]) expect(index.candidateMinutes(hexOf(id, 32))).toEqual([T0]);
  });
});
