/**
 * ClickHouseTelemetryStore: the TelemetryStore on a ClickHouse server (HTTP interface,
 * `@clickhouse/client`), for telemetry beyond one node: several tightloop nodes can ingest into
 * one database and every node's queries see all rows.
 *
 * Writes are synchronous INSERTs (telemetry/README.md, "ClickHouse"): append() resolves once
 * ClickHouse has written and fsynced the parts (`fsync_after_insert`); the writer's group commit
 * already hands it large batches. Each INSERT carries a deduplication token (node, ingest time,
 * table), and a failed INSERT is retried with the same token, so an INSERT whose response was
 * lost is stored once. RED rollups and the trace-id lookup table are filled by materialized
 * views in the same INSERT: nothing derived is buffered in the node, nothing to replay after a
 * crash, and rollups of several nodes add up in the engine.
 *
 * Several nodes: queries read every node's rows. onCommittedRollups delivers this node's deltas
 * at once and the other nodes' committed deltas within about a second (`rollup_feed`), so
 * detectors and deploy verification count every node's requests; onCommittedBatches and
 * onRollup deliver what this node appended.
 */
import { hostname } from 'node:os';
import type { LogBatch, MetricBatch, SpanBatch } from './batch.js';
import { emptySpanBatch } from './batch.js';
import { INGEST_DEFAULTS } from '../config/schema.js';
import { apiError, AppError } from '../core/app-error.js';
import { metrics } from '../core/metrics.js';
import type { CommittedBatches } from './duckdb-store.js';
import { getTrace, logVolume, searchLogs, searchTraces } from './clickhouse-queries.js';
import { queryMetric } from './clickhouse-metrics.js';
import { operationRollups, red, services } from './clickhouse-red.js';
import { clickHouseSchema, LOG_INSERT, METRIC_INSERT, SPAN_INSERT, schemaLayout, type SchemaLayout } from './clickhouse-schema.js';
import { ChSql, MAX_TIME_US, MIN_TIME_US, num, parseClickHouseUrl, str, type ClickHouseLocation } from './clickhouse-sql.js';
import { RowBinaryReader, RowBinaryWriter, writeLogRows, writeMetricRows, writeSpanRows } from './clickhouse-rows.js';
import type { RetentionDays } from './retention.js';
import { RollupBuffer, deltasOf, rollupSecondOf, type CommittedRollupListener, type RollupListener, type RollupSecond } from './rollup.js';
import type { TelemetryLog } from './span-floor.js';
import type {
  LogQuery, LogRow, LogVolumeBucket, LogVolumeQuery, MetricQuery, MetricSeries, RedBucket, RedQuery, ServiceSummary, Signal, SpanRow,
  TelemetryBatches, TelemetryStore, TraceQuery, TraceSummary,
} from './store.js';
import { PartialAppendError } from './store.js';

export interface ClickHouseStoreOptions {
  /** `clickhouse://user:pass@host:8123/db` (`clickhouses://` for TLS; http(s):// too). */
  url: string;
  /** This node's name in the rows it ingests (`node` column). Default: the host name. */
  nodeId?: string;
  /**
   * A ClickHouse cluster (`--clickhouse-cluster NAME`, from the servers' `remote_servers`): tables
   * created `ON CLUSTER` as Replicated tables under Distributed ones (clickhouse-schema.ts,
   * SchemaLayout). Default: one server, plain MergeTree.
   */
  cluster?: string;
  /** Retention per signal, also set as the tables' TTL (ClickHouse drops old days on its own). */
  retentionDays?: Partial<RetentionDays>;
  /** Attempts per INSERT (same deduplication token each time). Default 3. */
  insertAttempts?: number;
  secondGraceMs?: number;
  flushIntervalMs?: number;
  nowUs?: () => number;
  log?: TelemetryLog;
}

/**
 * The group commit in front of this store (`TelemetryWriter`) keeps two INSERTs in flight by
 * default (`ingest.maxInFlight`, INGEST_DEFAULTS.maxInFlightClickHouse in config/schema.ts).
 */
export const CLICKHOUSE_WRITER_OPTIONS = { maxInFlight: INGEST_DEFAULTS.maxInFlightClickHouse } as const;

const US = 1_000_000;
/** How far back other nodes' INSERTs are read (their clocks may be this far behind ours). */
const PEER_LOOKBACK_US = 30 * US;
const DAY_US = 86_400 * US;

