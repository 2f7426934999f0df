import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INGEST_DEFAULTS } from '../config/schema.js';
import { AppError } from '../core/app-error.js';
import { hexOf, logBatch, spanBatch } from './conformance-batches.js';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import type { TelemetryBatches, TelemetryStore } from './store.js';
import { estimateBytes, TelemetryWriter } from './writer.js';
import { decodeTraces } from '../otlp/index.js';
import { makeRealisticTracePayload } from '../otlp/fixtures.js';
import { packedColumns } from './packed-text.js';

const T0 = Date.UTC(2024, 4, 1, 10) * 1000;

/** A store whose append() is recorded and can be held open or made to fail. */
function fakeStore(opts: { delayMs?: number; fail?: (call: number) => boolean } = {}) {
  const calls: TelemetryBatches[][] = [];
  let release: (() => void) | undefined;
  const store = {
    append: async (b: TelemetryBatches[]): Promise<void> => {
      calls.push(b);
      const call = calls.length;
      if (opts.delayMs === -1) await new Promise<void>((r) => { release = r; });
      else await new Promise((r) => setTimeout(r, opts.delayMs ?? 1));
      if (opts.fail?.(call)) throw new Error(`disk on fire (${call})`);
    },
  } as unknown as TelemetryStore;
  return { store, calls, release: () => release?.() };
}

const logs = (n: number): TelemetryBatches => ({ logs: logBatch(Array.from({ length: n }, (_, i) => ({ timeUs: T0 + i, body: `line ${i}` }))) });

