import { describe, expect, it } from 'vitest';
import { BloomFilter, traceHashes } from './trace-index.js';

/** A deterministic stream of 32-hex-digit ids (xorshift32), so the counts below never change between runs. */
function ids(seed: number): () => string {
  let x = seed >>> 0 || 1;
  const word = (): string => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x.toString(16).padStart(8, '0');
  };
  return () => word() + word() + word() + word();
}

describe('trace minute filters', () => {
  it('answer yes for every trace they hold and for at most 0.02 % of the others', () => {
    // A lookup asks every minute of a day: the false positives per minute times 1,440 are the
    // minutes it reads for nothing (0.1 % was ~1.4 per lookup).
    const next = ids(7);
    const filters: BloomFilter[] = [];
    for (let m = 0; m < 100; m++) {
      const held = Array.from({ length: 1400 }, next);
      const f = BloomFilter.forKeys(held.length);
      for (const id of held) f.add(...traceHashes(id));
      for (const id of held) expect(f.has(...traceHashes(id))).toBe(true);
      filters.push(f);
    }
    let asked = 0, yes = 0;
    for (let q = 0; q < 2000; q++) {
      const h = traceHashes(next());
      for (const f of filters) { asked++; if (f.has(...h)) yes++; }
    }
    expect(yes / asked).toBeLessThan(0.0002);
  });
});
