import type { LogBatch, LogRow } from '../telemetry/index.js';

/**
 * Live tail of logs: committed log batches are pushed to every subscriber whose filter matches.
 * Fed from the ingest path after commit (so a tailed line is also searchable), never by polling
 * the store. A subscriber that falls behind loses lines (it is told how many) instead of
 * buffering without bound.
 */

export interface LogTailFilter {
  /** Case-insensitive substring of the body. */
  q?: string;
  service?: string;
  minSeverity?: number;
  traceId?: string;
}

export interface LogTailSubscriber {
  filter: LogTailFilter;
  /** Returns false when the consumer cannot take more now (lines are then counted as dropped). */
  send(rows: LogRow[]): boolean;
  dropped(count: number): void;
}

/** At most this many lines, and this much text, per subscriber per committed group; the rest count as dropped. */
export const TAIL_MAX_LINES_PER_PUSH = 500;
export const TAIL_MAX_CHARS_PER_PUSH = 1024 * 1024;

function parseObject(text: string): Record<string, unknown> {
  if (text === '') return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? v as Record<string, unknown> : {};
  } catch { // stored text that is not JSON reads as no fields
    return {};
  }
}

export class LogTailHub {
  private readonly subs = new Set<LogTailSubscriber & { needle: string | undefined }>();

  get size(): number {
    return this.subs.size;
  }

  subscribe(sub: LogTailSubscriber): () => void {
    const entry = { ...sub, needle: sub.filter.q?.toLowerCase() };
    this.subs.add(entry);
    return () => { this.subs.delete(entry); };
  }

  /** Pushes a committed batch. Never throws: a failing subscriber is dropped. */
  publish(batch: LogBatch | undefined): void {
    if (batch === undefined || batch.length === 0 || this.subs.size === 0) return;
    for (const sub of this.subs) {
      const { filter, needle } = sub;
      const rows: LogRow[] = [];
      let skipped = 0;
      let chars = 0;
      for (let i = 0; i < batch.length; i++) {
        if (filter.service !== undefined && batch.service[i] !== filter.service) continue;
        if (filter.minSeverity !== undefined && batch.severityNumber[i] < filter.minSeverity) continue;
        if (filter.traceId !== undefined && batch.traceId[i] !== filter.traceId) continue;
        if (needle !== undefined && !batch.body[i].toLowerCase().includes(needle)) continue;
        const size = batch.body[i].length + batch.attrs[i].length + batch.resourceAttrs[i].length + 256;
        if (rows.length >= TAIL_MAX_LINES_PER_PUSH || (rows.length > 0 && chars + size > TAIL_MAX_CHARS_PER_PUSH)) { skipped++; continue; }
        chars += size;
        rows.push({
          timeUs: batch.timeUs[i], observedTimeUs: batch.observedTimeUs[i],
          severityNumber: batch.severityNumber[i], severityText: batch.severityText[i], body: batch.body[i],
          traceId: batch.traceId[i], spanId: batch.spanId[i], flags: batch.flags[i],
          service: batch.service[i], version: batch.version[i], environment: batch.environment[i],
          resourceAttrs: parseObject(batch.resourceAttrs[i]), scopeName: batch.scopeName[i], attrs: parseObject(batch.attrs[i]),
          eventName: batch.eventName[i] ?? '',
        });
      }
      try {
        if (rows.length > 0 && !sub.send(rows)) skipped += rows.length;
        if (skipped > 0) sub.dropped(skipped);
      } catch { // the tail's connection is gone: drop the subscriber, the others go on
        this.subs.delete(sub);
      }
    }
  }
}
