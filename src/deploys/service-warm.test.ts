import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateStore } from '../state/index.js';
import { openTestStateStore } from '../state/dialects.conformance.js';
import { LatencySketch, type RollupSecond } from '../telemetry/index.js';
import { DeployService } from './service.js';
import { deploysMigrations } from './storage.js';

/**
 * A DeployService that starts after another process verified a bad deploy — a restart, or the
 * cluster node that took the lease over from a holder that died — verifies the rollback against
 * the restored version's own history when its telemetry store holds that history (ClickHouse
 * shared by the nodes): it reads the stored rollups at start. Real state store; the telemetry
 * store is the rows both processes' stores would hold.
 */

let dir: string;
let state: StateStore;
let nowMs = Date.parse('2026-06-01T12:00:00Z');
let seed = 7;
const rand = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
/** What the shared telemetry store holds: every second of rollups, as committed. */
const stored: RollupSecond[] = [];

function second(version: string, n: number, errorRate: number): RollupSecond {
  const sketch = new LatencySketch();
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
    sketch.add(40e6 * Math.exp(0.4 * g));
    if (rand() < errorRate) errors++;
  }
  return { service: 'shop', operation: 'GET /items', version, environment: 'prod', second: Math.floor(nowMs / 1000) * 1e6, count: n, errors, sketch };
}

/** A DeployService on the state store and a telemetry source; `withHistory: false` has none of the history (another node's DuckDB). */
function node(withHistory: boolean): { svc: DeployService; deliver: (rows: RollupSecond[]) => void } {
  let listener: ((rows: RollupSecond[]) => void) | undefined;
  const source = {
    onCommittedRollups: (l: (rows: RollupSecond[]) => void) => { listener = l; return () => { listener = undefined; }; },
    ...(withHistory ? {
      operationRollups: (_level: 'second', fromUs: number, toUs: number, limit: number) => Promise.resolve(
        stored.filter((r) => r.second >= fromUs && r.second < toUs).sort((a, b) => b.second - a.second).slice(0, limit)),
    } : {}),
  };
  const svc = new DeployService({ db: state.db, source, tickMs: 0, nowMs: () => nowMs, implicitDeploys: false, preDeployWindowS: 300, verify: { maxDurationS: 300 } });
  return { svc, deliver: (rows) => { stored.push(...rows); listener?.(rows); } };
}

/** One second of traffic through `p`, then its tick. */
function tickWith(p: ReturnType<typeof node>, ...serving: Array<[string, number, number]>): void {
  p.deliver(serving.map(([v, n, e]) => second(v, n, e)));
  nowMs += 1000;
  p.svc.tick();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-deploys-warm-'));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: deploysMigrations });
});

afterAll(async () => {
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verification history after a restart or a takeover', () => {
  it('a rollback verified by the process that started after the bad deploy\'s verdict compares with the restored version\'s own history, and passes', async () => {
    // The first process: 1.0.0 alone for 240 s, then 2.0.0 (recorded), which fails its verification.
    const first = node(true);
    await first.svc.start();
    for (let s = 0; s < 240; s++) tickWith(first, ['1.0.0', 100, 0.01]);
    const bad = await first.svc.record({ service: 'shop', version: '2.0.0', environment: 'prod', previousVersion: '1.0.0', source: 'api' });
    const verdict = first.svc.waitForVerdict(bad.id);
    for (let s = 0; s < 120 && (await first.svc.get(bad.id)).status === 'verifying'; s++) tickWith(first, ['2.0.0', 100, 0.3]);
    expect((await verdict).outcome).toBe('fail');
    // It dies; the next process starts with the same telemetry store and rolls back.
    await first.svc.stop();
    const next = node(true);
    await next.svc.start();
    const rb = await next.svc.record({ service: 'shop', version: '1.0.0', environment: 'prod', previousVersion: '2.0.0', source: 'rollback', rollbackOf: bad.id, actor: 'tightloop', verify: false });
    const started = await next.svc.startVerification(rb, 300);
    expect(started.evidence.find((e) => e.signal === 'baseline')?.detail).toMatch(/^own history: 1\.0\.0 serving alone before 2\.0\.0 began \(240 s/);
    const rbVerdict = next.svc.waitForVerdict(rb.id);
    for (let s = 0; s < 300 && (await next.svc.get(rb.id)).status === 'verifying'; s++) tickWith(next, ['1.0.0', 100, 0.01]);
    expect((await rbVerdict).outcome).toBe('pass');
    expect((await next.svc.get(rb.id)).status).toBe('passed');
    await next.svc.stop();

    // A process whose telemetry store holds none of that history (another node's embedded DuckDB) cannot tell.
    const blind = node(false);
    await blind.svc.start();
    const rb2 = await blind.svc.record({ service: 'shop', version: '1.0.0', environment: 'prod', previousVersion: '2.0.0', source: 'rollback', rollbackOf: bad.id, actor: 'tightloop', verify: false });
    await blind.svc.startVerification(rb2, 300);
    const blindVerdict = blind.svc.waitForVerdict(rb2.id);
    tickWith(blind, ['1.0.0', 100, 0.01]);
    const v = await blindVerdict;
    expect(v.outcome).toBe('inconclusive');
    expect(v.reason).toMatch(/^no history: shop 1\.0\.0 never served alone/);
    await blind.svc.stop();
  });
});
