/**
 * ErrorEventStore: error events in the state database (`errors_events`), written in the same
 * transaction as the groups they count towards (see README.md for why not DuckDB). The payload
 * column holds the event compressed: the sender's gzip envelope when it held just this event,
 * else deflate — decompressed only when someone opens the event; payloads shorter than 1,024 characters as they
 * are (`json`: deflate saved little there and cost more than the rest of the commit).
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import type { Transaction } from 'kysely';
import type { Database } from '../state/index.js';
import { parseEnvelope } from './envelope.js';
import type { ErrorEvent, PayloadEncoding } from './model.js';
import type { ErrorsDb, ErrorsEventsTable, ErrorsTables } from './tables.js';

/** An event as the API shows it. */
export interface StoredErrorEvent {
  eventId: string;
  projectId: number;
  groupId: string;
  /** Event time, epoch ms. */
  time: number;
  service: string;
  release: string;
  environment: string;
  level: string;
  traceId: string;
  spanId: string;
  title: string;
  user: unknown;
  tags: unknown;
  request: unknown;
  source: string;
  /** The full event as received (only in single-event reads). */
  payload?: unknown;
}

export interface EventToStore {
  event: ErrorEvent;
  /** The payload, compressed (see ErrorEvent.compressed). */
  payload: { encoding: PayloadEncoding; bytes: Buffer };
  groupId: string;
  title: string;
  receivedUs: number;
}

function parseJson(s: unknown): unknown {
  if (typeof s !== 'string' || s === '') return null;
  try { return JSON.parse(s); } catch { return s; } // not JSON: the text itself is the value
}

/** The stored payload back as the event JSON (single-event reads only, so sync is fine). */
function decodePayload(encoding: string, bytes: Uint8Array): unknown {
  try {
    const buf = Buffer.from(bytes);
    if (encoding === 'gzip-envelope') {
      const item = parseEnvelope(gunzipSync(buf), Number.MAX_SAFE_INTEGER).items.find((i) => i.type === 'event');
      return item === undefined ? null : parseJson(item.payload.toString('utf8'));
    }
    if (encoding === 'json') return parseJson(buf.toString('utf8')); // small payloads are stored as they are
    return parseJson(inflateSync(buf).toString('utf8'));
  } catch { // a payload that does not inflate or parse is shown as no payload; the group and its counts stay
    return null;
  }
}

const LIST_COLUMNS = [
  'event_id', 'project_id', 'group_id', 'time_us', 'service', 'release', 'environment', 'level', 'trace_id', 'span_id',
  'title', 'user_json', 'tags_json', 'request_json', 'source',
] as const;

type ListRow = Pick<ErrorsEventsTable, (typeof LIST_COLUMNS)[number]>;

function toEvent(r: ListRow): StoredErrorEvent {
  return {
    eventId: r.event_id, projectId: Number(r.project_id), groupId: r.group_id, time: Math.floor(Number(r.time_us) / 1000),
    service: r.service, release: r.release, environment: r.environment, level: r.level, traceId: r.trace_id, spanId: r.span_id,
    title: r.title, user: parseJson(r.user_json), tags: parseJson(r.tags_json), request: parseJson(r.request_json), source: r.source,
  };
}

/** The errors_events row of an event (every writer stores exactly this). */
export function eventRow({ event: e, groupId, title, receivedUs, payload }: EventToStore): ErrorsEventsTable {
  return {
    event_id: e.eventId, project_id: e.projectId, group_id: groupId, time_us: e.timeUs, received_us: receivedUs,
    service: e.service, release: e.release, environment: e.environment, level: e.level, trace_id: e.traceId, span_id: e.spanId,
    title, user_json: e.user === null ? '' : JSON.stringify(e.user), tags_json: JSON.stringify(e.tags),
    request_json: e.request === null ? '' : JSON.stringify(e.request), source: e.source,
    payload_encoding: payload.encoding, payload: payload.bytes,
  };
}

export class ErrorEventStore {
  constructor(private readonly db: ErrorsDb) {}

  /** Inserts inside the caller's transaction (the group commit's). */
  async insert(tx: Transaction<Database & ErrorsTables>, rows: EventToStore[]): Promise<void> {
    // 18 parameters a row: 1,000 rows stay under SQLite's 32,766 bound parameters.
    for (let i = 0; i < rows.length; i += 1000) {
      await tx.insertInto('errors_events').values(rows.slice(i, i + 1000).map(eventRow)).execute();
    }
  }

  async byGroup(groupId: string, limit: number, beforeUs?: number): Promise<StoredErrorEvent[]> {
    const rows = await this.db.selectFrom('errors_events').select(LIST_COLUMNS).where('group_id', '=', groupId)
      .where('time_us', '<', beforeUs ?? Number.MAX_SAFE_INTEGER).orderBy('time_us', 'desc').limit(limit).execute();
    return rows.map(toEvent);
  }

  /** The newest event of a group with its full payload (stack trace, request, ...). */
  async latest(groupId: string): Promise<StoredErrorEvent | undefined> {
    const r = await this.db.selectFrom('errors_events').select([...LIST_COLUMNS, 'payload_encoding', 'payload'])
      .where('group_id', '=', groupId).orderBy('time_us', 'desc').limit(1).executeTakeFirst();
    return r === undefined ? undefined : { ...toEvent(r), payload: decodePayload(r.payload_encoding, r.payload) };
  }

  async byTrace(traceId: string): Promise<StoredErrorEvent[]> {
    const rows = await this.db.selectFrom('errors_events').select(LIST_COLUMNS).where('trace_id', '=', traceId)
      .orderBy('time_us').limit(1000).execute();
    return rows.map(toEvent);
  }

  /** Distinct trace ids of a group's recent events. */
  async traceIds(groupId: string, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('errors_events').select('trace_id').select((eb) => eb.fn.max('time_us').as('t'))
      .where('group_id', '=', groupId).where('trace_id', '<>', '').groupBy('trace_id').orderBy('t', 'desc').limit(limit).execute();
    return rows.map((r) => r.trace_id);
  }
}
