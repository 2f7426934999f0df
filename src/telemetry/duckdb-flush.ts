import { metrics } from '../core/metrics.js';
import type { TelemetryListeners } from './duckdb-listeners.js';
import { META_FLUSH_ID, META_FLUSHED_SEQ, META_MINUTE_WM, META_SECOND_WM } from './duckdb-schema.js';
import type { Watermarks } from './duckdb-recover.js';
import type { WriteConnection } from './duckdb-write.js';
import { rollupSecondOf, type RollupBuffer } from './rollup.js';
import type { TelemetryLog } from './span-floor.js';
import type { TraceIndex } from './trace-index.js';
import type { WriteGate } from './write-gate.js';

const US = 1_000_000;
const MIN_US = 60 * US;

export interface FlushDeps {
  writes: () => WriteGate<WriteConnection>;
  /** With an ingest log, a flush shares the write connections with loads (see run()). */
  logged: () => boolean;
  /** The ingest time every row in the buffers is covered by (taken with the buffers). */
  coveredSeq: () => number;
  rollups: RollupBuffer;
  traces: TraceIndex;
  listeners: TelemetryListeners;
  nowUs: () => number;
  secondGraceMs: number;
  minuteGraceMs: number;
  log: TelemetryLog | undefined;
}

/**
 * Persists the DuckDB store's buffered rollups and trace filters: every second closed for the
 * grace (minute: its grace) plus what arrived late for periods already flushed, committed with
 * the watermarks (recover.ts says what they promise). A failed flush leaves its rows buffered,
 * is retried on the next tick, counted, logged once until flushes work again, and marks the
 * `telemetry_flush` component degraded meanwhile.
 */
export class RollupFlusher {
  wm: Watermarks = { second: 0, minute: 0, seq: 0 };
  /** Flushes that failed so far. */
  failures = 0;
  /** The last failure while flushes fail (undefined once one succeeds). */
  private lastError: unknown;
  /** Flushes run one after another: the chain's tail, and how many wait or run. */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(private readonly d: FlushDeps) {}

  /** The periodic flush: none while another one still waits or runs (a slow commit). */
  tick(): void {
    if (this.queued > 0) return;
    // Logged and counted once by run's own handler (it also marks the store degraded).
    this.run(false, false).catch(() => undefined);
  }

  /**
   * Queues a rollup flush behind the previous one: two flushes at once would both persist what
   * the buffers hold. Without a log it runs exclusively, so every append that took an ingest
   * time has reached the buffers. With one, the accepted ingest time already says what the
   * buffers hold, and a load session may keep its transaction open for seconds: the flush takes
   * the other write connection (its tables and its row of `telemetry_meta` are not the load's).
   * `all` flushes open periods too.
   */
  run(all: boolean, exclusive: boolean): Promise<void> {
    this.queued++;
    const run = this.tail.then(() => (this.d.logged() && !exclusive ? this.d.writes().shared((w) => this.flush(w, all))
      : this.d.writes().exclusive((w) => this.flush(w, all))));
    this.tail = run.then(
      () => {
        if (this.lastError !== undefined) this.d.log?.warn({ flushFailures: this.failures }, 'telemetry: rollup flushes work again');
        this.lastError = undefined;
        metrics.setDegraded('telemetry_flush', undefined);
      },
      (err: unknown) => {
        this.failures++;
        metrics.inc('tightloop_telemetry_flush_failures_total', 'Rollup / trace index flushes that failed (rows stay buffered and are retried).');
        metrics.setDegraded('telemetry_flush', `the last rollup flush failed (retried each tick): ${err instanceof Error ? err.message : String(err)}`);
        if (this.lastError === undefined) {
          this.d.log?.error({ err, flushFailures: this.failures }, 'telemetry: rollup flush failed; its rows stay buffered and are retried');
        }
        this.lastError = err;
      },
    ).finally(() => { this.queued--; });
    return run;
  }

  private async flush(w: WriteConnection, all: boolean): Promise<void> {
    const { rollups, traces } = this.d;
    const now = this.d.nowUs();
    let second = Math.max(this.wm.second, Math.floor((now - this.d.secondGraceMs * 1000) / US));
    let minute = Math.max(this.wm.minute, Math.floor((now - this.d.minuteGraceMs * 1000) / MIN_US));
    if (all) {
      // Everything up to now, open periods included (they become partial rows). Spans dated in
      // the future stay buffered — the watermark must not jump ahead of the clock — and are
      // replayed from the raw rows after a restart.
      second = Math.max(second, Math.floor(now / US) + 1);
      minute = Math.max(minute, Math.floor(now / MIN_US) + 1);
    }
    // Taken out of the buffers together with the ingest time they cover (no await in between):
    // rows accepted while this flush commits go to fresh accumulators and stay buffered.
    // With a log, a group between taking its ingest time and being accepted is not in the buffers.
    const seq = this.d.coveredSeq();
    const rows = rollups.take(second, minute);
    const blooms = traces.take(minute);
    if (rows.seconds.length + rows.minutes.length + blooms.length === 0) {
      rollups.restore(); // nothing taken: no transaction, no new flush id
      traces.restore();
      return;
    }
    const flushId = rollups.flushId + 1;
    try {
      await w.transaction(async () => {
        await w.insertRollups('rollup_second', rows.seconds, flushId);
        await w.insertRollups('rollup_minute', rows.minutes, flushId);
        await w.insertBlooms(blooms);
        await w.con.run(`INSERT OR REPLACE INTO telemetry_meta VALUES ('${META_SECOND_WM}', $s::BIGINT),
          ('${META_MINUTE_WM}', $m::BIGINT), ('${META_FLUSHED_SEQ}', $q::BIGINT), ('${META_FLUSH_ID}', $f::BIGINT)`,
        { s: second, m: minute, q: seq, f: flushId });
      });
    } catch (e) {
      rollups.restore();
      traces.restore();
      throw e;
    }
    this.wm = { second, minute, seq };
    rollups.committed();
    traces.committed(blooms);
    this.d.listeners.emitFlushed(rows.seconds.filter((r) => !r.allOperations).map(rollupSecondOf));
  }
}
