import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metrics } from '../core/metrics.js';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { hexOf, spanBatch } from './conformance-batches.js';

/**
 * Nothing fails in silence (issue 21.2): a failed rollup flush and a subscriber that throws are
 * each logged with context, counted in the metrics registry, and a failing flush marks the
 * `telemetry_flush` component degraded until a flush succeeds again.
 */
function recorder() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  return {
    lines,
    log: {
      warn: (obj: object, msg?: string) => { lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }); },
      error: (obj: object, msg?: string) => { lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }); },
    },
  };
}

/** The store's first write connection: the test breaks a table behind the store's back. */
function writer(store: DuckDbTelemetryStore): DuckDBConnection {
  return (store as unknown as { gate: { all(): Array<{ con: DuckDBConnection }> } }).gate.all()[0].con;
}

const span = (n: number, t: number) => ({ spans: spanBatch([{ traceId: hexOf(n, 32), spanId: hexOf(n, 16), name: 'op', startUs: t, service: 'shop' }]) });

describe('DuckDbTelemetryStore failures are logged, counted and reported', () => {
  it('a failing flush: one log line, a counter, degraded until a flush works again', async () => {
    const clock = 1_700_000_000_000_000;
    const { lines, log } = recorder();
    const store = new DuckDbTelemetryStore({ path: ':memory:', nowUs: () => clock, log, flushIntervalMs: 3_600_000 });
    await store.open();
    const before = metrics.value('tightloop_telemetry_flush_failures_total');
    try {
      await store.append([span(1, clock)]);
      await writer(store).run('ALTER TABLE rollup_second RENAME TO rollup_second_away');
      await expect(store.flush()).rejects.toThrow();
      await store.append([span(2, clock)]);
      await expect(store.flush()).rejects.toThrow();
      expect(metrics.value('tightloop_telemetry_flush_failures_total')).toBe(before + 2);
      expect(store.integrity().flushFailures).toBe(2);
      expect(metrics.degradedComponents().find((d) => d.component === 'telemetry_flush')?.reason).toMatch(/rollup flush failed/);
      const errors = lines.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1); // once per failing streak, not per retry
      expect(errors[0].obj).toMatchObject({ flushFailures: 1 });
      expect(errors[0].obj.err).toBeInstanceOf(Error);

      await writer(store).run('ALTER TABLE rollup_second_away RENAME TO rollup_second');
      await store.flush();
      expect(metrics.degradedComponents().find((d) => d.component === 'telemetry_flush')).toBeUndefined();
      expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['telemetry: rollup flushes work again']);
    } finally {
      await store.close();
    }
  });

  it('a subscriber that throws is counted and logged with which delivery failed; ingest goes on', async () => {
    const clock = 1_700_000_000_000_000;
    const { lines, log } = recorder();
    const store = new DuckDbTelemetryStore({ path: ':memory:', nowUs: () => clock, log, flushIntervalMs: 3_600_000 });
    await store.open();
    const key = { listener: 'committed_batches' };
    const before = metrics.value('tightloop_telemetry_listener_failures_total', key);
    try {
      store.onCommittedBatches(() => { throw new Error('detector broke'); });
      await store.append([span(1, clock)]);
      await store.append([span(2, clock)]);
      expect(metrics.value('tightloop_telemetry_listener_failures_total', key)).toBe(before + 2);
      const errors = lines.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1); // then at most every 10 s
      expect(errors[0].obj).toMatchObject({ listener: 'committed_batches', failures: before + 1 });
      expect((errors[0].obj.err as Error).message).toBe('detector broke');
      expect(metrics.render()).toMatch(/^tightloop_telemetry_listener_failures_total\{listener="committed_batches"\} \d+$/m);
    } finally {
      await store.close();
    }
  });

  it('a failing load of acknowledged ingest-log rows is counted and degraded until a load works again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-loadfail-'));
    const noOtlp = (): never => { throw new Error('no OTLP records in this test'); };
    const store = new DuckDbTelemetryStore({ path: join(dir, 't.duckdb'), ingestLog: { dir: join(dir, 'log'), loadDelayMs: 10, decode: noOtlp } });
    await store.open();
    const before = metrics.value('tightloop_ingest_log_load_failures_total');
    const degraded = () => metrics.degradedComponents().find((d) => d.component === 'ingest_log_load');
    const until = async (ok: () => boolean) => { for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20)); };
    try {
      await writer(store).run('ALTER TABLE spans RENAME TO spans_away');
      await store.append([span(1, Date.now() * 1000)]); // acknowledged once in the log
      await until(() => degraded() !== undefined);
      expect(degraded()?.reason).toMatch(/loading acknowledged rows into DuckDB failed/);
      expect(metrics.value('tightloop_ingest_log_load_failures_total')).toBeGreaterThan(before);
      await writer(store).run('ALTER TABLE spans_away RENAME TO spans');
      await until(() => degraded() === undefined);
      expect(degraded()).toBeUndefined();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
