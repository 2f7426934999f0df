/**
 * One group commit of error events: grouping, payload compression, and ONE state-database
 * transaction that inserts the events and folds them into their groups. Shared by the two
 * committers (commit-worker.ts on its own SQLite connection, or in-thread on the server's
 * Kysely), so both store exactly the same rows.
 */
import { deflate, deflateSync, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import type { ErrorEventStore, EventToStore } from './event-store.js';
import { groupEvent } from './grouping.js';
import type { BatchOutcome, GroupStore, GroupedEvent } from './groups.js';
import type { ErrorEvent } from './model.js';

/** What a committer needs per event: the event and its project's grouping version. */
export interface EventToCommit {
  event: ErrorEvent;
  groupingVersion: number;
}

/**
 * Groups, stores and counts a batch in one durable transaction; resolves after the commit.
 * `otelSpanSeq`, when given, is written in the same transaction (errors_meta, see otel-feed.ts).
 */
export interface BatchCommitter {
  commit(items: EventToCommit[], receivedUs: number, otelSpanSeq?: number): Promise<BatchOutcome>;
  close(): Promise<void>;
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

/** The payload as stored: the sender's own compression when usable, else deflate level 1. */
export function storedPayloadSync(e: ErrorEvent): EventToStore['payload'] {
  if (e.compressed !== undefined) return e.compressed;
  return { encoding: 'deflate-json', bytes: deflateSync(e.payload, deflateOptions(e.payload.length)) };
}

/** As storedPayloadSync, on libuv's thread pool (for the in-thread committer). */
export async function storedPayload(e: ErrorEvent): Promise<EventToStore['payload']> {
  if (e.compressed !== undefined) return e.compressed;
  return { encoding: 'deflate-json', bytes: await deflateAsync(e.payload, deflateOptions(e.payload.length)) };
}

/** Groups `items` and writes them with their payloads in one transaction. */
export async function commitBatch(
  groups: GroupStore, eventStore: ErrorEventStore, items: EventToCommit[], payloads: EventToStore['payload'][], receivedUs: number,
  otelSpanSeq?: number,
): Promise<BatchOutcome> {
  const grouped: GroupedEvent[] = [];
  const rows: EventToStore[] = [];
  for (let i = 0; i < items.length; i++) {
    const { event, groupingVersion } = items[i];
    const grouping = groupEvent(event, groupingVersion);
    grouped.push({ event, grouping });
    rows.push({ event, groupId: grouping.groupId, title: grouping.title, receivedUs, payload: payloads[i] });
  }
  return groups.applyBatch(grouped, async (tx) => {
    await eventStore.insert(tx, rows);
    if (otelSpanSeq !== undefined) {
      await tx.insertInto('errors_meta').values({ key: OTEL_SPAN_SEQ, value: otelSpanSeq })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: otelSpanSeq })).execute();
    }
  });
}

/** errors_meta key of the OTel span watermark. */
export const OTEL_SPAN_SEQ = 'otel_span_seq';

/** Commits on the server's own state connection (PostgreSQL, or when no worker can run). */
export class InThreadCommitter implements BatchCommitter {
  constructor(private readonly groups: GroupStore, private readonly eventStore: ErrorEventStore) {}

  async commit(items: EventToCommit[], receivedUs: number, otelSpanSeq?: number): Promise<BatchOutcome> {
    const payloads = await Promise.all(items.map((it) => storedPayload(it.event)));
    return commitBatch(this.groups, this.eventStore, items, payloads, receivedUs, otelSpanSeq);
  }

  async close(): Promise<void> { /* the state store is closed by its owner */ }
}