describe('TelemetryWriter', () => {
  it('takes left-out options from the ingest settings\' defaults, and refuses a group larger than its queue', () => {
    const w = new TelemetryWriter(fakeStore().store) as unknown as Record<string, number>;
    expect([w.maxDelayMs, w.groupRows, w.maxInFlight, w.maxRows, w.maxBytes]).toEqual([
      INGEST_DEFAULTS.maxDelayMs, INGEST_DEFAULTS.groupRows, INGEST_DEFAULTS.maxInFlight, INGEST_DEFAULTS.queueMaxRows, INGEST_DEFAULTS.queueMaxBytes]);
    // The default group shrinks to a smaller queue; a group set larger than the queue is refused.
    expect((new TelemetryWriter(fakeStore().store, { maxQueuedRows: 100 }) as unknown as Record<string, number>).groupRows).toBe(100);
    expect(() => new TelemetryWriter(fakeStore().store, { maxQueuedRows: 100, groupRows: 101 })).toThrow(/groupRows 101 is larger than maxQueuedRows 100/);
  });

  it('groups many concurrent submits into few commits and resolves them all', async () => {
    const f = fakeStore({ delayMs: 5 });
    const w = new TelemetryWriter(f.store, { maxDelayMs: 5, groupRows: 1000 });
    await Promise.all(Array.from({ length: 200 }, () => w.submit(logs(10))));
    expect(f.calls.length).toBeLessThan(10);
    expect(f.calls.flat()).toHaveLength(200);
    expect(w.stats()).toMatchObject({ queuedRows: 0, commits: f.calls.length, rowsCommitted: 2000, requestsCommitted: 200 });
    for (const group of f.calls) expect(group.reduce((a, b) => a + (b.logs?.length ?? 0), 0)).toBeLessThanOrEqual(1000);
  });

  it('settles a request only after its group committed', async () => {
    const f = fakeStore({ delayMs: -1 });
    const w = new TelemetryWriter(f.store, { maxDelayMs: 1, maxInFlight: 1 });
    let done = false;
    const p = w.submit(logs(3)).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(f.calls).toHaveLength(1);
    expect(done).toBe(false);
    f.release();
    await p;
    expect(done).toBe(true);
  });

  it('rejects every request of a failed group with the commit error, and goes on', async () => {
    const f = fakeStore({ fail: (call) => call === 1 });
    const w = new TelemetryWriter(f.store, { maxDelayMs: 5, maxInFlight: 1 });
    const first = await Promise.allSettled([w.submit(logs(1)), w.submit(logs(2))]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((first[0] as PromiseRejectedResult).reason).toEqual(new Error('disk on fire (1)'));
    await expect(w.submit(logs(1))).resolves.toBeUndefined();
    expect(w.stats()).toMatchObject({ failedCommits: 1, commits: 1, rowsCommitted: 1 });
  });

  it('rejects at once with overloaded (429, retry after 1 s) when the queue is full', async () => {
    const f = fakeStore({ delayMs: -1 });
    const w = new TelemetryWriter(f.store, { maxDelayMs: 1, maxQueuedRows: 100, maxInFlight: 1 });
    const accepted = [w.submit(logs(60)), w.submit(logs(40))];
    const err = await w.submit(logs(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'overloaded', status: 429, retryAfterS: 1 });
    expect(w.stats()).toMatchObject({ queuedRows: 100, rejectedRequests: 1 });
    // A request bigger than the whole queue is still taken when nothing else waits.
    await new Promise((r) => setTimeout(r, 10));
    f.release();
    await Promise.all(accepted);
    await new Promise((r) => setTimeout(r, 10));
    f.release();
    const big = w.submit(logs(500));
    await new Promise((r) => setTimeout(r, 10));
    f.release();
    await big;
  });

  it('bounds the queue by estimated bytes too', async () => {
    const f = fakeStore({ delayMs: -1 });
    const w = new TelemetryWriter(f.store, { maxQueuedBytes: 50_000, maxInFlight: 1 });
    const first = w.submit(logs(100));
    await expect(w.submit(logs(300))).rejects.toMatchObject({ code: 'overloaded' });
    f.release();
    await new Promise((r) => setTimeout(r, 20));
    f.release();
    await first;
  });

  it('drains on flush and close, then refuses new work', async () => {
    const f = fakeStore({ delayMs: 3 });
    const w = new TelemetryWriter(f.store, { maxDelayMs: 1000 });
    const pending = Array.from({ length: 5 }, () => w.submit(logs(2)));
    await w.flush();
    expect(w.stats()).toMatchObject({ queuedRows: 0, rowsCommitted: 10 });
    await Promise.all(pending);
    const late = w.submit(logs(1));
    await w.close();
    await late;
    await expect(w.submit(logs(1))).rejects.toMatchObject({ code: 'unavailable', status: 503 });
  });

  it('commits groups into a real DuckDB store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-writer-'));
    const store = new DuckDbTelemetryStore(join(dir, 't.duckdb'));
    await store.open();
    try {
      const w = new TelemetryWriter(store, { maxDelayMs: 5, groupRows: 2000 });
      await Promise.all(Array.from({ length: 100 }, (_, k) => w.submit({
        spans: spanBatch(Array.from({ length: 50 }, (_, i) => ({
          traceId: hexOf(k + 1, 32), spanId: hexOf(i + 1, 16), parentSpanId: i ? hexOf(1, 16) : '', kind: i ? 1 : 2,
          name: 'op', service: 'w', startUs: T0 + k * 1000 + i,
        }))),
      })));
      const st = w.stats();
      expect(st.rowsCommitted).toBe(5000);
      expect(st.commits).toBeLessThan(100);
      expect(await store.getTrace(hexOf(77, 32))).toHaveLength(50);
      await store.flush();
      expect((await store.red({ service: 'w', fromUs: T0, toUs: T0 + 1_000_000, stepS: 1 }))[0].count).toBe(100);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('estimateBytes', () => {
  it('counts a decoded request’s text columns by their bytes, without making them strings', () => {
    const spans = decodeTraces(makeRealisticTracePayload(50), 'protobuf').batch;
    const packed = packedColumns(spans);
    expect(packed?.attrs).toBeDefined();
    const estimate = estimateBytes({ spans });
    for (const col of ['attrs', 'events', 'links'] as const) expect(packed?.[col]?.decoded, col).toBe(false);
    // The same rows as plain strings (a spread copy) estimate the same: attribute text here is ASCII.
    expect(estimateBytes({ spans: { ...spans } })).toBe(estimate);
    expect(estimate).toBeGreaterThan(50 * 160 + spans.attrs.reduce((n, a) => n + a.length, 0) - 1);
  });
});
