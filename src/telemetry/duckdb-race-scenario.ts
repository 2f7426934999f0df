/**
 * Test support for the rollup / trace index race tests (duckdb-race.test.ts and its SIGKILL child
 * duckdb-race-child.ts): generated scenarios of concurrent appends with late, early and
 * boundary-dated spans, interleaved with rollup flushes (some made slow), clock moves and
 * retention. The check is duckdb-race-check.ts.
 */
import fc from 'fast-check';
import { hexOf, spanBatch, type SpanInput } from './conformance-batches.js';
import type { DuckDbTelemetryStore } from './duckdb-store.js';

export const US = 1_000_000;
const MIN = 60 * US;
const HOUR = 3600 * US;
const DAY = 86_400 * US;
/** The scenarios' clock starts 50 s before a UTC midnight, so runs cross a day boundary. */
export const RACE_T0 = Date.UTC(2026, 0, 1) * 1000 - 50 * US;

export const SERVICES = ['svc-a', 'svc-b'];
export const OPS = ['GET /a', 'POST /b', 'consume q'];
export const VERSIONS = ['1.0', '2.0'];
export const ENVS = ['prod', 'staging'];

/** When a trace starts: relative to the clock, or next to a second/minute/hour/day edge. */
export type When = { rel: number } | { unit: number; k: number; d: number };

export interface TraceSpec {
  when: When;
  /** Kinds of the spans after the root (the root is SERVER): 1 internal, 2 server, 3 client, 5 consumer. */
  children: number[];
  service: number;
  op: number;
  version: number;
  env: number;
  /** One flag per span (root first): status ERROR. */
  errors: boolean[];
  /** Child spans start this many µs apart (may cross an edge). */
  gapUs: number;
}

export type Op =
  | { t: 'append'; traces: TraceSpec[] }
  | { t: 'wait' }
  | { t: 'flush' }
  | { t: 'advance'; s: number }
  | { t: 'sleep'; ms: number }
  | { t: 'slow'; on: boolean }
  | { t: 'retention' };

const whenArb: fc.Arbitrary<When> = fc.oneof(
  fc.integer({ min: -3 * US, max: US / 2 }).map((rel) => ({ rel })),
  fc.integer({ min: -20 * MIN, max: 0 }).map((rel) => ({ rel })),
  fc.integer({ min: -3 * HOUR, max: 3 * HOUR }).map((rel) => ({ rel })),
  fc.record({ unit: fc.constantFrom(US, MIN, HOUR, DAY), k: fc.integer({ min: -2, max: 1 }), d: fc.integer({ min: -3, max: 2 }) }),
);

const traceArb: fc.Arbitrary<TraceSpec> = fc.record({
  when: whenArb,
  children: fc.array(fc.constantFrom(1, 2, 3, 5), { maxLength: 3 }),
  service: fc.nat(SERVICES.length - 1),
  op: fc.nat(OPS.length - 1),
  version: fc.nat(VERSIONS.length - 1),
  env: fc.nat(ENVS.length - 1),
  errors: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  gapUs: fc.constantFrom(1, 999, 400_000),
});

export function opsArb(opts: { retention: boolean; minLength?: number; maxLength?: number }): fc.Arbitrary<Op[]> {
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 8, arbitrary: fc.array(traceArb, { minLength: 1, maxLength: 12 }).map((traces): Op => ({ t: 'append', traces })) },
    { weight: 2, arbitrary: fc.constant<Op>({ t: 'wait' }) },
    { weight: 2, arbitrary: fc.constant<Op>({ t: 'flush' }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }).map((s): Op => ({ t: 'advance', s })) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 15 }).map((ms): Op => ({ t: 'sleep', ms })) },
    { weight: 1, arbitrary: fc.boolean().map((on): Op => ({ t: 'slow', on })) },
    { weight: opts.retention ? 1 : 0, arbitrary: fc.constant<Op>({ t: 'retention' }) },
  );
  return fc.array(op, { minLength: opts.minLength ?? 10, maxLength: opts.maxLength ?? 45 });
}

export interface AckedSpan {
  traceId: string;
  spanId: string;
  startUs: number;
}

