/**
 * One group commit of error events: parsing of raw Sentry event items, grouping, payload
 * compression, and ONE state-database
 * transaction that inserts the events and folds them into their groups. Shared by the two
 * committers (commit-worker.ts on its own SQLite connection, or in-thread on the server's
 * Kysely), so both store exactly the same rows.
 */
import { deflate, deflateSync, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import type { Transaction } from 'kysely';
import type { Database } from '../state/index.js';
import type { ErrorEventStore, EventToStore } from './event-store.js';
import { groupEvent } from './grouping.js';
import type { BatchOutcome, GroupStore, GroupedEvent } from './groups.js';
import { AppError } from '../core/app-error.js';
import { isRawSentryEvent, type ErrorEvent, type IncomingEvent } from './model.js';
import { fromRawSentryEvent } from './sentry-event.js';
import type { ErrorsTables } from './tables.js';

/** What a committer needs per event: the event (or Sentry item to parse) and its project's grouping version. */
export interface EventToCommit {
  event: IncomingEvent;
  groupingVersion: number;
  /**
   * The request the event came with: when one raw item of a unit does not parse, none of that
   * unit's events are stored (its request answers 400, as when the route parsed them itself).
   */
  unit?: number;
}

/** A raw item that did not parse: `items[index]`, and the 4xx message for its request. */
export interface RejectedItem { index: number; message: string }

export interface CommitOutcome extends BatchOutcome {
  /** Event id per item ('' for the items not stored because their unit was rejected). */
  eventIds: string[];
  rejected: RejectedItem[];
}

/**
 * Groups, stores and counts a batch in one durable transaction; resolves after the commit is
 * durable. `otelSpanSeq`, when given, is written in the same transaction (errors_meta, see
 * otel-feed.ts). `onWritten`, when the committer calls it, says the transaction is written and
 * only its flush to disk is still running: the next batch may start then (the worker overlaps
 * one batch's fsync with the next batch's work); the promise still resolves only once durable.
 */
export interface BatchCommitter {
  commit(items: EventToCommit[], receivedUs: number, otelSpanSeq?: number, onWritten?: () => void): Promise<CommitOutcome>;
  close(): Promise<void>;
}

/** Where a commit writes its event rows (inside the commit's transaction). */
export interface EventRowWriter {
  insert(tx: Transaction<Database & ErrorsTables>, rows: EventToStore[]): Promise<void>;
}

/** The batch with raw Sentry items parsed; `accepted` are indexes into `items`. */
export interface PreparedBatch {
  events: ErrorEvent[];
  versions: number[];
  eventIds: string[];
  rejected: RejectedItem[];
}

/** Parses the raw Sentry items of a batch; a unit with a bad item is left out whole. */
export function prepareBatch(items: EventToCommit[]): PreparedBatch {
  const parsed = new Array<ErrorEvent | undefined>(items.length);
  const rejected: RejectedItem[] = [];
  let badUnits: Set<number | undefined> | undefined;
  for (let i = 0; i < items.length; i++) {
    const e = items[i].event;
    if (!isRawSentryEvent(e)) { parsed[i] = e; continue; }
    try {
      parsed[i] = fromRawSentryEvent(e);
    } catch (err) {
      rejected.push({ index: i, message: err instanceof AppError ? err.message : String(err) });
      (badUnits ??= new Set()).add(items[i].unit);
    }
  }
  const events: ErrorEvent[] = [];
  const versions: number[] = [];
  const eventIds = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const e = parsed[i];
    if (e === undefined || (badUnits !== undefined && badUnits.has(items[i].unit))) { eventIds[i] = ''; continue; }
    events.push(e);
    versions.push(items[i].groupingVersion);
    eventIds[i] = e.eventId;
  }
  return { events, versions, eventIds, rejected };
}

const deflateAsync = promisify(deflate);

