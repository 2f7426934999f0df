/**
 * RetentionJob: drops whole UTC days of telemetry older than each signal's retention, hourly.
 * A day is dropped once all of it is older than `days` days (the store drops days strictly
 * before the cutoff's day).
 */
import type { Signal, TelemetryStore } from './store.js';

export type RetentionDays = Record<Signal, number>;

/** What the job reports through (pino's Logger fits). */
export interface RetentionLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RetentionJobOptions {
  intervalMs?: number;
  /** Clock in µs (tests). */
  nowUs?: () => number;
}

const DAY_US = 86_400_000_000;
const SIGNALS: readonly Signal[] = ['spans', 'logs', 'metrics'];

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly nowUs: () => number;

  constructor(
    private readonly store: Pick<TelemetryStore, 'dropBefore'>,
    private readonly days: RetentionDays,
    private readonly log?: RetentionLogger,
    opts: RetentionJobOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 3_600_000;
    this.nowUs = opts.nowUs ?? (() => Date.now() * 1000);
  }

  /** Runs once now, then every interval. */
  start(): void {
    if (this.timer) return;
    this.trigger();
    this.timer = setInterval(() => this.trigger(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the schedule (a pass in progress finishes on its own; see idle()). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** One pass over all signals; returns rows removed per signal. Failures are logged, not thrown. */
  async runOnce(): Promise<Record<Signal, number>> {
    const removed: Record<Signal, number> = { spans: 0, logs: 0, metrics: 0 };
    const now = this.nowUs();
    for (const signal of SIGNALS) {
      const days = this.days[signal];
      if (!(days > 0)) continue;
      try {
        removed[signal] = await this.store.dropBefore(signal, now - days * DAY_US);
        if (removed[signal] > 0) this.log?.info({ signal, days, removed: removed[signal] }, 'retention dropped old days');
      } catch (err) {
        this.log?.error({ err, signal }, 'retention failed');
      }
    }
    return removed;
  }

  private trigger(): void {
    if (this.running) return; // a slow pass is never overlapped
    this.running = this.runOnce().then(() => undefined).finally(() => { this.running = undefined; });
  }
}
