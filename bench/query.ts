/**
 * `npm run bench -- query [--rows 2000000] [--reps 5]`
 *
 * Loads N spans and N logs spread over the last 24 h into a fresh DuckDB store, closes it, then
 * times the seven queries the telemetry README lists. For each query and repetition the store is
 * reopened (a new DuckDB instance: its buffer pool is empty, the OS page cache is not — nothing
 * here drops a shared machine's caches) and the query runs once cold, then once warm with other
 * parameters; every repetition uses another trace id, search term or time range, so no answer
 * comes from a cache of the previous one. Medians of the repetitions are reported, with the
 * maximum, and whether each reads raw rows or rollups.
 *
 * Goals at 10 M rows (`--rows 10000000`): trace by id ≤ 20 ms, log search ≤ 500 ms, 24 h RED
 * ≤ 100 ms, cold within 3× warm.
 *
 * `--store clickhouse` runs the same on the ClickHouse store: on `--url clickhouse://…` when given,
 * else on the chdb test engine (test/clickhouse-engine, started here on a temporary directory;
 * it shares the machine's cores with this process). "Reopened" is then a new store and HTTP
 * client; the engine's caches stay warm. The load phase reports spans + logs per second
 * acknowledged and the CPU of this process and of the engine per row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClickHouseTelemetryStore, DuckDbTelemetryStore, loadSynthetic, type SyntheticSample, type TelemetryStore } from '../src/telemetry/index.js';
import { arg, cpuSeconds } from './_util.js';

const argText = (name: string, def: string | undefined): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};
const STORE = argText('store', 'duckdb');
if (STORE !== 'duckdb' && STORE !== 'clickhouse') throw new Error('--store duckdb|clickhouse');

/** The chdb test engine on a temporary directory: its URL and process. */
async function startEngine(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const server = fileURLToPath(new URL('../../test/clickhouse-engine/server.mjs', import.meta.url));
  const child = spawn(process.execPath, [server, '--path', join(dir, 'engine'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`test engine exited (${code}); installed? npm --prefix test/clickhouse-engine install`)));
  });
  const { listening } = JSON.parse(line) as { listening: string };
  return { url: `${listening.replace(/^http:/, 'clickhouse:')}/qbench`, child };
}

const ROWS = arg('rows', 2_000_000);
const REPS = arg('reps', 5);
const HOUR = 3600e6;
const DAY = 24 * HOUR;

interface QueryDef {
  key: string;
  title: string;
  reads: 'raw spans' | 'raw logs' | 'rollups';
  goalMs?: number;
  /** Runs variant `i` (a different trace, term or range for every i); returns rows found. */
  run(store: TelemetryStore, i: number): Promise<number>;
}

