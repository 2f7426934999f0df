/** Spans of the crash test, shared by the test and its child process. */
import type { SpanBatch } from './batch.js';
import { hexOf, spanBatch, type SpanInput } from './conformance-batches.js';

const US = 1_000_000;
export const CRASH_T0 = Date.UTC(2024, 4, 1, 10) * 1000;

function entries(from: number, n: number, startUs: (i: number) => number): SpanInput[] {
  const out: SpanInput[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ traceId: hexOf(from + i, 32), spanId: hexOf(from + i, 16), kind: 2, name: 'GET /x', service: 'crash',
      version: '1', environment: 'prod', startUs: startUs(i), durationNs: (1 + (i % 50)) * 1e6, statusCode: i % 5 === 0 ? 2 : 0 });
  }
  return out;
}

export interface CrashScenario {
  /** Flushed before the crash. */
  before: SpanBatch;
  /** After the flush: half into already-flushed seconds (late), half into the next minutes. */
  after: SpanBatch;
  /** Current spans (periods still open at the crash). */
  current: SpanBatch;
}

export function crashScenario(nowUs: number): CrashScenario {
  return {
    before: spanBatch(entries(1, 120, (i) => CRASH_T0 + (i % 60) * US)),
    after: spanBatch(entries(1000, 80, (i) => CRASH_T0 + (i < 40 ? i : 60 + i) * US)),
    current: spanBatch(entries(5000, 30, (i) => nowUs - (i % 3) * US)),
  };
}
