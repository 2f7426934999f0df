/**
 * Child process of the crash test (duckdb-store.test.ts), run with vite-node and killed with
 * SIGKILL: appends, flushes part of the rollups, appends more (late and current spans), prints
 * "ready" and waits. Nothing is closed, so unflushed rollups exist only in this process. With a
 * third argument (an ingest log directory) the rows are never loaded into DuckDB before the kill:
 * they exist only in the log, while the flushed rollups already count some of them.
 */
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { crashScenario } from './duckdb-crash-scenario.js';

const [path, nowArg, logDir] = process.argv.slice(2);
// With a log dir: acknowledged rows stay in the ingest log only (no load before the kill).
const store = new DuckDbTelemetryStore({
  path, flushIntervalMs: 3_600_000,
  ...(logDir ? { ingestLog: { dir: logDir, loadDelayMs: 3_600_000, decode: () => { throw new Error('no OTLP records here'); } } } : {}),
});
await store.open();
const s = crashScenario(Number(nowArg));
await store.append([{ spans: s.before }]);
await store.flush();
await store.append([{ spans: s.after }, { spans: s.current }]);
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000); // wait for SIGKILL
