import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hexOf, spanBatch } from './conformance-batches.js';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { SpanFloor } from './span-floor.js';

const US = 1_000_000;
const DAY = 86_400 * US;
const T0 = Date.UTC(2026, 0, 10, 12) * 1000;
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const span = (n: number, startUs: number, durationNs = 1e6) => ({
  traceId: hexOf(n, 32), spanId: hexOf(n, 16), kind: 2, name: 'op', service: 'floor', startUs, durationNs,
});

function recorder(): { warn: (o: object, m?: string) => void; error: (o: object, m?: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (o, m) => lines.push(`warn ${m} ${JSON.stringify(o)}`), error: (o, m) => lines.push(`error ${m}`) };
}

describe('SpanFloor', () => {
  it('keeps the batches as they are when nothing is dropped', () => {
    const f = new SpanFloor(undefined);
    const batches = [spanBatch([span(1, T0)])];
    expect(f.apply(batches)).toBe(batches);
    f.raise(T0 - DAY);
    expect(f.apply(batches)).toBe(batches);
  });

  it('drops, counts and logs spans before the floor and spans out of range', () => {
    const log = recorder();
    const f = new SpanFloor(log, 0);
    f.raise(T0);
    const out = f.apply([spanBatch([span(1, T0 - 1), span(2, T0), span(3, 1e300), span(4, T0, Infinity), span(5, Number.NaN)]), spanBatch([span(6, 0)])]);
    expect(out).toHaveLength(1);
    expect(out[0].spanId).toEqual([hexOf(2, 16)]);
    expect(out[0].service).toEqual(['floor']);
    expect([f.dropped, f.outOfRange]).toEqual([2, 3]);
    expect(log.lines.join('\n')).toMatch(/older than the retention cutoff dropped.*"dropped":2/);
    expect(log.lines.join('\n')).toMatch(/out of range dropped.*"dropped":3/);
  });
});

describe('DuckDbTelemetryStore: what retention removed stays removed, and is counted', () => {
  it.each([false, true])('a span of a dropped day arriving after retention is neither stored, rolled up nor indexed (ingest log: %s)', async (withLog) => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-floor-'));
    dirs.push(dir);
    const log = recorder();
    const store = new DuckDbTelemetryStore({
      path: join(dir, 't.duckdb'), nowUs: () => T0, log,
      ...(withLog ? { ingestLog: { dir: join(dir, 'log'), decode: () => { throw new Error('no OTLP'); } } } : {}),
    });
    await store.open();
    try {
      await store.append([{ spans: spanBatch([span(1, T0 - 2 * DAY), span(2, T0)]) }]);
      await store.dropBefore('spans', T0 - DAY);
      await store.append([{ spans: spanBatch([span(3, T0 - 2 * DAY), span(4, T0 - 2 * DAY + 1), span(5, T0), span(6, 1e300)]) }]);
      for (const id of [1, 3, 4, 6]) expect(await store.getTrace(hexOf(id, 32))).toEqual([]);
      for (const id of [2, 5]) expect(await store.getTrace(hexOf(id, 32))).toHaveLength(1);
      const red = await store.red({ service: 'floor', fromUs: T0 - 3 * DAY, toUs: T0 + DAY, stepS: 86_400 });
      expect(red.reduce((a, b) => a + b.count, 0)).toBe(2);
      expect(store.integrity()).toMatchObject({ spansDroppedOlderThanRetention: 2, spansDroppedOutOfRange: 1, flushFailures: 0 });
      await new Promise((r) => setTimeout(r, 10));
      expect(log.lines.join('\n')).toMatch(/older than the retention cutoff/);
    } finally {
      await store.close();
    }
  });
});
