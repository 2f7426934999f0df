/**
 * Child process of the retention-floor crash test (duckdb-store.test.ts), run with vite-node and
 * killed with SIGKILL: with an ingest log that never loads before the kill, runs a retention pass
 * (floor: today's UTC midnight), appends a span older than the floor (dropped at ingest) and a
 * current one, flushes (the flushed ingest time covers both), prints "ready" and waits.
 */
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { hexOf, spanBatch } from './conformance-batches.js';

const [path, logDir, nowArg] = process.argv.slice(2);
const nowUs = Number(nowArg);
const day = Math.floor(nowUs / 86_400_000_000) * 86_400_000_000;
const store = new DuckDbTelemetryStore({
  path, flushIntervalMs: 3_600_000, nowUs: () => nowUs,
  ingestLog: { dir: logDir, loadDelayMs: 3_600_000, decode: () => { throw new Error('no OTLP records here'); } },
});
await store.open();
await store.dropBefore('spans', nowUs);
const span = (n: number, startUs: number) => ({
  traceId: hexOf(n, 32), spanId: hexOf(n, 16), kind: 2, name: 'op', service: 'floor', version: '1', environment: 'prod', startUs,
});
await store.append([{ spans: spanBatch([span(1, day - 3_600_000_000), span(2, nowUs - 1_000_000)]) }]);
await store.flush();
process.stdout.write(`ready ${store.integrity().spansDroppedOlderThanRetention}\n`);
setInterval(() => undefined, 60_000); // wait for SIGKILL
