/**
 * Sentry envelope parsing (https://develop.sentry.dev/sdk/data-model/envelopes/):
 *
 *     {envelope header JSON}\n
 *     {item header JSON}\n<payload>\n      (payload is `length` bytes when given, else up to \n)
 *     ...
 *
 * Works on bytes, not a decoded string: `length` counts bytes and payloads may be binary
 * (attachments). Every failure is an AppError with a precise 4xx, so one bad envelope answers
 * its sender and never reaches the rest of the server.
 */
import { apiError, AppError } from '../core/app-error.js';

export interface EnvelopeItem {
  type: string;
  header: Record<string, unknown>;
  payload: Buffer;
}

export interface Envelope {
  header: Record<string, unknown>;
  items: EnvelopeItem[];
}

const NL = 0x0a;

function malformed(message: string): AppError {
  return apiError('invalid_envelope', `malformed envelope: ${message}`);
}

function jsonLine(buf: Buffer, start: number, end: number, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8', start, end));
  } catch {
    throw malformed(`${what} at byte ${start} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(`${what} at byte ${start} is not a JSON object`);
  return v as Record<string, unknown>;
}

function lineEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf(NL, from);
  return i === -1 ? buf.length : i;
}

/**
 * Most items in one envelope. SDKs send one event (plus attachments, a client report) or one
 * span container per envelope; 100,000 tiny items would cost seconds and gigabytes to unpack.
 */
export const MAX_ENVELOPE_ITEMS = 1000;

export function parseEnvelope(buf: Buffer, maxItemBytes: number, maxItems = MAX_ENVELOPE_ITEMS): Envelope {
  if (buf.length === 0) throw malformed('empty body');
  let end = lineEnd(buf, 0);
  if (end > 64 * 1024) throw malformed('envelope header is longer than 64 KiB');
  const header = jsonLine(buf, 0, end, 'envelope header');
  const items: EnvelopeItem[] = [];
  let pos = end + 1;
  while (pos < buf.length) {
    end = lineEnd(buf, pos);
    if (end === pos) { pos++; continue; } // tolerate blank lines between items
    if (items.length === maxItems) {
      throw apiError('too_many_items', `envelope holds more than ${maxItems} items; the limit is ${maxItems}`);
    }
    if (end - pos > 64 * 1024) throw malformed(`item header at byte ${pos} is longer than 64 KiB`);
    const itemHeader = jsonLine(buf, pos, end, 'item header');
    const type = itemHeader.type;
    if (typeof type !== 'string' || type === '') throw malformed(`item header at byte ${pos} has no type`);
    pos = end + 1;
    let payload: Buffer;
    const length = itemHeader.length;
    if (length !== undefined) {
      if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) throw malformed(`item '${type}' has an invalid length`);
      if (length > maxItemBytes) throw tooLarge(type, length, maxItemBytes);
      if (pos + length > buf.length) throw malformed(`item '${type}' declares ${length} bytes but only ${Math.max(0, buf.length - pos)} follow`);
      payload = buf.subarray(pos, pos + length);
      pos += length;
      if (pos < buf.length && buf[pos] === NL) pos++;
    } else {
      end = lineEnd(buf, pos);
      if (end - pos > maxItemBytes) throw tooLarge(type, end - pos, maxItemBytes);
      payload = buf.subarray(pos, end);
      pos = end + 1;
    }
    items.push({ type, header: itemHeader, payload });
  }
  return { header, items };
}

function tooLarge(type: string, size: number, max: number): AppError {
  return apiError('item_too_large', `envelope item '${type}' is ${size} bytes; the limit is ${max}`);
}

/** The public key of a DSN (`https://<key>@host/<project>`), or undefined. */
export function keyFromDsn(dsn: unknown): string | undefined {
  if (typeof dsn !== 'string') return undefined;
  try {
    const u = new URL(dsn);
    return u.username === '' ? undefined : decodeURIComponent(u.username);
  } catch { // a DSN that is not a URL carries no key: the caller answers 401
    return undefined;
  }
}

/** `sentry_key` from an `X-Sentry-Auth: Sentry sentry_key=..., sentry_version=7` header. */
export function keyFromAuthHeader(h: string | string[] | undefined): string | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined) return undefined;
  const m = /(?:^|[\s,])sentry_key\s*=\s*([^,\s]+)/.exec(v);
  return m === null ? undefined : m[1];
}
