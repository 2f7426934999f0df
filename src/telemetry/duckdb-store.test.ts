import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDuckDbThreads, DuckDbTelemetryStore, type DuckDbStoreOptions } from './duckdb-store.js';
import { hexOf, spanBatch } from './conformance-batches.js';
import { CRASH_T0, crashScenario } from './duckdb-crash-scenario.js';
import type { RollupSecond } from './rollup.js';
import { runTelemetryStoreConformance } from './store.conformance.js';

const US = 1_000_000;
const dirs: string[] = [];

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-duckdb-'));
  dirs.push(dir);
  return join(dir, 'telemetry.duckdb');
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const noOtlp = (): never => { throw new Error('no OTLP records in these tests'); };

runTelemetryStoreConformance('duckdb + ingest log', () => {
  const path = tempDb();
  // Loads only when a read needs the rows: every query exercises read-your-writes.
  const opts = { path, ingestLog: { dir: join(path, '..', 'ingest-log'), loadDelayMs: 3_600_000, decode: noOtlp } };
  return {
    store: new DuckDbTelemetryStore(opts),
    reopen: () => new DuckDbTelemetryStore(opts),
    cleanup: () => Promise.resolve(),
  };
});

runTelemetryStoreConformance('duckdb', () => {
  const path = tempDb();
  return {
    store: new DuckDbTelemetryStore(path),
    reopen: () => new DuckDbTelemetryStore(path),
    cleanup: () => Promise.resolve(),
  };
});