function queries(s: SyntheticSample, endUs: number): QueryDef[] {
  const services = ['checkout', 'payments', 'inventory'];
  // Terms found in ~0.2% of logs (`upstream <svc>:50051 connection reset by peer after <n> ms`), each
  // repetition another one.
  const rareTerm = (i: number): string => (i % 4 === 3 ? `${s.logTerm} after ${1 + (i % 9)}` : `${services[i % 3]}:50051 ${s.logTerm}`);
  // The window's end moves back 7 minutes per variant (RED, services); search traces takes another hour.
  const end = (i: number): number => endUs - i * 7 * 60e6;
  return [
    { key: 'trace', title: 'trace by id', reads: 'raw spans', goalMs: 20,
      run: async (st, i) => (await st.getTrace(s.traceIds[(i * 13) % s.traceIds.length])).length },
    { key: 'logs', title: 'log search, term in ~0.2% of logs, 24 h', reads: 'raw logs', goalMs: 500,
      run: async (st, i) => (await st.searchLogs({ q: rareTerm(i), fromUs: endUs - DAY, toUs: endUs, limit: 100 })).length },
    { key: 'logs_none', title: 'log search, term in no log (full scan of 24 h)', reads: 'raw logs', goalMs: 500,
      run: async (st, i) => (await st.searchLogs({ q: `no such text ${i}x${Math.random().toString(36).slice(2, 8)}`, fromUs: endUs - DAY, toUs: endUs, limit: 100 })).length },
    { key: 'red', title: '24 h RED, 5 min step, service', reads: 'rollups', goalMs: 100,
      run: async (st, i) => (await st.red({ service: i % 2 === 0 ? s.service : services[i % 3], fromUs: end(i) - DAY, toUs: end(i), stepS: 300 })).length },
    { key: 'red_op', title: '24 h RED, 5 min step, one operation', reads: 'rollups', goalMs: 100,
      run: async (st, i) => (await st.red({ service: s.service, operation: ['GET /', 'GET /product/{id}', 'POST /cart', 'POST /checkout'][i % 4], fromUs: end(i) - DAY, toUs: end(i), stepS: 300 })).length },
    { key: 'services', title: 'services, 24 h', reads: 'rollups',
      run: async (st, i) => (await st.services(end(i) - DAY, end(i))).length },
    { key: 'search', title: 'search traces, one hour (another hour each time)', reads: 'raw spans',
      run: async (st, i) => (await st.searchTraces({ fromUs: endUs - (1 + (i % 23)) * HOUR, toUs: endUs - (i % 23) * HOUR, limit: 50 })).length },
  ];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-qbench-'));
  const path = join(dir, 'telemetry.duckdb');
  let engine: { url: string; child: ChildProcess } | undefined;
  try {
    let chUrl = argText('url', undefined);
    if (STORE === 'clickhouse' && chUrl === undefined) {
      engine = await startEngine(dir);
      chUrl = engine.url;
    }
    const open = (): TelemetryStore => (STORE === 'clickhouse' ? new ClickHouseTelemetryStore({ url: chUrl!, nodeId: 'qbench' }) : new DuckDbTelemetryStore(path));
    const loader = open();
    await loader.open();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage(), engineCpu0 = cpuSeconds(engine?.child.pid);
    const endUs = Date.now() * 1000;
    const sample = await loadSynthetic(loader, { spans: ROWS, logs: ROWS, hours: 24, endUs });
    await loader.close();
    const loadS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0), ownCpuS = (cpu.user + cpu.system) / 1e6, engineCpuS = cpuSeconds(engine?.child.pid) - engineCpu0;
    const perRowUs = (s: number): string => (Number.isNaN(s) ? 'n/a' : ((s * 1e6) / (2 * ROWS)).toFixed(1));
    console.log(`store ${STORE}: loaded ${ROWS} spans + ${ROWS} logs over 24 h in ${loadS.toFixed(1)} s (${Math.round((2 * ROWS) / loadS)} rows/s, generation included); `
      + `CPU per row: this process ${perRowUs(ownCpuS)} µs${engine ? `, engine ${perRowUs(engineCpuS)} µs` : ''}; ${REPS} repetitions, each on a reopened store`);

    const fields: string[] = [`store=${STORE}`, `rows=${ROWS}`, `load_rows_per_s=${Math.round((2 * ROWS) / loadS)}`, `load_cpu_us_per_row=${perRowUs(ownCpuS)}`];
    if (engine) fields.push(`engine_cpu_us_per_row=${perRowUs(engineCpuS)}`);
    let worstRatio = 0;
    const missed: string[] = [];
    for (const q of queries(sample, endUs)) {
      const cold: number[] = [], warm: number[] = [];
      let found = 0;
      for (let r = 0; r < REPS; r++) {
        const store = open();
        await store.open();
        try {
          let t = performance.now();
          found += await q.run(store, 2 * r);
          cold.push(performance.now() - t);
          t = performance.now();
          found += await q.run(store, 2 * r + 1);
          warm.push(performance.now() - t);
        } finally {
          await store.close();
        }
      }
      const c = median(cold), w = median(warm), ratio = c / w;
      worstRatio = Math.max(worstRatio, ratio);
      if (q.goalMs !== undefined && (c > q.goalMs || w > q.goalMs)) missed.push(q.key);
      console.log(`${q.title} [${q.reads}]: cold ${c.toFixed(1)} ms (max ${Math.max(...cold).toFixed(1)}), warm ${w.toFixed(1)} ms (max ${Math.max(...warm).toFixed(1)}), cold/warm ${ratio.toFixed(1)}; `
        + `${(found / (2 * REPS)).toFixed(0)} rows per query${q.goalMs === undefined ? '' : `; goal ≤ ${q.goalMs} ms at 10 M rows`}`);
      fields.push(`${q.key}_ms=${w.toFixed(1)}`, `${q.key}_cold_ms=${c.toFixed(1)}`);
    }
    console.log(`cold within 3× warm: ${worstRatio <= 3 ? 'yes' : 'no'} (worst ${worstRatio.toFixed(1)}×); over a goal: ${missed.length === 0 ? 'none' : missed.join(', ')}`);
    console.log(`RESULT query ${fields.join(' ')} worst_cold_over_warm=${worstRatio.toFixed(1)} over_goal=${missed.length}`);
  } finally {
    if (engine && engine.child.exitCode === null) {
      const exited = new Promise((r) => engine!.child.once('exit', r));
      engine.child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
