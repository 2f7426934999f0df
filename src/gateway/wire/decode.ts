import { ProtocolViolation } from './errors.js';

/**
 * Readers for the message bodies the gateway must understand (everything else is relayed as
 * opaque bytes). Each takes the body only — the bytes after the type and length — and throws
 * ProtocolViolation on malformed input rather than reading past the end.
 */

export function readCString(body: Buffer, off: number): { value: string; next: number } {
  const end = body.indexOf(0, off);
  if (end === -1) throw new ProtocolViolation('unterminated string in message');
  return { value: body.toString('utf8', off, end), next: end + 1 };
}

function need(body: Buffer, off: number, n: number): void {
  if (n < 0 || off + n > body.length) throw new ProtocolViolation('message shorter than its contents');
}

/** An Int16 count; negative counts are malformed, not "none". */
function count(body: Buffer, off: number): number {
  need(body, off, 2);
  const n = body.readInt16BE(off);
  if (n < 0) throw new ProtocolViolation('negative count in message');
  return n;
}

export interface StartupPacket {
  /** Protocol version code, or one of the special request codes (SSL, GSSENC, cancel). */
  code: number;
  params: Map<string, string>;
  /** CancelRequest only. */
  cancelKey?: { pid: number; secret: number };
}

/** Untyped startup-phase packet; `body` excludes the 4-byte length. */
export function decodeStartup(body: Buffer): StartupPacket {
  need(body, 0, 4);
  const code = body.readInt32BE(0);
  const params = new Map<string, string>();
  if (code === 80877102) {
    need(body, 4, 8);
    return { code, params, cancelKey: { pid: body.readInt32BE(4), secret: body.readInt32BE(8) } };
  }
  if (code >> 16 !== 3) return { code, params };
  let off = 4;
  while (off < body.length && body[off] !== 0) {
    const k = readCString(body, off);
    const v = readCString(body, k.next);
    params.set(k.value, v.value);
    off = v.next;
  }
  return { code, params };
}

export interface ParseMessage {
  name: string;
  sql: string;
  paramTypes: number[];
}

export function decodeParse(body: Buffer): ParseMessage {
  const name = readCString(body, 0);
  const sql = readCString(body, name.next);
  let off = sql.next;
  const n = count(body, off);
  off += 2;
  need(body, off, 4 * n);
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(body.readInt32BE(off + 4 * i));
  return { name: name.value, sql: sql.value, paramTypes };
}

export interface BindMessage {
  portal: string;
  statement: string;
  /** As sent: empty = all text, one = applies to all, else one per column. */
  resultFormats: number[];
}

export function decodeBind(body: Buffer): BindMessage {
  const portal = readCString(body, 0);
  const statement = readCString(body, portal.next);
  let off = statement.next;
  const nFormats = count(body, off);
  off += 2 + 2 * nFormats;
  const nParams = count(body, off);
  off += 2;
  for (let i = 0; i < nParams; i++) {
    need(body, off, 4);
    const len = body.readInt32BE(off);
    if (len < -1) throw new ProtocolViolation('invalid parameter length');
    off += 4 + (len > 0 ? len : 0);
  }
  const nResult = count(body, off);
  off += 2;
  need(body, off, 2 * nResult);
  const resultFormats: number[] = [];
  for (let i = 0; i < nResult; i++) resultFormats.push(body.readInt16BE(off + 2 * i));
  return { portal: portal.value, statement: statement.value, resultFormats };
}

/** Describe and Close share a layout: 'S' (statement) or 'P' (portal), then a name. */
export function decodeTarget(body: Buffer): { kind: 'S' | 'P'; name: string } {
  need(body, 0, 1);
  const kind = String.fromCharCode(body.readUInt8(0));
  if (kind !== 'S' && kind !== 'P') throw new ProtocolViolation(`invalid target kind '${kind}'`);
  return { kind, name: readCString(body, 1).value };
}

export function decodeExecute(body: Buffer): { portal: string; maxRows: number } {
  const portal = readCString(body, 0);
  need(body, portal.next, 4);
  return { portal: portal.value, maxRows: body.readInt32BE(portal.next) };
}

export interface FieldDescription {
  name: string;
  tableOid: number;
  column: number;
  typeOid: number;
  format: number;
}

