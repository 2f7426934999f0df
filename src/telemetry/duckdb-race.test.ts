/**
 * Acknowledged spans stay findable and RED stays exact under concurrent ingest with late,
 * future and boundary-dated spans, interleaved with (slow, overlapping) rollup flushes, slow RED
 * reads and retention: live, after close + reopen, and after SIGKILL (duckdb-race-child.ts).
 * RACE_RUNS=<n> runs the property n times per mode (default 6).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { hexOf, spanBatch } from './conformance-batches.js';
import { DuckDbTelemetryStore, type DuckDbStoreOptions } from './duckdb-store.js';
import { RACE_T0, US, opsArb, runOps, slowFlushes, slowReads, type AckedSpan, type Driver } from './duckdb-race-scenario.js';
import { checkExact } from './duckdb-race-check.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-race-'));
  dirs.push(dir);
  return dir;
}

const noOtlp = (): never => { throw new Error('no OTLP records in these tests'); };

export function raceOptions(dir: string, withLog: boolean, d: Driver): DuckDbStoreOptions {
  return {
    path: join(dir, 'telemetry.duckdb'), nowUs: () => d.clock.now, flushIntervalMs: 3, secondGraceMs: 2000, minuteGraceMs: 15_000,
    ...(withLog ? { ingestLog: { dir: join(dir, 'ingest-log'), loadRows: 40, loadDelayMs: 15, decode: noOtlp } } : {}),
  };
}

function driver(): Driver {
  return { clock: { now: RACE_T0 }, slow: { on: false, slowMs: 25 }, slowReads: { on: false, slowMs: 15 } };
}

/** The live check runs while the clock keeps moving and slow flushes move rows out of the buffers. */
async function liveCheck(store: DuckDbTelemetryStore, d: Driver, acked: AckedSpan[], floorUs: number, label: string): Promise<void> {
  const now = d.clock.now;
  d.slow.on = true;
  d.slowReads.on = true;
  const mover = setInterval(() => { d.clock.now += US; }, 2);
  try {
    await checkExact(store, acked, floorUs, true, now, label);
  } finally {
    clearInterval(mover);
    d.slow.on = false;
    d.slowReads.on = false;
  }
}

describe.each([
  ['without an ingest log', false],
  ['with an ingest log', true],
])('DuckDB store races (%s)', (_name, withLog) => {
  it('finds every acknowledged trace and keeps RED equal to the stored spans, live and after reopen', async () => {
    await fc.assert(fc.asyncProperty(opsArb({ retention: true }), async (ops) => {
      const dir = tempDir();
      const d = driver();
      const store = new DuckDbTelemetryStore(raceOptions(dir, withLog, d));
      await store.open();
      let acked: AckedSpan[] = [], floorUs = -Infinity;
      try {
        slowFlushes(store, d);
        slowReads(store, d);
        ({ acked, floorUs } = await runOps(store, ops, d));
        await liveCheck(store, d, acked, floorUs, 'live');
      } finally {
        await store.close();
      }
      const again = new DuckDbTelemetryStore(raceOptions(dir, withLog, d));
      await again.open();
      try {
        await checkExact(again, acked, floorUs, true, d.clock.now, 'reopened');
      } finally {
        await again.close();
      }
    }), { numRuns: Number(process.env.RACE_RUNS ?? 6), endOnFailure: true });
  }, 600_000);

  it('counts each span once in RED while flushes commit during a slow read, and when flushes are asked for at once', async () => {
    const dir = tempDir();
    const d = driver();
    const store = new DuckDbTelemetryStore(raceOptions(dir, withLog, d));
    await store.open();
    try {
      slowFlushes(store, d);
      slowReads(store, d);
      // One span in each of 400 seconds before the clock: each flush below moves a few of them.
      const rows = Array.from({ length: 400 }, (_, i) => ({
        traceId: hexOf(900_000 + i, 32), spanId: hexOf(900_000 + i, 16), kind: 2, name: 'op', service: 'svc-a',
        version: '1.0', environment: 'prod', startUs: RACE_T0 - (400 - i) * US, statusCode: i % 3 === 0 ? 2 : 0,
      }));
      d.clock.now = RACE_T0 - 398 * US;
      await store.append([{ spans: spanBatch(rows) }]);
      const q = { service: 'svc-a', fromUs: RACE_T0 - 400 * US, toUs: RACE_T0, stepS: 1 };
      const total = async (): Promise<[number, number]> => (await store.red(q)).reduce<[number, number]>((a, b) => [a[0] + b.count, a[1] + b.errors], [0, 0]);
      d.slowReads = { on: true, slowMs: 40 };
      const mover = setInterval(() => { d.clock.now += US; }, 1);
      try {
        for (let i = 0; i < 20; i++) {
          // Several flushes asked for at once as well: each must persist a period once.
          const flushes = Promise.all([store.flush(), store.flush()]);
          expect(await total()).toEqual([400, 134]);
          await flushes;
        }
      } finally {
        clearInterval(mover);
        d.slowReads.on = false;
      }
      expect(await total()).toEqual([400, 134]);
    } finally {
      await store.close();
    }
    const again = new DuckDbTelemetryStore(raceOptions(dir, withLog, d));
    await again.open();
    try {
      const red = await again.red({ service: 'svc-a', fromUs: RACE_T0 - 400 * US, toUs: RACE_T0, stepS: 60 });
      expect(red.reduce((a, b) => a + b.count, 0)).toBe(400);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('survives SIGKILL mid-ingest: acknowledged traces found, RED equal to the stored spans', async () => {
    const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
    const childScript = fileURLToPath(new URL('./duckdb-race-child.ts', import.meta.url));
    for (const seed of [11, 23]) {
      const dir = tempDir();
      const child = spawn(process.execPath, [viteNode, childScript, dir, String(seed), withLog ? 'log' : 'nolog'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const acked: AckedSpan[] = [];
      let floorUs = -Infinity, clock = RACE_T0, acks = 0;
      await new Promise<void>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.startsWith('ack ')) { acked.push(...(JSON.parse(line.slice(4)) as AckedSpan[])); acks++; }
            if (line.startsWith('floor ')) floorUs = Math.max(floorUs, Number(line.slice(6)));
            if (line.startsWith('clock ')) clock = Number(line.slice(6));
            // Killed mid-run: after 8 acknowledged appends, or at the end.
            if ((line.startsWith('ack ') && acks === 8) || line === 'done') resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      expect(await exited).toBe(null);
      const d = driver();
      d.clock.now = clock;
      for (const round of ['after SIGKILL', 'reopened after SIGKILL']) {
        const store = new DuckDbTelemetryStore(raceOptions(dir, withLog, d));
        await store.open();
        try {
          await checkExact(store, acked, floorUs, false, clock, `seed ${seed}, ${round}`);
        } finally {
          await store.close();
        }
      }
    }
  }, 300_000);
});
