/**
 * The check of the race tests (duckdb-race.test.ts): every acknowledged trace is found by id,
 * and RED equals the stored spans, exactly.
 */
import { expect } from 'vitest';
import { hexOf } from './conformance-batches.js';
import { hexId } from './duckdb-sql.js';
import type { DuckDbTelemetryStore } from './duckdb-store.js';
import { ENVS, OPS, SERVICES, US, VERSIONS, type AckedSpan } from './duckdb-race-scenario.js';
import type { RedQuery } from './store.js';

const MIN = 60 * US;
const HOUR = 3600 * US;

interface StoredSpan {
  traceId: string;
  spanId: string;
  startUs: number;
  service: string;
  name: string;
  version: string;
  environment: string;
  entry: boolean;
  error: boolean;
}

async function storedSpans(store: DuckDbTelemetryStore): Promise<StoredSpan[]> {
  await store.getTrace(hexOf(1, 32)); // loads what waits in the ingest log
  const sql = (store as unknown as { reads: { rows(q: string): Promise<Array<Record<string, unknown>>> } }).reads;
  const rows = await sql.rows(`SELECT trace_id, span_id, start_us, service, name,
    version, environment, (kind IN (2, 5) OR parent_span_id = 0) AS entry, status_code = 2 AS error FROM spans`);
  return rows.map((r) => ({
    traceId: hexId(r.trace_id, 32), spanId: hexId(r.span_id, 16), startUs: Number(r.start_us), service: String(r.service),
    name: String(r.name), version: String(r.version), environment: String(r.environment), entry: Boolean(r.entry), error: Boolean(r.error),
  }));
}

/** Non-empty buckets of the stored entry spans matching `q`: bucket start → [count, errors]. */
function expectedRed(spans: StoredSpan[], q: RedQuery): Map<number, [number, number]> {
  const step = q.stepS * US;
  const out = new Map<number, [number, number]>();
  for (const s of spans) {
    if (!s.entry || s.service !== q.service || s.startUs < q.fromUs || s.startUs >= q.toUs) continue;
    if (q.operation !== undefined && s.name !== q.operation) continue;
    if (q.version !== undefined && s.version !== q.version) continue;
    if (q.environment !== undefined && s.environment !== q.environment) continue;
    const b = Math.floor(s.startUs / step) * step;
    const v = out.get(b) ?? [0, 0];
    v[0]++;
    if (s.error) v[1]++;
    out.set(b, v);
  }
  return out;
}

async function actualRed(store: DuckDbTelemetryStore, q: RedQuery): Promise<Map<number, [number, number]>> {
  const out = new Map<number, [number, number]>();
  for (const b of await store.red(q)) if (b.count > 0 || b.errors > 0) out.set(b.timeUs, [b.count, b.errors]);
  return out;
}

/**
 * Every acknowledged span not older than the retention floor is stored (`exact`: and nothing
 * else); every acknowledged trace's lookup returns exactly its stored spans; RED per service,
 * version, operation and environment at 1 s, 1 min and 1 h steps equals the stored entry spans.
 */
export async function checkExact(store: DuckDbTelemetryStore, acked: AckedSpan[], floorUs: number, exact: boolean, nowUs: number, label: string): Promise<void> {
  const stored = await storedSpans(store);
  const storedIds = new Set(stored.map((s) => s.spanId));
  const kept = acked.filter((a) => a.startUs >= floorUs);
  expect(kept.filter((a) => !storedIds.has(a.spanId)).map((a) => a.spanId), `${label}: acknowledged spans missing from storage`).toEqual([]);
  if (exact) {
    const keptIds = new Set(kept.map((a) => a.spanId));
    expect(stored.filter((s) => !keptIds.has(s.spanId)).map((s) => [s.spanId, s.startUs]), `${label}: stored spans never acknowledged or older than retention`).toEqual([]);
  }
  const byTrace = new Map<string, string[]>();
  for (const s of stored) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s.spanId]);
  const lost: string[] = [];
  for (const traceId of new Set(acked.map((a) => a.traceId))) {
    const want = (byTrace.get(traceId) ?? []).sort();
    const got = (await store.getTrace(traceId)).map((s) => s.spanId).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) lost.push(`${traceId}: got ${got.length} of ${want.length}`);
  }
  expect(lost, `${label}: trace lookups`).toEqual([]);
  if (stored.length === 0) return;
  const lo = Math.min(...stored.map((s) => s.startUs)), hi = Math.max(...stored.map((s) => s.startUs)) + 1;
  const ranges: Array<[number, number, number]> = [
    [3600, Math.floor(lo / HOUR) * HOUR, Math.ceil(hi / HOUR) * HOUR + HOUR],
    [60, Math.floor(lo / MIN) * MIN, Math.ceil(hi / MIN) * MIN + MIN],
    // Seconds around the clock: the open (unflushed) seconds and minutes are in here.
    [1, Math.floor((nowUs - 5 * MIN) / MIN) * MIN, nowUs + 2 * MIN],
  ];
  const bad: string[] = [];
  for (const [stepS, fromUs, toUs] of ranges) {
    const queries: RedQuery[] = [];
    for (const service of SERVICES) {
      queries.push({ service, fromUs, toUs, stepS }, { service, environment: ENVS[0], fromUs, toUs, stepS });
      for (const version of VERSIONS) {
        queries.push({ service, version, fromUs, toUs, stepS });
        for (const operation of OPS) queries.push({ service, version, operation, fromUs, toUs, stepS });
      }
    }
    for (const q of queries) {
      const want = expectedRed(stored, q), got = await actualRed(store, q);
      const keys = new Set([...want.keys(), ...got.keys()]);
      for (const k of keys) {
        const w = want.get(k) ?? [0, 0], g = got.get(k) ?? [0, 0];
        if (w[0] !== g[0] || w[1] !== g[1]) bad.push(`${JSON.stringify({ ...q, fromUs: undefined, toUs: undefined })} @${k}: want ${w.join(',')} got ${g.join(',')}`);
      }
    }
  }
  expect(bad.slice(0, 10), `${label}: RED vs stored spans (${bad.length} wrong buckets)`).toEqual([]);
}