export function decodeRowDescription(body: Buffer): FieldDescription[] {
  const n = count(body, 0);
  const fields: FieldDescription[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const name = readCString(body, off);
    off = name.next;
    need(body, off, 18);
    fields.push({
      name: name.value,
      tableOid: body.readUInt32BE(off),
      column: body.readInt16BE(off + 4),
      typeOid: body.readUInt32BE(off + 6),
      format: body.readInt16BE(off + 16),
    });
    off += 18;
  }
  return fields;
}

/** Error and notice fields by their one-letter code ('C' = SQLSTATE, 'M' = message, ...). */
export function decodeErrorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let off = 0;
  while (off < body.length && body[off] !== 0) {
    const code = String.fromCharCode(body.readUInt8(off));
    const v = readCString(body, off + 1);
    fields.set(code, v.value);
    off = v.next;
  }
  return fields;
}

/** Row count of a CommandComplete tag ("SELECT 5", "INSERT 0 5", "COPY 3"), else 0. */
export function rowsFromTag(body: Buffer): number {
  let end = body.length;
  if (end > 0 && body[end - 1] === 0) end--;
  let start = end;
  while (start > 0 && body.readUInt8(start - 1) >= 0x30 && body.readUInt8(start - 1) <= 0x39) start--;
  if (start === end || start === 0 || body[start - 1] !== 0x20) return 0;
  return Number(body.toString('latin1', start, end));
}

export function commandVerb(body: Buffer): string {
  const sp = body.indexOf(0x20);
  const end = sp === -1 ? body.length - 1 : sp;
  return body.toString('latin1', 0, Math.max(0, end));
}

export interface CopyResponse {
  /** 0 text (text or CSV), 1 binary. */
  format: number;
  columnFormats: number[];
}

export function decodeCopyResponse(body: Buffer): CopyResponse {
  need(body, 0, 1);
  const n = count(body, 1);
  need(body, 3, 2 * n);
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(body.readInt16BE(3 + 2 * i));
  return { format: body.readUInt8(0), columnFormats };
}

/** SASLInitialResponse: mechanism name, then Int32 length (-1 = none) and data. */
export function decodeSaslInitial(body: Buffer): { mechanism: string; data: Buffer } {
  const mech = readCString(body, 0);
  need(body, mech.next, 4);
  const len = body.readInt32BE(mech.next);
  const start = mech.next + 4;
  if (len < 0) return { mechanism: mech.value, data: Buffer.alloc(0) };
  need(body, start, len);
  return { mechanism: mech.value, data: body.subarray(start, start + len) };
}

/** What the audit keeps of a Bind's parameter values: all of them (audit-text.ts). */
export interface BoundParameters {
  /** Text-format values as text, binary ones as `\x` hex, NULL as null; every one, whole. */
  values: (string | null)[];
  /** How many parameters the Bind carried (= `values.length`). */
  count: number;
}

/**
 * The parameter values of a Bind, for the audit: every value, whole (the Bind message's size
 * limit bounds them; a value the audit cut could hide what a statement tests: attack round 8).
 * Formats as the protocol defines them: no format codes means text, one applies to all, else
 * one per parameter.
 */
export function bindParameters(body: Buffer): BoundParameters {
  const portal = readCString(body, 0);
  const statement = readCString(body, portal.next);
  let off = statement.next;
  const nFormats = count(body, off);
  need(body, off + 2, 2 * nFormats);
  const formats: number[] = [];
  for (let i = 0; i < nFormats; i++) formats.push(body.readInt16BE(off + 2 + 2 * i));
  off += 2 + 2 * nFormats;
  const nParams = count(body, off);
  off += 2;
  const values: (string | null)[] = [];
  for (let i = 0; i < nParams; i++) {
    need(body, off, 4);
    const len = body.readInt32BE(off);
    off += 4;
    if (len > 0) need(body, off, len);
    const binary = (nFormats === 1 ? formats[0] : nFormats === 0 ? 0 : formats[i]) === 1;
    if (len < 0) values.push(null);
    else if (binary) values.push(`\\x${body.toString('hex', off, off + len)}`);
    else values.push(body.toString('utf8', off, off + len));
    off += len > 0 ? len : 0;
  }
  return { values, count: nParams };
}
