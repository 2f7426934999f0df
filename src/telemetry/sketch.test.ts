import { DDSketch } from '@datadog/sketches-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exactQuantile } from './conformance-batches.js';
import { LatencySketch, SKETCH_RELATIVE_ACCURACY, sketchKey, sketchValue } from './sketch.js';
import { BloomFilter, TraceIndex, traceHashes } from './trace-index.js';

describe('LatencySketch', () => {
  it('agrees with DDSketch (logarithmic mapping, 1%) on every quantile', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 2, max: 1e13 }), { minLength: 1, maxLength: 300 }),
      fc.constantFrom(0, 0.25, 0.5, 0.95, 0.99, 1),
      (values, q) => {
        const ours = new LatencySketch();
        const dd = new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY });
        for (const v of values) { ours.add(v); dd.accept(v); }
        expect(Math.abs(ours.quantile(q)! / dd.getValueAtQuantile(q) - 1)).toBeLessThan(1e-9);
      },
    ));
    expect(sketchValue(sketchKey(1e6)) / 1e6).toBeCloseTo(1, 1);
  });

  it('estimates quantiles within 1% of the exact rank value', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: 10_000_000_000 }), { minLength: 1, maxLength: 400 }),
      fc.constantFrom(0, 0.5, 0.9, 0.95, 0.99, 1),
      (values, q) => {
        const s = new LatencySketch();
        for (const v of values) s.add(v);
        const want = exactQuantile(values, q);
        expect(Math.abs(s.quantile(q)! - want) / want).toBeLessThanOrEqual(SKETCH_RELATIVE_ACCURACY + 1e-9);
      },
    ));
  });

  it('merges into the sketch of the union and round-trips through bins', () => {
    const a = new LatencySketch(), b = new LatencySketch(), all = new LatencySketch();
    for (let i = 1; i < 500; i++) { (i % 3 ? a : b).add(i * 1e5); all.add(i * 1e5); }
    a.merge(b);
    expect(a.toBins()).toEqual(all.toBins());
    expect(a.count).toBe(499);
    const { keys, counts } = a.toBins();
    expect(LatencySketch.fromBins(keys, counts).quantile(0.95)).toBe(all.quantile(0.95));
    expect(new LatencySketch().quantile(0.5)).toBeNull();
  });
});

describe('TraceIndex', () => {
  it('finds the minutes of a trace and rarely others', () => {
    const index = new TraceIndex();
    const ids = Array.from({ length: 20_000 }, (_, i) => (BigInt(i + 1) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32));
    const minute = (i: number): number => (i % 30) * 60_000_000;
    index.add(ids, ids.map((_, i) => minute(i) + 5), ids.length);
    const committed = index.take(20); // minutes 0..19 become filters, 20..29 stay open lists
    index.committed(committed);
    expect(committed).toHaveLength(20);
    let falsePositives = 0;
    for (let i = 0; i < ids.length; i += 7) {
      const got = index.candidateMinutes(ids[i]);
      expect(got).toContain(minute(i));
      falsePositives += got.length - 1;
    }
    expect(falsePositives / (ids.length / 7) / 30).toBeLessThan(0.005);
    index.forgetBefore(10 * 60_000_000);
    expect(index.candidateMinutes(ids[3])).toEqual([]);
  });

  it('serializes Bloom filters', () => {
    const f = BloomFilter.forKeys(100);
    const [h1, h2] = traceHashes('0af7651916cd43dd8448eb211c80319c');
    f.add(h1, h2);
    const g = BloomFilter.fromBytes(new Uint8Array(f.toBytes()), f.hashes);
    expect(g.has(h1, h2)).toBe(true);
    expect(g.has(h1 ^ 1, h2)).toBe(false);
  });
});
