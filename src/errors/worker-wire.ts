/**
 * The commit worker's messages in a compact form. Structured clone costs per object and per
 * string, not per byte: an outcome with ~240 per-group × release × environment counts as
 * objects took ~0.65 ms to clone. Here a batch's raw items travel as bytes in one shared buffer
 * with their numbers in one Float64Array, and the counts as a string table plus one Float64Array.
 */
import type { CommitOutcome, EventToCommit } from './commit.js';
import type { GroupEventCount } from './events.js';
import { isRawSentryEvent, type PayloadEncoding, type RawSentryEvent } from './model.js';

/** Numbers per raw item in CommitRequest.raw.meta. */
const META = 8; // index, offset, raw length, compressed length (-1: none), encoding, project, nowUs, grouping version
const ENCODINGS: readonly PayloadEncoding[] = ['gzip-envelope', 'deflate-json'];

export interface CommitRequest {
  id: number;
  receivedUs: number;
  otelSpanSeq?: number;
  /** How many items the batch has. */
  count: number;
  /** Items that are not raw Sentry events (OTel events, mapped already), with their position. */
  mapped: { index: number; item: EventToCommit }[];
  /** Raw Sentry items: bytes in shared memory (ItemSlab), META numbers each, service and unit apart. */
  raw?: { bytes: SharedArrayBuffer | ArrayBuffer; meta: Float64Array; services: string[]; units: (number | undefined)[] };
}

/**
 * The memory raw items travel in: shared with the worker and reused for every batch. One
 * WorkerCommitter sends a batch only once the worker has written the previous one (see
 * ErrorPipeline), and the worker is done with a batch's bytes once it is written, so each batch
 * can start at offset 0. No buffer is allocated, zero-filled or transferred per batch.
 */
export class ItemSlab {
  private sab: SharedArrayBuffer | undefined;

  take(bytes: number): Uint8Array {
    if (this.sab === undefined || this.sab.byteLength < bytes) this.sab = new SharedArrayBuffer(Math.max(bytes, 4 << 20));
    return new Uint8Array(this.sab, 0, bytes);
  }
}

/** Packs a batch, its raw items' bytes into `slab` (reused: see ItemSlab). */
export function packRequest(slab: ItemSlab, id: number, items: EventToCommit[], receivedUs: number, otelSpanSeq: number | undefined): CommitRequest {
  const req: CommitRequest = { id, receivedUs, otelSpanSeq, count: items.length, mapped: [] };
  let bytes = 0, raws = 0;
  for (const it of items) {
    if (isRawSentryEvent(it.event)) { bytes += it.event.raw.length + (it.event.compressed?.bytes.length ?? 0); raws++; }
  }
  if (raws === 0) {
    for (let i = 0; i < items.length; i++) req.mapped.push({ index: i, item: slim(items[i]) });
    return req;
  }
  const buf = slab.take(bytes);
  const meta = new Float64Array(raws * META);
  const services: string[] = [], units: (number | undefined)[] = [];
  let at = 0, m = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i], e = it.event;
    if (!isRawSentryEvent(e)) { req.mapped.push({ index: i, item: slim(it) }); continue; }
    const c = e.compressed;
    meta[m] = i; meta[m + 1] = at; meta[m + 2] = e.raw.length; meta[m + 3] = c === undefined ? -1 : c.bytes.length;
    meta[m + 4] = c === undefined ? -1 : ENCODINGS.indexOf(c.encoding); meta[m + 5] = e.projectId; meta[m + 6] = e.nowUs;
    meta[m + 7] = it.groupingVersion;
    m += META;
    buf.set(e.raw, at);
    at += e.raw.length;
    if (c !== undefined) { buf.set(c.bytes, at); at += c.bytes.length; }
    services.push(e.service);
    units.push(it.unit);
  }
  req.raw = { bytes: buf.buffer, meta, services, units };
  return req;
}

/** An OTel event's 50 KB payload text is not needed where a compressed copy travels with it. */
function slim(it: EventToCommit): EventToCommit {
  const e = it.event;
  return isRawSentryEvent(e) || e.compressed === undefined ? it : { ...it, event: { ...e, payload: '' } };
}

/** The batch again, in its order; raw items as Buffers (views into the one buffer). */
export function unpackRequest(req: CommitRequest): EventToCommit[] {
  const items = new Array<EventToCommit>(req.count);
  for (const { index, item } of req.mapped) items[index] = item;
  const r = req.raw;
  if (r !== undefined) {
    for (let k = 0, m = 0; m < r.meta.length; k++, m += META) {
      const at = r.meta[m + 1], len = r.meta[m + 2], clen = r.meta[m + 3];
      const event: RawSentryEvent = { raw: Buffer.from(r.bytes, at, len), projectId: r.meta[m + 5], service: r.services[k], nowUs: r.meta[m + 6] };
      if (clen >= 0) event.compressed = { encoding: ENCODINGS[r.meta[m + 4]], bytes: Buffer.from(r.bytes, at + len, clen) };
      items[r.meta[m]] = { event, groupingVersion: r.meta[m + 7], unit: r.units[k] };
    }
  }
  return items;
}

/** CommitOutcome with its counts as a string table and numbers. */
export interface PackedOutcome extends Omit<CommitOutcome, 'counts'> {
  /** groupId, service, title per count group; release and environment per count; see packOutcome. */
  countStrings?: string[];
  /** Per count: index of its group's strings, of its release, of its environment, project, count, lastUs. */
  countNumbers?: Float64Array;
}

export function packOutcome(o: CommitOutcome): PackedOutcome {
  const { counts, ...rest } = o;
  if (counts === undefined || counts.length === 0) return rest;
  const strings: string[] = [];
  const index = new Map<string, number>();
  const intern = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) { i = strings.length; strings.push(s); index.set(s, i); }
    return i;
  };
  const nums = new Float64Array(counts.length * 8);
  for (let i = 0, m = 0; i < counts.length; i++, m += 8) {
    const c = counts[i];
    nums[m] = intern(c.groupId); nums[m + 1] = intern(c.service); nums[m + 2] = intern(c.title);
    nums[m + 3] = intern(c.release); nums[m + 4] = intern(c.environment);
    nums[m + 5] = c.projectId; nums[m + 6] = c.count; nums[m + 7] = c.lastUs;
  }
  return { ...rest, countStrings: strings, countNumbers: nums };
}

export function unpackOutcome(p: PackedOutcome): CommitOutcome {
  const { countStrings: s, countNumbers: n, ...rest } = p;
  if (s === undefined || n === undefined) return rest;
  const counts: GroupEventCount[] = [];
  for (let m = 0; m < n.length; m += 8) {
    counts.push({ groupId: s[n[m]], service: s[n[m + 1]], title: s[n[m + 2]], release: s[n[m + 3]], environment: s[n[m + 4]],
      projectId: n[m + 5], count: n[m + 6], lastUs: n[m + 7] });
  }
  return { ...rest, counts };
}
