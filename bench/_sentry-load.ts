/**
 * Fresh Sentry envelopes for `npm run bench -- errors`, cheap to make (not a benchmark itself).
 *
 * An envelope is built once per template with placeholders of fixed width for the event id (in
 * the envelope header and the event) and the timestamp; a request fills them in anew. Small
 * events go raw (the SDK compresses only above 32 KB). Large ones are gzip-compressed as
 * @sentry/node sends them, without compressing per request: the fixed parts are deflated once,
 * each ending on a byte boundary (sync flush), and the placeholders travel in stored (literal)
 * deflate blocks between them; a request only writes the values into those blocks and computes
 * the CRC-32 of the whole text.
 */
import { crc32, constants, deflateRawSync } from 'node:zlib';

const ID = 'I'.repeat(32);
const TS = 'T'.repeat(24); // 2026-12-07T07:21:27.123Z

interface Slot { kind: 'id' | 'ts'; at: number }

export interface SentryTemplate {
  /** The envelope text with placeholders (uncompressed). */
  text: Buffer;
  slots: Slot[];
  /** For gzip: compressed fixed parts (parts[i] precedes slot i; the last one is final). */
  parts?: Buffer[];
  bytes: number;
}

/** A template of `event` (an object whose `event_id` and `timestamp` are replaced). */
export function makeSentryTemplate(event: Record<string, unknown>, gzip: boolean): SentryTemplate {
  const body = JSON.stringify({ ...event, event_id: ID, timestamp: TS });
  const text = `${JSON.stringify({ event_id: ID, sent_at: TS })}\n${JSON.stringify({ type: 'event', length: Buffer.byteLength(body) })}\n${body}\n`;
  const buf = Buffer.from(text, 'utf8');
  const slots: Slot[] = [];
  for (const [kind, marker] of [['id', ID], ['ts', TS]] as const) {
    for (let at = buf.indexOf(marker); at !== -1; at = buf.indexOf(marker, at + marker.length)) slots.push({ kind, at });
  }
  slots.sort((a, b) => a.at - b.at);
  if (!gzip) return { text: buf, slots, bytes: buf.length };
  const parts: Buffer[] = [];
  let from = 0;
  for (const s of slots) {
    parts.push(deflateRawSync(buf.subarray(from, s.at), { finishFlush: constants.Z_SYNC_FLUSH }));
    from = s.at + (s.kind === 'id' ? ID.length : TS.length);
  }
  parts.push(deflateRawSync(buf.subarray(from), { finishFlush: constants.Z_FINISH }));
  return { text: buf, slots, parts, bytes: buf.length };
}

const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** A fresh envelope from `t` with event id `id` (32 hex) and the current time. */
export function freshEnvelope(t: SentryTemplate, id: string): Buffer {
  const ts = new Date().toISOString();
  const text = Buffer.from(t.text);
  const values = t.slots.map((s) => (s.kind === 'id' ? id : ts));
  t.slots.forEach((s, i) => text.write(values[i], s.at, 'latin1'));
  if (t.parts === undefined) return text;
  const out: Buffer[] = [GZIP_HEADER];
  t.slots.forEach((s, i) => {
    out.push(t.parts![i]);
    const v = values[i];
    const stored = Buffer.alloc(5);
    stored[0] = 0; // BFINAL 0, BTYPE 00 (stored), padded to the byte
    stored.writeUInt16LE(v.length, 1);
    stored.writeUInt16LE(~v.length & 0xffff, 3);
    out.push(stored, Buffer.from(v, 'latin1'));
  });
  out.push(t.parts[t.parts.length - 1]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(text), 0);
  trailer.writeUInt32LE(text.length >>> 0, 4);
  out.push(trailer);
  return Buffer.concat(out);
}