async function withStore<T>(opts: Partial<DuckDbStoreOptions>, fn: (s: DuckDbTelemetryStore) => Promise<T>): Promise<T> {
  const store = new DuckDbTelemetryStore({ path: tempDb(), ...opts });
  await store.open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe('DuckDbTelemetryStore', () => {
  it('refuses a second open of the same file in one process', async () => {
    const path = tempDb();
    const a = new DuckDbTelemetryStore(path);
    await a.open();
    await expect(new DuckDbTelemetryStore(path).open()).rejects.toThrow(/already open/);
    await a.close();
    const b = new DuckDbTelemetryStore(path);
    await b.open();
    await b.close();
  });

  it('flushes closed seconds on its own and tells rollup listeners', async () => {
    const base = CRASH_T0;
    let now = base + 1 * US;
    await withStore({ nowUs: () => now, flushIntervalMs: 10, secondGraceMs: 2000 }, async (store) => {
      const got: RollupSecond[] = [];
      let notify = (): void => undefined;
      const received = new Promise<void>((r) => { notify = r; });
      const off = store.onRollup((rows) => { got.push(...rows); notify(); });
      await store.append([{ spans: spanBatch([0, 1, 2, 3].flatMap((s) => [10, 20, 30].map((ms, i) => ({
        traceId: hexOf(s * 10 + i + 1, 32), spanId: hexOf(s * 10 + i + 1, 16), kind: 2, name: i === 2 ? 'b' : 'a',
        service: 'live', version: 'v', environment: 'e', startUs: base + s * US + i, durationNs: ms * 1e6, statusCode: i === 0 ? 2 : 0,
      })))) }]);
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]); // nothing closed yet: the grace has not passed
      // Queries already count the buffered seconds.
      expect((await store.red({ service: 'live', fromUs: base, toUs: base + 4 * US, stepS: 1 })).map((b) => b.count)).toEqual([3, 3, 3, 3]);
      expect((await store.services(base, base + 10 * US)).map((s) => [s.service, s.count, s.lastSeenUs])).toEqual([['live', 12, base + 3 * US]]);
      now = base + 10 * US;
      await received;
      off();
      const a0 = got.find((r) => r.second === base && r.operation === 'a');
      expect(a0).toMatchObject({ service: 'live', version: 'v', environment: 'e', count: 2, errors: 1 });
      expect(Math.abs(a0!.sketch.quantile(1)! - 20e6) / 20e6).toBeLessThan(0.01);
      expect(Math.abs(a0!.sketch.quantile(0)! - 10e6) / 10e6).toBeLessThan(0.01);
      expect(got.filter((r) => r.operation === 'b').map((r) => r.second)).toEqual([0, 1, 2, 3].map((s) => base + s * US));
      const red = await store.red({ service: 'live', fromUs: base, toUs: base + 4 * US, stepS: 1 });
      expect(red.map((b) => b.count)).toEqual([3, 3, 3, 3]);
    });
  });

  it('does not replay, after a crash, spans the retention floor dropped at ingest (ingest log)', async () => {
    const path = tempDb();
    const logDir = join(path, '..', 'ingest-log');
    // Mid-day, so the span an hour before midnight is older than the floor and the current one is not.
    const nowUs = (Math.floor(Date.now() / 86_400_000) * 86_400_000 + 43_200_000) * 1000;
    const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
    const childScript = fileURLToPath(new URL('./duckdb-floor-child.ts', import.meta.url));
    const child = spawn(process.execPath, [viteNode, childScript, path, logDir, String(nowUs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dropped = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); const m = /ready (\d+)/.exec(out); if (m) resolve(m[1]); });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    expect(dropped).toBe('1');
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    expect(await exited).toBe(null);
    const store = new DuckDbTelemetryStore({ path, nowUs: () => nowUs, ingestLog: { dir: logDir, decode: noOtlp } });
    await store.open();
    try {
      expect((await store.getTrace(hexOf(2, 32))).map((s) => s.spanId)).toEqual([hexOf(2, 16)]);
      // Before, the replay stored the dropped span, which no trace lookup or rollup then saw.
      const reads = (store as unknown as { reads: { rows(q: string): Promise<Array<Record<string, unknown>>> } }).reads;
      expect((await reads.rows('SELECT start_us FROM spans')).map((r) => Number(r.start_us))).toEqual([nowUs - US]);
    } finally {
      await store.close();
    }
  }, 60_000);

  it.each([
    ['DuckDB WAL', false],
    ['ingest log (rows not yet loaded)', true],
  ])('rebuilds rollups and the trace index after a crash (SIGKILL), without double counting: %s', async (_name, withLog) => {
    const path = tempDb();
    const logDir = join(path, '..', 'ingest-log');
    const nowUs = Date.now() * 1000;
    const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
    const childScript = fileURLToPath(new URL('./duckdb-crash-child.ts', import.meta.url));
    const child = spawn(process.execPath, [viteNode, childScript, path, String(nowUs), ...(withLog ? [logDir] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('ready')) resolve(); });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    expect(await exited).toBe(null);

    const s = crashScenario(nowUs);
    const opts = (): DuckDbStoreOptions => ({ path, ...(withLog ? { ingestLog: { dir: logDir, decode: noOtlp } } : {}) });
    const store = new DuckDbTelemetryStore(opts());
    await store.open();
    try {
      await store.flush();
      const old = await store.red({ service: 'crash', fromUs: CRASH_T0, toUs: CRASH_T0 + 180 * US, stepS: 60 });
      expect(old.map((b) => b.count)).toEqual([160, 20, 20]);
      const perSecond = await store.red({ service: 'crash', fromUs: CRASH_T0, toUs: CRASH_T0 + 180 * US, stepS: 1 });
      expect(perSecond.reduce((a, b) => a + b.count, 0)).toBe(200);
      expect(perSecond[0].count).toBe(3); // 2 flushed before the crash + 1 late
      expect(perSecond.reduce((a, b) => a + b.errors, 0)).toBe(24 + 16);
      const current = await store.red({ service: 'crash', fromUs: nowUs - 600 * US, toUs: nowUs + 60 * US, stepS: 60 });
      expect(current.reduce((a, b) => a + b.count, 0)).toBe(30);
      // The trace index was rebuilt for spans whose filters were never written.
      expect(await store.getTrace(s.after.traceId[70])).toHaveLength(1);
      expect(await store.getTrace(s.current.traceId[3])).toHaveLength(1);
      expect(await store.getTrace(s.before.traceId[0])).toHaveLength(1);
    } finally {
      await store.close();
    }
    // And a clean reopen afterwards does not replay anything twice.
    const again = new DuckDbTelemetryStore(opts());
    await again.open();
    try {
      const old = await again.red({ service: 'crash', fromUs: CRASH_T0, toUs: CRASH_T0 + 180 * US, stepS: 60 });
      expect(old.map((b) => b.count)).toEqual([160, 20, 20]);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('leaves a core to the event loop: DuckDB gets one thread fewer than the machine has, unless configured', async () => {
    const threads = async (config?: Record<string, string>): Promise<unknown> => withStore({ config }, async (store) => {
      const sql = (store as unknown as { reads: { rows(q: string): Promise<Array<{ t: unknown }>> } }).reads;
      return (await sql.rows("SELECT current_setting('threads') AS t"))[0].t;
    });
    expect(Number(await threads())).toBe(Math.max(1, availableParallelism() - 1));
    expect(defaultDuckDbThreads()).toBe(Math.max(1, availableParallelism() - 1));
    expect(Number(await threads({ threads: '3' }))).toBe(3);
  });

  it('reads the rows of a failed load back from the ingest log and loads them once', async () => {
    const path = tempDb();
    const opts: DuckDbStoreOptions = { path, ingestLog: { dir: join(path, '..', 'ingest-log'), loadDelayMs: 3_600_000, decode: noOtlp } };
    const traceId = hexOf(4242, 32);
    const rows = (n: number, from: number) => spanBatch(Array.from({ length: n }, (_, i) => ({
      traceId, spanId: hexOf(from + i, 16), kind: 2, name: 'op', service: 'reload', startUs: CRASH_T0 + (from + i) * 1000,
    })));
    const store = new DuckDbTelemetryStore(opts);
    await store.open();
    // The store's own connection pool: a real DuckDB failure inside the load's transaction.
    const sql = (store as unknown as { reads: { result(q: string): Promise<unknown> } }).reads;
    try {
      await store.append([{ spans: rows(300, 1) }]);
      await store.append([{ spans: rows(200, 301) }]);
      await sql.result('DROP TABLE ingest_log_state');
      await expect(store.getTrace(traceId)).rejects.toThrow(/ingest_log_state/);
      await sql.result('CREATE TABLE ingest_log_state (key VARCHAR PRIMARY KEY, lsn BIGINT)');
      await store.append([{ spans: rows(100, 501) }]);
      // The retry waits a second after the failure; the rolled-back rows come from the log.
      await new Promise((r) => setTimeout(r, 1100));
      const spans = await store.getTrace(traceId);
      expect(spans).toHaveLength(600);
      expect(new Set(spans.map((s) => s.spanId)).size).toBe(600);
    } finally {
      await store.close();
    }
    const again = new DuckDbTelemetryStore(opts);
    await again.open();
    try {
      expect(await again.getTrace(traceId)).toHaveLength(600);
    } finally {
      await again.close();
    }
  });

  it('runs appends concurrently and keeps every row', async () => {
    await withStore({ writeConnections: 3 }, async (store) => {
      await Promise.all(Array.from({ length: 12 }, (_, k) => store.append([{ spans: spanBatch(Array.from({ length: 250 }, (_, i) => ({
        traceId: hexOf(k * 1000 + i + 1, 32), spanId: hexOf(1, 16), kind: 2, name: 'op', service: 'conc',
        // Same resource in every request: concurrent inserts of it must not collide.
        resourceAttrs: { 'service.name': 'conc' }, startUs: CRASH_T0 + i * 1000,
      }))) }])));
      await store.flush();
      const red = await store.red({ service: 'conc', fromUs: CRASH_T0, toUs: CRASH_T0 + US, stepS: 1 });
      expect(red[0].count).toBe(3000);
      expect((await store.getTrace(hexOf(11_250, 32)))[0].resourceAttrs).toEqual({ 'service.name': 'conc' });
    });
  });
});