/** The batches' rows as a RowBinary body (its chunks, in order), or undefined when they have none. */
function rowBinary<B extends { length: number }>(batches: B[], write: (w: RowBinaryWriter, b: B, seq: number, node: string) => void,
  seq: number, node: string): Buffer[] | undefined {
  if (!batches.some((b) => b.length > 0)) return undefined;
  const w = new RowBinaryWriter();
  for (const b of batches) write(w, b, seq, node);
  return w.length === 0 ? undefined : w.chunks();
}

export class ClickHouseTelemetryStore implements TelemetryStore {
  private sql: ChSql | undefined;
  readonly location: ClickHouseLocation;
  private readonly layout: SchemaLayout;
  private readonly nodeId: string;
  private readonly nowUs: () => number;
  /** This node's appended spans, per second, until onRollup listeners had them. */
  private readonly local = new RollupBuffer();
  private readonly listeners = new Set<RollupListener>();
  private readonly committedListeners = new Set<CommittedRollupListener>();
  private readonly batchListeners = new Set<(c: CommittedBatches) => void>();
  private readonly appending = new Set<number>();
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Other nodes' INSERTs already delivered (node + ingest time → ingest time), and since when. */
  private readonly peersSeen = new Map<string, number>();
  private peersSinceUs = 0;
  private polling = false;
  private peerPollLoggedAt = 0;
  /** Spans not stored because their start or duration is not a storable time (logged, counted). */
  spansDroppedOutOfRange = 0;

  constructor(private readonly opts: ClickHouseStoreOptions) {
    this.location = parseClickHouseUrl(opts.url);
    this.layout = schemaLayout(opts.cluster);
    this.nodeId = opts.nodeId ?? hostname();
    this.nowUs = opts.nowUs ?? (() => Date.now() * 1000);
  }

  private get db(): ChSql {
    if (!this.sql) throw new Error('telemetry store is not open');
    return this.sql;
  }

