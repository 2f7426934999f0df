import { metrics } from '../core/metrics.js';
import type { CommittedRollupListener, RollupListener, RollupSecond } from './rollup.js';
import type { CommittedBatches } from './duckdb-store.js';
import type { TelemetryLog } from './span-floor.js';

/**
 * The DuckDB store's three subscriber buses: committed batches and committed rollup deltas
 * (delivered right after a commit or log accept, before the append resolves) and flushed rollup
 * seconds (after a flush commits). A subscriber that throws never breaks ingest nor passes in
 * silence: each failure is counted, and logged when its kind starts failing and at most every
 * 10 s after.
 */
export class TelemetryListeners {
  private readonly batches = new Set<(c: CommittedBatches) => void>();
  private readonly committed = new Set<CommittedRollupListener>();
  private readonly flushed = new Set<RollupListener>();
  private readonly loggedAt = new Map<string, number>();

  constructor(private readonly log: TelemetryLog | undefined) {}

  /** Whether anyone wants per-commit rollup deltas (computing them costs, so only then). */
  get wantsDeltas(): boolean {
    return this.committed.size > 0;
  }

  get wantsBatches(): boolean {
    return this.batches.size > 0;
  }

  onCommittedBatches(listener: (c: CommittedBatches) => void): () => void {
    this.batches.add(listener);
    return () => { this.batches.delete(listener); };
  }

  onCommittedRollups(listener: CommittedRollupListener): () => void {
    this.committed.add(listener);
    return () => { this.committed.delete(listener); };
  }

  onRollup(listener: RollupListener): () => void {
    this.flushed.add(listener);
    return () => { this.flushed.delete(listener); };
  }

  /** Hands a committed append's batches (by reference, no copy) to subscribers. */
  emitBatches(c: CommittedBatches): void {
    for (const l of this.batches) {
      try { l(c); } catch (err) { this.failed('committed_batches', err); }
    }
  }

  emitCommitted(deltas: RollupSecond[]): void {
    if (deltas.length === 0) return;
    for (const l of this.committed) {
      try { l(deltas); } catch (err) { this.failed('committed_rollups', err); }
    }
  }

  emitFlushed(rows: RollupSecond[]): void {
    if (rows.length === 0) return;
    for (const l of this.flushed) {
      try { l(rows); } catch (err) { this.failed('flushed_rollups', err); }
    }
  }

  private failed(listener: string, err: unknown): void {
    metrics.inc('tightloop_telemetry_listener_failures_total', 'Telemetry subscribers (detectors) that threw on a delivery.', { listener });
    const now = Date.now();
    const last = this.loggedAt.get(listener);
    if (last !== undefined && now - last < 10_000) return;
    this.loggedAt.set(listener, now);
    this.log?.error({ err, listener, failures: metrics.value('tightloop_telemetry_listener_failures_total', { listener }) },
      'telemetry: a subscriber failed on a delivery; ingest goes on');
  }
}