/** What the test drives: a fake clock (the store's nowUs) and knobs on the store's internals. */
export interface Driver {
  clock: { now: number };
  /** Flush transactions sleep 0–`slowMs` ms before they commit while on. */
  slow: { on: boolean; slowMs: number };
  /** RED's rollup reads sleep 0–`slowMs` ms first while on (a query under load). */
  slowReads: { on: boolean; slowMs: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Makes flushes slow on demand: every write connection's bloom insert (only flushes write blooms,
 * inside their transaction, after the buffers were read) waits first.
 */
export function slowFlushes(store: DuckDbTelemetryStore, d: Driver): void {
  const gate = (store as unknown as { gate: { all(): Array<{ insertBlooms: (...a: unknown[]) => Promise<void> }> } }).gate;
  for (const w of gate.all()) {
    const insert = w.insertBlooms.bind(w);
    w.insertBlooms = async (...a: unknown[]) => {
      if (d.slow.on) await sleep(Math.random() * d.slow.slowMs);
      return insert(...a);
    };
  }
}

/** Makes the rollup reads behind RED slow on demand (ReadPool.result; trace lookups use rows()). */
export function slowReads(store: DuckDbTelemetryStore, d: Driver): void {
  const reads = (store as unknown as { reads: { result: (...a: unknown[]) => Promise<unknown> } }).reads;
  const result = reads.result.bind(reads);
  reads.result = async (...a: unknown[]) => {
    if (d.slowReads.on) await sleep(Math.random() * d.slowReads.slowMs);
    return result(...a);
  };
}

let nextId = 1;

function resolveStart(w: When, now: number): number {
  if ('rel' in w) return now + w.rel;
  return (Math.floor(now / w.unit) + w.k) * w.unit + w.d;
}

function spansOf(t: TraceSpec, now: number): SpanInput[] {
  const traceId = hexOf(nextId++ * 7919 + 0x1000_0000, 32);
  const start = resolveStart(t.when, now);
  const root = hexOf(nextId++, 16);
  const base = {
    traceId, service: SERVICES[t.service], version: VERSIONS[t.version], environment: ENVS[t.env],
    resourceAttrs: { 'service.name': SERVICES[t.service], 'service.version': VERSIONS[t.version] },
  };
  const out: SpanInput[] = [{ ...base, spanId: root, kind: 2, name: OPS[t.op], startUs: start, durationNs: 1e6 + t.op * 3e6, statusCode: t.errors[0] ? 2 : 0 }];
  t.children.forEach((kind, i) => {
    out.push({
      ...base, spanId: hexOf(nextId++, 16), parentSpanId: root, kind, name: OPS[(t.op + i + 1) % OPS.length],
      startUs: start + (i + 1) * t.gapUs, durationNs: 2e5 * (i + 1), statusCode: t.errors[i + 1] ? 2 : 0,
    });
  });
  return out;
}

/**
 * Runs the ops against the store; appends run concurrently (a 'wait' op settles them). Returns
 * the acknowledged spans and the retention floor (start of the newest day dropped, or -Infinity).
 * `onAck` sees each acknowledged append at once (the SIGKILL child prints it).
 */
export async function runOps(store: DuckDbTelemetryStore, ops: Op[], d: Driver, onAck?: (spans: AckedSpan[]) => void):
  Promise<{ acked: AckedSpan[]; floorUs: number }> {
  const acked: AckedSpan[] = [];
  let inflight: Array<Promise<unknown>> = [];
  let floorUs = -Infinity;
  for (const op of ops) {
    switch (op.t) {
      case 'append': {
        const rows = op.traces.flatMap((t) => spansOf(t, d.clock.now));
        inflight.push(store.append([{ spans: spanBatch(rows) }]).then(() => {
          const spans = rows.map((r) => ({ traceId: r.traceId, spanId: r.spanId, startUs: r.startUs }));
          acked.push(...spans);
          onAck?.(spans);
        }));
        break;
      }
      case 'wait': await Promise.all(inflight); inflight = []; break;
      case 'flush': inflight.push(store.flush()); break;
      case 'advance': d.clock.now += op.s * US; break;
      case 'sleep': await sleep(op.ms); break;
      case 'slow': d.slow.on = op.on; break;
      case 'retention': {
        const cutoff = d.clock.now;
        floorUs = Math.max(floorUs, Math.floor(cutoff / DAY) * DAY);
        inflight.push(store.dropBefore('spans', cutoff));
        break;
      }
    }
  }
  await Promise.all(inflight);
  return { acked, floorUs };
}