  async open(): Promise<void> {
    if (this.sql) return;
    const admin = new ChSql(this.location, 'default');
    try {
      await admin.command(`CREATE DATABASE IF NOT EXISTS ${this.location.database}${this.layout.on === '' ? '' : ` ${this.layout.on}`}`);
    } finally {
      await admin.close();
    }
    const sql = new ChSql(this.location);
    try {
      for (const ddl of clickHouseSchema(this.opts.retentionDays, this.opts.cluster)) await sql.command(ddl);
      const [last] = await sql.rows('SELECT toUnixTimestamp64Micro(max(ingested)) AS m FROM spans WHERE node = {node:String}', { node: this.nodeId });
      this.lastSeq = Math.max(this.lastSeq, num(last?.m));
    } catch (e) {
      await sql.close();
      throw e;
    }
    this.sql = sql;
    this.peersSinceUs = this.nowUs();
    this.timer = setInterval(() => {
      this.emitClosedSeconds(false);
      this.pollPeers().catch((err: unknown) => this.peerPollFailed(err));
    }, this.opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  /**
   * Hands the committed deltas of the other nodes' INSERTs (`rollup_feed`) to onCommittedRollups
   * listeners, each INSERT once: detectors and deploy verification on every node count every
   * node's requests. Reads INSERTs of the last PEER_LOOKBACK_US (node clocks may differ that
   * much), none from before this store opened (the windows refill from operationRollups then).
   */
  private async pollPeers(): Promise<void> {
    if (this.polling || !this.sql || this.committedListeners.size === 0) return;
    this.polling = true;
    try {
      const now = this.nowUs();
      const since = Math.max(this.peersSinceUs, now - PEER_LOOKBACK_US);
      for (const [k, at] of this.peersSeen) if (at < since) this.peersSeen.delete(k);
      // RowBinary, not JSON text: on two nodes parsing these rows as JSONEachRow cost more of the
      // main thread than encoding the node's own INSERTs (telemetry/README.md, "ClickHouse").
      const body = await this.sql.rowBinary(`SELECT toUnixTimestamp64Micro(ingested), CAST(node, 'String'), toUnixTimestamp(second),
          CAST(service, 'String'), CAST(operation, 'String'), CAST(version, 'String'), CAST(environment, 'String'), count, errors, bins
        FROM rollup_feed WHERE node != {node:String} AND ingested >= fromUnixTimestamp64Micro({since:Int64}, 'UTC') FORMAT RowBinary`,
      { node: this.nodeId, since });
      const fresh: RollupSecond[] = [];
      const seenNow = new Map<string, number>();
      for (const r = new RowBinaryReader(body); !r.done;) {
        const at = r.int64(), node = r.string(), s = r.uint32();
        const service = r.string(), operation = r.string(), version = r.string(), environment = r.string();
        const count = r.uint64(), errors = r.uint64();
        let keys: number[] = [], counts: number[] = [];
        let sorted = true;
        for (let n = r.varint(); n > 0; n--) {
          const k = r.int16();
          if (keys.length > 0 && k < keys[keys.length - 1]) sorted = false;
          keys.push(k);
          counts.push(r.uint64());
        }
        const key = `${node}\u0001${at}`;
        if (this.peersSeen.has(key)) continue;
        seenNow.set(key, at);
        if (!sorted) {
          // sumMap's maps come sorted by key; the sketch wants them so, whatever produced the row.
          const order = keys.map((_, i) => i).sort((x, y) => keys[x] - keys[y]);
          [keys, counts] = [order.map((i) => keys[i]), order.map((i) => counts[i])];
        }
        fresh.push(rollupSecondOf({ periodUs: s * US, service, operation, version, environment, allOperations: false, count, errors, keys, counts }));
      }
      for (const [k, at] of seenNow) this.peersSeen.set(k, at);
      if (fresh.length === 0) return;
      for (const l of this.committedListeners) {
        try { l(fresh); } catch (err) { this.listenerFailed('committed_rollups', err); }
      }
    } finally {
      this.polling = false;
    }
  }

  private peerPollFailed(err: unknown): void {
    metrics.inc('tightloop_clickhouse_peer_poll_failures_total', 'Reads of the other nodes\' rollup deltas that failed (retried each second).');
    const now = Date.now();
    if (now - this.peerPollLoggedAt < 10_000) return;
    this.peerPollLoggedAt = now;
    this.opts.log?.warn({ err }, 'telemetry: reading the other nodes\' rollup deltas failed; retried each second');
  }

  /** Runs one poll of the other nodes' deltas now (tests; the timer does it every second). */
  syncPeers(): Promise<void> {
    return this.pollPeers();
  }

  /**
   * One INSERT per signal, at once. When one fails every attempt after another succeeded, the
   * stored signals' rows are delivered as committed and the append rejects with
   * PartialAppendError naming the batches that were stored whole: the writer acknowledges those
   * requests (an OTLP request carries one signal) and refuses only the rest, whose senders' retries
   * then store nothing twice.
   */
  async append(batches: TelemetryBatches[]): Promise<void> {
    const spans = batches.map((b) => b.spans).filter((b): b is SpanBatch => !!b && b.length > 0).map((b) => this.storable(b));
    const logs = batches.map((b) => b.logs).filter((b): b is LogBatch => !!b && b.length > 0);
    const metricBatches = batches.map((b) => b.metrics).filter((b): b is MetricBatch => !!b && b.length > 0);
    const sql = this.db;
    const seq = Math.max(this.lastSeq + 1, this.nowUs());
    this.lastSeq = seq;
    this.appending.add(seq);
    try {
      const token = `${this.nodeId}:${seq}`;
      const failed = new Map<Signal, AppError>();
      const inserts: Array<Promise<void>> = [];
      const send = (signal: Signal, query: string, body: Buffer[] | undefined): void => {
        if (body) inserts.push(this.insert(sql, query, body, `${token}:${signal}`).catch((e: unknown) => { failed.set(signal, e as AppError); }));
      };
      send('spans', SPAN_INSERT, rowBinary(spans, writeSpanRows, seq, this.nodeId));
      send('logs', LOG_INSERT, rowBinary(logs, writeLogRows, seq, this.nodeId));
      send('metrics', METRIC_INSERT, rowBinary(metricBatches, writeMetricRows, seq, this.nodeId));
      if (inserts.length === 0) return;
      await Promise.all(inserts);
      const ok = (signal: Signal): boolean => !failed.has(signal);
      if (failed.size < inserts.length) this.stored(ok('spans') ? spans.filter((b) => b.length > 0) : [], ok('logs') ? logs : [], ok('metrics') ? metricBatches : [], seq);
      if (failed.size === 0) return;
      const first = [...failed.values()][0];
      const stored = batches.map((b) => (!b.spans?.length || ok('spans')) && (!b.logs?.length || ok('logs')) && (!b.metrics?.length || ok('metrics')));
      throw stored.some(Boolean) ? new PartialAppendError(stored, first) : first;
    } finally {
      this.appending.delete(seq);
    }
  }

  /** One INSERT, retried with the same deduplication token when it fails. */
  private async insert(sql: ChSql, query: string, body: Buffer[], token: string): Promise<void> {
    const attempts = Math.max(1, this.opts.insertAttempts ?? 3);
    for (let i = 1; ; i++) {
      try {
        // On a cluster the input views write Distributed tables: the INSERT returns once the shards have the rows.
        await sql.insert(query, body, token, this.opts.cluster === undefined ? {} : { distributed_foreground_insert: 1 });
        return;
      } catch (err) {
        if (i >= attempts) {
          metrics.inc('tightloop_clickhouse_insert_failures_total', 'ClickHouse INSERTs that failed every attempt (the append was refused with 503).');
          this.opts.log?.error({ err, token }, 'telemetry: ClickHouse INSERT failed on every attempt; the request is refused (503) for its sender to retry');
          // Nothing of it is acknowledged; 503 + Retry-After is what OTLP senders retry.
          throw apiError('telemetry_unavailable', `telemetry store unavailable: ${err instanceof Error ? err.message : String(err)}`, { retryAfterS: 1, cause: err });
        }
        metrics.inc('tightloop_clickhouse_insert_retries_total', 'ClickHouse INSERTs retried (same deduplication token).');
        this.opts.log?.warn({ err, token, attempt: i }, 'telemetry: ClickHouse INSERT failed; retrying with the same deduplication token');
        await new Promise((r) => setTimeout(r, 100 * i));
      }
    }
  }

  /** The spans of a batch whose start lies in the stored range (1970 … 2106) with a storable duration; the rest dropped, logged and counted. */
  private storable(b: SpanBatch): SpanBatch {
    const bad: number[] = [];
    for (let i = 0; i < b.length; i++) {
      const s = b.startUs[i], d = b.durationNs[i];
      if (!(Number.isFinite(s) && s >= MIN_TIME_US && s < MAX_TIME_US && Number.isFinite(d) && Math.abs(d) < 2 ** 62)) bad.push(i);
    }
    if (bad.length === 0) return b;
    this.spansDroppedOutOfRange += bad.length;
    metrics.inc('tightloop_telemetry_spans_dropped_total', 'Spans not stored (start or duration out of range).', { reason: 'out_of_range' }, bad.length);
    this.opts.log?.warn({ dropped: bad.length, total: this.spansDroppedOutOfRange }, 'telemetry: spans with a start or duration ClickHouse cannot store were dropped');
    const skip = new Set(bad);
    const out = emptySpanBatch();
    for (const k of Object.keys(out) as Array<keyof SpanBatch>) {
      if (k === 'length') continue;
      (out[k] as unknown[]) = (b[k] as unknown[]).filter((_, i) => !skip.has(i));
    }
    out.length = b.length - bad.length;
    return out;
  }

  /** Rows just committed: this node's rollup deltas, onRollup's buffer, batch listeners. */
  private stored(spans: SpanBatch[], logs: LogBatch[], metricBatches: MetricBatch[], seq: number): void {
    const deltas: RollupSecond[] | undefined = this.committedListeners.size > 0 ? [] : undefined;
    for (const b of spans) {
      const perSecond = this.local.add(b);
      if (deltas) deltasOf(perSecond, deltas);
    }
    if (deltas && deltas.length > 0) {
      for (const l of this.committedListeners) {
        try { l(deltas); } catch (err) { this.listenerFailed('committed_rollups', err); }
      }
    }
    if (this.batchListeners.size > 0) {
      const c: CommittedBatches = { spans, logs, metrics: metricBatches, seq, settledThroughSeq: this.settledThrough(seq) };
      for (const l of this.batchListeners) {
        try { l(c); } catch (err) { this.listenerFailed('committed_batches', err); }
      }
    }
  }

  private listenerFailed(listener: string, err: unknown): void {
    metrics.inc('tightloop_telemetry_listener_failures_total', 'Telemetry subscribers (detectors) that threw on a delivery.', { listener });
    this.opts.log?.error({ err, listener }, 'telemetry: a subscriber failed on a delivery; ingest goes on');
  }

  private settledThrough(seq: number): number {
    let low = this.lastSeq;
    for (const s of this.appending) if (s !== seq && s <= low) low = s - 1;
    return low;
  }

  /** Ingest time up to which every append of this node has settled. */
  get settledThroughSeq(): number {
    return this.settledThrough(Number.NaN);
  }

  /** Hands this node's closed seconds (all of them when `all`) to onRollup listeners. */
  private emitClosedSeconds(all: boolean): void {
    const below = all ? Infinity : Math.floor((this.nowUs() - (this.opts.secondGraceMs ?? 2000) * 1000) / US);
    const rows = this.local.take(below, Infinity);
    this.local.committed();
    const flushed = rows.seconds.filter((r) => !r.allOperations).map(rollupSecondOf);
    if (flushed.length === 0) return;
    for (const l of this.listeners) {
      try { l(flushed); } catch (err) { this.listenerFailed('flushed_rollups', err); }
    }
  }

  /** Rollups are written by the engine in each INSERT; this only hands open seconds to onRollup listeners. */
  flush(): Promise<void> {
    this.emitClosedSeconds(true);
    return Promise.resolve();
  }

  onRollup(listener: RollupListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  onCommittedRollups(listener: CommittedRollupListener): () => void {
    this.committedListeners.add(listener);
    return () => { this.committedListeners.delete(listener); };
  }

  onCommittedBatches(listener: (c: CommittedBatches) => void): () => void {
    this.batchListeners.add(listener);
    return () => { this.batchListeners.delete(listener); };
  }

  /** This node's spans ingested after `seq` carrying an event named `eventName`, oldest first. */
  async spansWithEventSince(seq: number, eventName: string): Promise<SpanBatch> {
    const rows = await this.db.rows(`SELECT trace_id, span_id, name, toUnixTimestamp64Micro(start) AS start_us, service, version, environment, events
      FROM spans WHERE node = {node:String} AND ingested > fromUnixTimestamp64Micro({seq:Int64}, 'UTC') AND position(events, {pattern:String}) > 0
      ORDER BY ingested`, { node: this.nodeId, seq, pattern: `"name":${JSON.stringify(eventName)}` });
    const b = emptySpanBatch();
    for (const r of rows) {
      b.traceId.push(str(r.trace_id));
      b.spanId.push(str(r.span_id));
      b.name.push(str(r.name));
      b.startUs.push(num(r.start_us));
      b.service.push(str(r.service));
      b.version.push(str(r.version));
      b.environment.push(str(r.environment));
      b.events.push(str(r.events));
    }
    b.length = rows.length;
    return b;
  }

  getTrace(traceId: string): Promise<SpanRow[]> {
    return getTrace(this.db, traceId);
  }

  searchTraces(q: TraceQuery): Promise<TraceSummary[]> {
    return searchTraces(this.db, q);
  }

  searchLogs(q: LogQuery): Promise<LogRow[]> {
    return searchLogs(this.db, q);
  }

  logVolume(q: LogVolumeQuery): Promise<LogVolumeBucket[]> {
    return logVolume(this.db, q);
  }

  red(q: RedQuery): Promise<RedBucket[]> {
    return red(this.db, q);
  }

  services(fromUs: number, toUs: number): Promise<ServiceSummary[]> {
    return services(this.db, fromUs, toUs);
  }

  async operationRollups(level: 'second' | 'minute', fromUs: number, toUs: number, limit: number): Promise<RollupSecond[]> {
    return (await operationRollups(this.db, level, fromUs, toUs, limit)).map(rollupSecondOf);
  }

  queryMetric(q: MetricQuery): Promise<MetricSeries[]> {
    return queryMetric(this.db, q);
  }

  /**
   * Drops the day partitions before cutoff's UTC day (rollups and the trace-id table go with the
   * spans); returns the raw rows removed. Partitions are dropped by name, so rows inserted meanwhile
   * into later days are never touched.
   */
  async dropBefore(signal: Signal, cutoffUs: number): Promise<number> {
    const sql = this.db;
    const dayS = Math.floor(cutoffUs / DAY_US) * 86_400;
    const tables = signal === 'spans' ? ['spans', 'rollup_second', 'rollup_minute', 'trace_times'] : [signal === 'logs' ? 'logs' : 'metric_points'];
    let removed = 0;
    // On a cluster: the `_local` tables, one replica per shard (`cluster()`) for the partitions and counts.
    const partsOf = this.opts.cluster === undefined ? 'system.parts' : `cluster('${this.opts.cluster}', system.parts)`;
    for (const table of tables) {
      const parts = await sql.rows(`SELECT partition_id, sum(rows) AS n FROM ${partsOf}
        WHERE database = currentDatabase() AND table = {table:String} AND active
          AND toDate(partition) < toDate(toDateTime({day:Int64}, 'UTC')) GROUP BY partition_id`, { table: this.layout.local(table), day: dayS });
      for (const p of parts) {
        const pid = str(p.partition_id);
        if (!/^[0-9a-f]+$/.test(pid)) throw new Error(`telemetry: unexpected ClickHouse partition id ${JSON.stringify(pid)} in ${table}`);
        await sql.command(`ALTER TABLE ${this.layout.local(table)}${this.layout.on === '' ? '' : ` ${this.layout.on}`} DROP PARTITION ID '${pid}'`);
        if (table === tables[0]) removed += num(p.n);
      }
    }
    if (signal === 'spans') this.local.forgetBefore(dayS * US);
    return removed;
  }

  async close(): Promise<void> {
    if (!this.sql) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.emitClosedSeconds(true);
    const sql = this.sql;
    this.sql = undefined;
    await sql.close();
  }
}
