/**
 * Test support (excluded from the build): protocol messages a client sends, a reader that
 * collects everything the gateway answers until a marker or the end of the connection, and the
 * check that no raw value of the seeded `customers` table is in it (text, or binary int8).
 */
import type { RawClient } from './harness.conformance.js';
import { decodeErrorFields } from './wire/decode.js';
import { cstr, frame, int16, int32, queryMessage } from './wire/encode.js';

export { describeMessage, parseMessage, queryMessage, SYNC } from './wire/encode.js';

export function bind(portal: string, statement: string, params: readonly (string | null)[] = [], resultFormats: readonly number[] = []): Buffer {
  const values = params.map((p) => (p === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p)])));
  return frame('B', cstr(portal), cstr(statement), int16(0), int16(params.length), ...values, int16(resultFormats.length), ...resultFormats.map(int16));
}

export function execute(portal: string, maxRows = 0): Buffer {
  return frame('E', cstr(portal), int32(maxRows));
}

export function close(kind: 'S' | 'P', name: string): Buffer {
  return frame('C', Buffer.from(kind, 'latin1'), cstr(name));
}

export const FLUSH = frame('H');

export interface Message {
  type: string;
  body: Buffer;
}

/** Raw values of the seeded table, as text and as the bytes of binary int8/float8. */
const RAW_TEXT = ['alice@example.com', 'bob@example.org', '4111 1111 1111 1111', '4111111111111111', '5500-0000-0000-0004', '5500000000000004', '123-45-6789', '078-05-1120', '415 555 2671', '555-0187'];
const RAW_BINARY = [4111111111111111n, 5500000000000004n].flatMap((n) => {
  const i = Buffer.alloc(8);
  i.writeBigInt64BE(n);
  const f = Buffer.alloc(8);
  f.writeDoubleBE(Number(n));
  return [i, f];
});
const RAW = [...RAW_TEXT.map((t) => Buffer.from(t)), ...RAW_BINARY];

/** The raw PII values a message carries (empty when none). */
export function leaks(m: Message): string[] {
  return RAW.filter((r) => m.body.includes(r)).map((r) => (r.length === 8 && !/^[\x20-\x7e]+$/.test(r.toString('latin1')) ? `binary:${r.toString('hex')}` : r.toString()));
}

export interface Collected {
  messages: Message[];
  /** The connection ended (the gateway closed it). */
  ended: boolean;
}

/**
 * Reads until `done(messages)` says so or the connection ends. A hang (no message for
 * `timeoutMs`) throws: the gateway must either answer or end the session.
 */
export async function collect(raw: RawClient, done: (m: Message[]) => boolean, timeoutMs = 10_000): Promise<Collected> {
  const messages: Message[] = [];
  for (;;) {
    let m: Message;
    try {
      m = await raw.next(timeoutMs);
    } catch (err) {
      if ((err as { code?: string }).code === 'timeout') throw new Error(`no answer within ${timeoutMs} ms after: ${messages.map((x) => x.type).join('')}`);
      return { messages, ended: true };
    }
    messages.push(m);
    if (done(messages)) return { messages, ended: false };
  }
}

/** Until the n-th ReadyForQuery. */
export function readyCount(n: number): (m: Message[]) => boolean {
  return (m) => m.filter((x) => x.type === 'Z').length >= n;
}

/** Sends a marker query and reads until its row and ReadyForQuery (or the end of the connection). */
export async function roundTrip(raw: RawClient, msgs: Buffer[], marker: string): Promise<Collected> {
  raw.send(...msgs, queryMessage(`SELECT '${marker}' AS marker`));
  let seen = false;
  return collect(raw, (m) => {
    const last = m[m.length - 1];
    if (last.type === 'D' && last.body.includes(Buffer.from(marker))) seen = true;
    return seen && last.type === 'Z';
  });
}

export function errorsOf(messages: Message[]): Map<string, string>[] {
  return messages.filter((m) => m.type === 'E').map((m) => decodeErrorFields(m.body));
}

/** Text values of a DataRow (binary values as hex). */
export function rowValues(body: Buffer, binary = false): (string | null)[] {
  const n = body.readInt16BE(0);
  const out: (string | null)[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(off);
    off += 4;
    out.push(len < 0 ? null : body.toString(binary ? 'hex' : 'utf8', off, off + len));
    off += Math.max(len, 0);
  }
  return out;
}
