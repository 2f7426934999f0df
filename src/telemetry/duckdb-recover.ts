import { emptySpanBatch } from './batch.js';
import { META_FLUSH_ID, META_FLUSHED_SEQ, META_MINUTE_WM, META_SECOND_WM } from './duckdb-schema.js';
import { hexId, num, str, type ReadPool } from './duckdb-sql.js';
import type { RollupBuffer } from './rollup.js';
import { BloomFilter, type TraceIndex } from './trace-index.js';

const US = 1_000_000;
const MIN_US = 60 * US;

/**
 * What the last committed flush persisted: rollups hold exactly the spans with
 * `ingested_us ≤ seq` and a start before the second (Ws) / minute (Wm) watermark.
 */
export interface Watermarks {
  second: number;
  minute: number;
  seq: number;
}

/**
 * After a start (or a crash): loads the watermarks and the persisted trace filters, then puts
 * back into the buffers precisely the spans the persisted rollups lack — start ≥ W or
 * ingested_us > S — so nothing is lost or counted twice. Returns the watermarks and the highest
 * ingest time stored.
 */
export async function recoverRollups(sql: ReadPool, rollups: RollupBuffer, traces: TraceIndex): Promise<{ wm: Watermarks; lastSeq: number }> {
  const wm: Watermarks = { second: 0, minute: 0, seq: 0 };
  for (const r of await sql.rows('SELECT key, value FROM telemetry_meta')) {
    const v = num(r.value);
    if (r.key === META_SECOND_WM) wm.second = v;
    else if (r.key === META_MINUTE_WM) wm.minute = v;
    else if (r.key === META_FLUSHED_SEQ) wm.seq = v;
    else if (r.key === META_FLUSH_ID) rollups.flushId = v;
  }
  traces.load((await sql.rows('SELECT minute_us, hashes, bits FROM trace_blooms')).map((r) => ({
    minuteUs: num(r.minute_us),
    filter: BloomFilter.fromBytes(r.bits as Uint8Array, num(r.hashes)),
  })));
  const { second, minute, seq } = wm;
  const lo = Math.min(second * US, minute * MIN_US);
  const cols = 'trace_id, start_us, service, name, version, environment, kind, parent_span_id, duration_ns, status_code, ingested_us';
  const rows = await sql.rows(`SELECT ${cols} FROM spans WHERE start_us >= $lo::BIGINT
    UNION ALL SELECT ${cols} FROM spans WHERE ingested_us > $seq::BIGINT AND start_us < $lo::BIGINT`, { lo, seq });
  const maxSeq = await sql.rows('SELECT max(ingested_us) AS m FROM spans WHERE ingested_us > $seq::BIGINT', { seq });
  const lastSeq = Math.max(seq, num(maxSeq[0]?.m));
  if (rows.length === 0) return { wm, lastSeq };
  const b = emptySpanBatch();
  const ingested: number[] = [];
  for (const r of rows) {
    b.traceId.push(hexId(r.trace_id, 32));
    b.startUs.push(num(r.start_us));
    b.service.push(str(r.service));
    b.name.push(str(r.name));
    b.version.push(str(r.version));
    b.environment.push(str(r.environment));
    b.kind.push(num(r.kind));
    b.parentSpanId.push(hexId(r.parent_span_id, 16));
    b.durationNs.push(num(r.duration_ns));
    b.statusCode.push(num(r.status_code));
    ingested.push(num(r.ingested_us));
  }
  b.length = rows.length;
  const late = (i: number): boolean => ingested[i] > seq;
  const minuteKept = (i: number): boolean => late(i) || Math.floor(b.startUs[i] / MIN_US) >= minute;
  rollups.add(b, { second: (i) => late(i) || Math.floor(b.startUs[i] / US) >= second, minute: minuteKept });
  traces.add(b.traceId, b.startUs, b.length, minuteKept);
  return { wm, lastSeq };
}
