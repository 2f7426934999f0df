/**
 * IngestLog: tightloop's own write-ahead log for telemetry, in front of DuckDB.
 *
 * Why: a request used to be acknowledged after its group's DuckDB COMMIT. DuckDB then wrote
 * every row twice (its WAL, then compressed at checkpoint) and groups of ~20 k rows kept
 * rewriting half-full row groups. With this log an acknowledgement needs only an append of the
 * request's bytes and one fdatasync; the rows reach DuckDB later in transactions of a whole row
 * group or more, which DuckDB writes compressed straight into the database file (no WAL copy).
 *
 * Layout: `<dir>/<16 hex digits>.log` segments, named by the log sequence number (LSN, a global
 * byte offset) of their first byte. A record is a 24-byte header — payload length (u32 LE),
 * CRC-32 of the rest of the header and the payload (u32 LE), kind (u8), format (u8), 6 bytes zero,
 * ingest time in µs (f64 LE) — then the payload. Writes are serialised: one group is written
 * and fdatasync'ed before the next starts, so an acknowledged record never follows a torn one:
 * on open, the first record that fails its length or CRC check starts the torn tail, which is
 * cut off. The consumer records the LSN it has loaded (in the same transaction as the rows) and
 * calls release() so whole segments below it are deleted.
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { fdatasync, ftruncate, writev } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const HEADER_BYTES = 24;
/** By default a new segment starts once the active one holds this many bytes. */
const SEGMENT_BYTES = 64 * 1024 * 1024;

export interface LogRecordIn {
  kind: number;
  format: number;
  payload: Uint8Array;
}

export interface LogRecord extends LogRecordIn {
  seq: number;
  /** LSN of the record's first byte and of the byte after it. */
  start: number;
  end: number;
}

interface Segment {
  start: number;
  path: string;
}

const NAME = /^([0-9a-f]{16})\.log$/;

export class IngestLog {
  private segments: Segment[] = [];
  private fd = -1;
  /** LSN of the next byte to write; where the active segment starts. */
  private endLsn = 0;
  private activeStart = 0;
  private broken: Error | undefined;

  constructor(readonly dir: string, private readonly segmentBytes = SEGMENT_BYTES) {}