/**
 * zlib options sized to the payload. A default deflate stream allocates and clears ~256 KiB of
 * window and hash state; for the ~0.5 KB OTel exception payloads that setup cost more than the
 * compression (perf: `ZlibContext::InitZlib` → memset page faults were ~12% of the OTLP ingest
 * server's CPU). A window just larger than the input compresses the same; any inflate reads it.
 */
function deflateOptions(bytes: number): ZlibOptions {
  let windowBits = 9;
  while (windowBits < 15 && 1 << windowBits < bytes) windowBits++;
  return { level: 1, windowBits, memLevel: windowBits < 12 ? 2 : 8 };
}

/**
 * Payloads shorter than this are stored as they are (`json`). An OTel span exception's payload
 * is ~300 bytes, which deflate made ~190 for ~17 µs of CPU each: a third of the commit worker's
 * time under OTLP ingest (zlib's per-stream setup, whatever the window), to save ~100 bytes of a
 * row that holds more than that in ids, title and indexes anyway.
 */
export const RAW_PAYLOAD_BELOW = 1024;

/** The payload as stored: the sender's own compression when usable, small ones as they are, else deflate level 1. */
export function storedPayloadSync(e: ErrorEvent): EventToStore['payload'] {
  if (e.compressed !== undefined) return e.compressed;
  if (e.payload.length < RAW_PAYLOAD_BELOW) return { encoding: 'json', bytes: Buffer.from(e.payload, 'utf8') };
  return { encoding: 'deflate-json', bytes: deflateSync(e.payload, deflateOptions(e.payload.length)) };
}

/** As storedPayloadSync, on libuv's thread pool (for the in-thread committer). */
export async function storedPayload(e: ErrorEvent): Promise<EventToStore['payload']> {
  if (e.compressed !== undefined) return e.compressed;
  if (e.payload.length < RAW_PAYLOAD_BELOW) return { encoding: 'json', bytes: Buffer.from(e.payload, 'utf8') };
  return { encoding: 'deflate-json', bytes: await deflateAsync(e.payload, deflateOptions(e.payload.length)) };
}

/** Groups the prepared events and writes them with their payloads in one transaction. */
export async function commitBatch(
  groups: GroupStore, eventStore: EventRowWriter, batch: PreparedBatch, payloads: EventToStore['payload'][], receivedUs: number,
  otelSpanSeq?: number,
): Promise<CommitOutcome> {
  const grouped: GroupedEvent[] = [];
  const rows: EventToStore[] = [];
  for (let i = 0; i < batch.events.length; i++) {
    const event = batch.events[i];
    const grouping = groupEvent(event, batch.versions[i]);
    grouped.push({ event, grouping });
    rows.push({ event, groupId: grouping.groupId, title: grouping.title, receivedUs, payload: payloads[i] });
  }
  const outcome = await groups.applyBatch(grouped, async (tx) => {
    if (rows.length > 0) await eventStore.insert(tx, rows);
    if (otelSpanSeq !== undefined) {
      await tx.insertInto('errors_meta').values({ key: OTEL_SPAN_SEQ, value: otelSpanSeq })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: otelSpanSeq })).execute();
    }
  });
  return { ...outcome, eventIds: batch.eventIds, rejected: batch.rejected };
}

/** errors_meta key of the OTel span watermark. */
export const OTEL_SPAN_SEQ = 'otel_span_seq';

/** Commits on the server's own state connection (PostgreSQL, or when no worker can run). */
export class InThreadCommitter implements BatchCommitter {
  constructor(private readonly groups: GroupStore, private readonly eventStore: ErrorEventStore) {}

  async commit(items: EventToCommit[], receivedUs: number, otelSpanSeq?: number): Promise<CommitOutcome> {
    const batch = prepareBatch(items);
    const payloads = await Promise.all(batch.events.map((e) => storedPayload(e)));
    return commitBatch(this.groups, this.eventStore, batch, payloads, receivedUs, otelSpanSeq);
  }

  async close(): Promise<void> { /* the state store is closed by its owner */ }
}
