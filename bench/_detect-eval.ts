/** The detect engine's evaluation cost (bench/detect.ts, bench/state.ts). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DetectEngine, type DetectSource } from '../src/detect/index.js';
import type { StateStore } from '../src/state/index.js';
import { LatencySketch, type RollupSecond } from '../src/telemetry/index.js';
import { percentile } from './_util.js';

class BenchSource implements DetectSource {
  listener: ((rows: RollupSecond[]) => void) | undefined;
  onCommittedRollups(l: (rows: RollupSecond[]) => void): () => void { this.listener = l; return () => undefined; }
  services = (): Promise<never[]> => Promise.resolve([]);
  red = (): Promise<never[]> => Promise.resolve([]);
}

/**
 * Evaluation cost: 1,000 rules over 10,000 series (100 services × 100 operations, 10 rules per
 * service fanning out per operation); one second of committed deltas for every series plus the
 * periodic tick, divided by the series count (µs, median of 5 rounds after 3 of warm-up). The
 * state store (rules, alerts) comes from `open` (migrated with the detect migrations).
 */
export async function evaluationCost(open: () => Promise<StateStore>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-bench-eval-'));
  const state = await open();
  const signals = ['error_rate', 'p95_ms', 'p99_ms', 'rate', 'error_rate', 'error_rate', 'p95_ms', 'rate', 'error_rate', 'p50_ms'];
  const rules: string[] = [];
  for (let s = 0; s < 100; s++) {
    for (let r = 0; r < 10; r++) {
      const sig = signals[r];
      const threshold = sig === 'error_rate' ? 0.5 : sig === 'rate' ? 1e9 : 10_000;
      rules.push(`  - { name: r${s}-${r}, type: threshold, select: { service: s${s} }, signal: ${sig}, threshold: ${threshold}, window: ${5 + r}s }`);
    }
  }
  writeFileSync(join(dir, 'rules.yaml'), `rules:\n${rules.join('\n')}\n`);
  let now = Date.now();
  const source = new BenchSource();
  const engine = new DetectEngine({ db: state.db, source, rulesFile: join(dir, 'rules.yaml'), nowMs: () => now, tickMs: 0 });
  await engine.start();
  const sketch = new LatencySketch();
  for (let i = 0; i < 20; i++) sketch.add((5 + i) * 1e6);
  const perRound: number[] = [];
  for (let round = 0; round < 8; round++) {
    const second = Math.floor(now / 1000) * 1e6;
    const rows: RollupSecond[] = [];
    for (let s = 0; s < 100; s++) {
      for (let o = 0; o < 100; o++) rows.push({ service: `s${s}`, operation: `op${o}`, version: '1', environment: 'prod', second, count: 20, errors: 1, sketch });
    }
    const t = performance.now();
    source.listener?.(rows);
    now += 1000;
    engine.tick();
    if (round >= 3) perRound.push(((performance.now() - t) * 1000) / rows.length);
  }
  await engine.stop();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
  perRound.sort((a, b) => a - b);
  return percentile(perRound, 0.5);
}

