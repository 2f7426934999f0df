/**
 * Child process of the SIGKILL race test (duckdb-race.test.ts), run with vite-node: runs the
 * generated scenario of `seed` against the store (slow flushes on), prints each acknowledged
 * append ("ack <json>", after the clock at that moment) and retention floors, and "done" at the end,
 * then keeps flushing until it is killed.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { RACE_T0, US, opsArb, runOps, slowFlushes, type Driver } from './duckdb-race-scenario.js';

const [dir, seed, mode] = process.argv.slice(2);
const d: Driver = { clock: { now: RACE_T0 }, slow: { on: true, slowMs: 25 }, slowReads: { on: false, slowMs: 0 } };
const store = new DuckDbTelemetryStore({
  path: join(dir, 'telemetry.duckdb'), nowUs: () => d.clock.now, flushIntervalMs: 3,
  ...(mode === 'log' ? { ingestLog: { dir: join(dir, 'ingest-log'), loadRows: 40, loadDelayMs: 15, decode: () => { throw new Error('no OTLP records here'); } } } : {}),
});
await store.open();
slowFlushes(store, d);
const [ops] = fc.sample(opsArb({ retention: true, minLength: 90, maxLength: 110 }), { seed: Number(seed), numRuns: 1 });
const say = (line: string): void => { process.stdout.write(`${line}\n`); };
// Retention floors are announced before the drop starts (what the parent excuses).
const drop = store.dropBefore.bind(store);
store.dropBefore = (signal, cutoff) => { say(`floor ${Math.floor(cutoff / (86_400 * US)) * 86_400 * US}`); return drop(signal, cutoff); };
await runOps(store, ops, d, (spans) => { say(`clock ${d.clock.now}`); say(`ack ${JSON.stringify(spans)}`); });
say(`clock ${d.clock.now}`);
say('done');
setInterval(() => { d.clock.now += US; }, 5); // flushes keep running until the kill
