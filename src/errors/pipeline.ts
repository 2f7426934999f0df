/**
 * ErrorPipeline: group commit for error events.
 *
 * submit() compresses payloads (see stored()) and queues the events; a commit takes everything
 * queued (up to `maxEvents`) and, in ONE state-database transaction, inserts the events and
 * folds them into their groups. Commits run one at a time and at most every `commitIntervalMs`:
 * SQLite's commit fsync runs on the JS thread (better-sqlite3 is synchronous), so it is paid a
 * few times a second rather than per request. submit() resolves after that commit — a Sentry
 * request is acknowledged only once its events are durable and counted. A full queue rejects at
 * once with 429 (the route adds Retry-After and X-Sentry-Rate-Limits).
 */
import { deflate } from 'node:zlib';
import { promisify } from 'node:util';
import { AppError } from '../core/app-error.js';
import type { ErrorEvents } from './events.js';
import type { ErrorEventStore, EventToStore } from './event-store.js';
import { groupEvent } from './grouping.js';
import type { GroupStore, GroupedEvent } from './groups.js';
import type { ErrorEvent } from './model.js';

export interface ErrorPipelineOptions {
  /** Least time between the starts of two commits. Default 50 ms. */
  commitIntervalMs?: number;
  /** Most events in one commit. Default 5,000. */
  maxEvents?: number;
  /** Bytes of (compressed) payloads waiting before submit() answers 429. Default 256 MiB. */
  maxQueuedBytes?: number;
  /** Grouping version of a project (kept per project so groups never split). */
  groupingVersion: (projectId: number) => number;
}

const deflateAsync = promisify(deflate);

/**
 * The payload as stored: the sender's own compression when usable, else deflate level 1 on
 * libuv's thread pool (a 50 KB event shrinks ~8x; storage and WAL bytes follow).
 */
async function stored(e: ErrorEvent): Promise<EventToStore['payload']> {
  if (e.compressed !== undefined) return e.compressed;
  return { encoding: 'deflate-json', bytes: await deflateAsync(e.payload, { level: 1 }) };
}

interface Pending {
  events: ErrorEvent[];
  payloads: EventToStore['payload'][];
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class ErrorPipeline {
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = 0;
  private closed = false;
  private readonly intervalMs: number;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  committedEvents = 0;

  constructor(
    private readonly eventStore: ErrorEventStore,
    private readonly groups: GroupStore,
    private readonly emitter: ErrorEvents,
    private readonly opts: ErrorPipelineOptions,
  ) {
    this.intervalMs = opts.commitIntervalMs ?? 50;
    this.maxEvents = opts.maxEvents ?? 5000;
    this.maxBytes = opts.maxQueuedBytes ?? 256 * 1024 * 1024;
  }

  submit(events: ErrorEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new AppError('unavailable', 503, 'error ingest is closed', { retryAfterS: 1 }));
    let bytes = 0;
    for (const e of events) bytes += (e.compressed?.bytes.length ?? e.payload.length) + 512;
    if (this.queuedBytes > 0 && this.queuedBytes + bytes > this.maxBytes) {
      return Promise.reject(new AppError('overloaded', 429, 'error ingest queue full', { retryAfterS: 1 }));
    }
    this.queuedBytes += bytes;
    return Promise.all(events.map(stored)).then(
      (payloads) => new Promise<void>((resolve, reject) => {
        this.queue.push({ events, payloads, bytes, resolve, reject });
        this.schedule();
      }),
      (err: unknown) => { this.queuedBytes -= bytes; throw err; },
    );
  }

  private schedule(): void {
    if (this.running !== undefined || this.timer !== undefined || this.queue.length === 0) return;
    const wait = this.closed ? 0 : Math.max(0, this.lastStart + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, wait);
  }

  private start(): void {
    if (this.running !== undefined || this.queue.length === 0) return;
    const batch: Pending[] = [];
    let n = 0;
    while (this.queue.length > 0 && (batch.length === 0 || n + this.queue[0].events.length <= this.maxEvents)) {
      const p = this.queue.shift()!;
      batch.push(p);
      n += p.events.length;
    }
    this.lastStart = Date.now();
    this.running = this.commit(batch).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async commit(batch: Pending[]): Promise<void> {
    const receivedUs = Date.now() * 1000;
    const grouped: GroupedEvent[] = [];
    const rows: EventToStore[] = [];
    let outcome;
    try {
      for (const p of batch) {
        for (let i = 0; i < p.events.length; i++) {
          const event = p.events[i];
          const grouping = groupEvent(event, this.opts.groupingVersion(event.projectId));
          grouped.push({ event, grouping });
          rows.push({ event, groupId: grouping.groupId, title: grouping.title, receivedUs, payload: p.payloads[i] });
        }
      }
      outcome = await this.groups.applyBatch(grouped, (tx) => this.eventStore.insert(tx, rows));
    } catch (err) {
      for (const p of batch) { this.queuedBytes -= p.bytes; p.reject(err); }
      return;
    }
    this.committedEvents += rows.length;
    for (const p of batch) { this.queuedBytes -= p.bytes; p.resolve(); }
    for (const g of outcome.newGroups) this.emitter.emit('error.new_group', { group: g });
    for (const g of outcome.regressed) this.emitter.emit('error.regressed', { group: g });
  }

  /** Stops accepting and commits what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running !== undefined || this.queue.length > 0) {
      if (this.running === undefined) this.start();
      await this.running;
    }
  }
}
