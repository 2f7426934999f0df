/**
 * Child process of the crash test (duckdb-store.test.ts), run with vite-node and killed with
 * SIGKILL: appends, flushes part of the rollups, appends more (late and current spans), prints
 * "ready" and waits. Nothing is closed, so unflushed rollups exist only in this process.
 */
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { crashScenario } from './duckdb-crash-scenario.js';

const [path, nowArg] = process.argv.slice(2);
const store = new DuckDbTelemetryStore({ path, flushIntervalMs: 3_600_000 });
await store.open();
const s = crashScenario(Number(nowArg));
await store.append([{ spans: s.before }]);
await store.flush();
await store.append([{ spans: s.after }, { spans: s.current }]);
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000); // wait for SIGKILL