  /**
   * Opens the log and returns every intact record at or after `fromLsn`, oldest first. A torn
   * tail (a crash during a write that was never acknowledged) is truncated away.
   */
  open(fromLsn: number): LogRecord[] {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.segments = readdirSync(this.dir)
      .map((f) => NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ start: parseInt(m[1], 16), path: join(this.dir, m[0]) }))
      .sort((a, b) => a.start - b.start);
    const out: LogRecord[] = [];
    for (let s = 0; s < this.segments.length; s++) {
      const seg = this.segments[s];
      const next = this.segments[s + 1]?.start;
      if (next !== undefined && next <= fromLsn) continue; // wholly loaded: release() will delete it
      const buf = readFileSync(seg.path);
      const valid = parseRecords(buf, seg.start, fromLsn, out);
      if (valid < buf.length) {
        if (next !== undefined) {
          throw new Error(`ingest log ${seg.path} is damaged at byte ${valid} (LSN ${seg.start + valid}) although later segments exist; move the directory aside to start without it`);
        }
        const fd = openSync(seg.path, 'r+');
        try { ftruncateSync(fd, valid); fsyncSync(fd); } finally { closeSync(fd); }
      }
      if (next === undefined) this.endLsn = seg.start + valid;
    }
    if (this.segments.length === 0 || this.endLsn < fromLsn) {
      // No log yet (or one that ends before what DuckDB holds): new records must sort after it.
      this.endLsn = Math.max(this.endLsn, fromLsn);
      this.newSegment();
    } else {
      const last = this.segments[this.segments.length - 1];
      this.activeStart = last.start;
      this.fd = openSync(last.path, 'a');
    }
    return out;
  }

  /** The intact records starting at or after `fromLsn` and ending at or before `toLsn`. */
  read(fromLsn: number, toLsn: number): LogRecord[] {
    const out: LogRecord[] = [];
    for (let s = 0; s < this.segments.length; s++) {
      const seg = this.segments[s];
      const next = this.segments[s + 1]?.start;
      if ((next !== undefined && next <= fromLsn) || seg.start >= toLsn) continue;
      parseRecords(readFileSync(seg.path), seg.start, fromLsn, out);
    }
    return out.filter((r) => r.end <= toLsn);
  }

  /** LSN after the last record written. */
  get lsn(): number {
    return this.endLsn;
  }

  /**
   * Writes the records as one group and makes them durable; resolves with the LSN after them.
   * Callers must not start the next append before this one settles (the store serialises them).
   */
  async append(records: readonly LogRecordIn[], seq: number): Promise<number> {
    if (this.broken) throw this.broken;
    if (this.endLsn - this.activeStart >= this.segmentBytes) this.newSegment();
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (const r of records) {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32LE(r.payload.length, 0);
      h.writeUInt8(r.kind, 8);
      h.writeUInt8(r.format, 9);
      h.writeDoubleLE(seq, 16);
      h.writeUInt32LE(crc32(r.payload, crc32(h.subarray(8))), 4);
      parts.push(h, r.payload);
      bytes += HEADER_BYTES + r.payload.length;
    }
    const fd = this.fd;
    const before = this.endLsn - this.activeStart;
    try {
      await writeAll(fd, parts, bytes);
      await new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));
    } catch (e) {
      // Cut the group off again so later records do not follow a hole; if even that fails, stop
      // taking writes (the records before are intact, a restart recovers them).
      await new Promise<void>((res) => ftruncate(fd, before, (te) => {
        if (te) this.broken = new Error(`ingest log unusable after a failed write: ${(e as Error).message}`, { cause: e });
        res();
      }));
      throw e;
    }
    this.endLsn += bytes;
    return this.endLsn;
  }

  /** Deletes segments wholly below `loadedLsn` (never the active one). */
  release(loadedLsn: number): void {
    while (this.segments.length > 1 && this.segments[1].start <= loadedLsn) {
      const seg = this.segments.shift()!;
      try { unlinkSync(seg.path); } catch { /* already gone */ }
    }
  }

  close(): void {
    if (this.fd !== -1) closeSync(this.fd);
    this.fd = -1;
  }

  private newSegment(): void {
    if (this.fd !== -1) {
      fdatasyncSync(this.fd);
      closeSync(this.fd);
    }
    const path = join(this.dir, `${this.endLsn.toString(16).padStart(16, '0')}.log`);
    this.fd = openSync(path, 'a', 0o600);
    this.activeStart = this.endLsn;
    this.segments.push({ start: this.endLsn, path });
    // The new name must survive a crash too.
    const dfd = openSync(this.dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  }
}

/** Parses records from `buf` (a segment starting at LSN `base`); returns the intact length. */
function parseRecords(buf: Buffer, base: number, fromLsn: number, out: LogRecord[]): number {
  let at = 0;
  while (at + HEADER_BYTES <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (at + HEADER_BYTES + len > buf.length) break;
    const payload = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len);
    if (crc32(payload, crc32(buf.subarray(at + 8, at + HEADER_BYTES))) !== buf.readUInt32LE(at + 4)) break;
    const start = base + at;
    if (start >= fromLsn) {
      out.push({ kind: buf[at + 8], format: buf[at + 9], seq: buf.readDoubleLE(at + 16), payload, start, end: start + HEADER_BYTES + len });
    }
    at += HEADER_BYTES + len;
  }
  return at;
}

/** Appends every part (the fd is in append mode), repeating short writes. */
async function writeAll(fd: number, parts: Uint8Array[], bytes: number): Promise<void> {
  let rest = parts;
  let left = bytes;
  while (left > 0) {
    const n = await new Promise<number>((res, rej) => writev(fd, rest as NodeJS.ArrayBufferView[], (e, written) => (e ? rej(e) : res(written))));
    left -= n;
    if (left === 0) return;
    // Drop what was written; keep the rest of a partly written part.
    let skip = n;
    const next: Uint8Array[] = [];
    for (const p of rest) {
      if (skip >= p.length) { skip -= p.length; continue; }
      next.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    rest = next;
  }
}
