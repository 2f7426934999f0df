/**
 * Builders for the protocol messages the gateway itself originates: towards clients (it plays
 * the server during startup and for errors) and towards upstream servers (it plays the client).
 * Formats from the PostgreSQL "Message Formats" chapter.
 */

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** One typed message: `type`, Int32 length, then the body parts. */
export function frame(type: string, ...parts: Buffer[]): Buffer {
  let bodyLen = 0;
  for (const p of parts) bodyLen += p.length;
  const out = Buffer.allocUnsafe(5 + bodyLen);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + bodyLen, 1);
  let off = 5;
  for (const p of parts) {
    p.copy(out, off);
    off += p.length;
  }
  return out;
}

export function cstr(s: string): Buffer {
  const b = Buffer.from(s + '\0', 'utf8');
  return b;
}

export function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

export function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n, 0);
  return b;
}

// ---- gateway → client -------------------------------------------------------------------

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'WARNING' | 'NOTICE';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fieldList(f: ErrorFields): Buffer {
  const parts = [`S${f.severity}`, `V${f.severity}`, `C${f.code}`, `M${f.message}`];
  if (f.detail !== undefined) parts.push(`D${f.detail}`);
  if (f.hint !== undefined) parts.push(`H${f.hint}`);
  return Buffer.from(parts.map((p) => p + '\0').join('') + '\0', 'utf8');
}

export function errorResponse(f: ErrorFields): Buffer {
  return frame('E', fieldList(f));
}

export function noticeResponse(f: ErrorFields): Buffer {
  return frame('N', fieldList(f));
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return frame('Z', Buffer.from(status, 'latin1'));
}

export function authRequest(code: number, data?: Buffer): Buffer {
  return data === undefined ? frame('R', int32(code)) : frame('R', int32(code), data);
}

export const AUTH_OK = 0;
export const AUTH_CLEARTEXT = 3;
export const AUTH_MD5 = 5;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

export function authSasl(mechanisms: string[]): Buffer {
  return authRequest(AUTH_SASL, Buffer.from(mechanisms.map((m) => m + '\0').join('') + '\0', 'utf8'));
}

export function parameterStatus(name: string, value: string): Buffer {
  return frame('S', cstr(name), cstr(value));
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return frame('K', int32(pid), int32(secret));
}

/** Tells a client asking for a newer minor version or `_pq_` options what we speak. */
export function negotiateProtocolVersion(minor: number, unsupported: string[]): Buffer {
  return frame('v', int32(minor), int32(unsupported.length), ...unsupported.map(cstr));
}

// ---- gateway → upstream server ----------------------------------------------------------

export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.from(
    Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0',
    'utf8',
  );
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(out, 8);
  return out;
}

export function sslRequest(): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(SSL_REQUEST_CODE, 4);
  return b;
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  b.writeInt32BE(pid, 8);
  b.writeInt32BE(secret, 12);
  return b;
}

export function passwordMessage(password: string): Buffer {
  return frame('p', cstr(password));
}

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return frame('p', cstr(mechanism), int32(data.length), data);
}

export function saslResponse(data: Buffer): Buffer {
  return frame('p', data);
}

export function queryMessage(sql: string): Buffer {
  return frame('Q', cstr(sql));
}

export function parseMessage(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  return frame('P', cstr(name), cstr(sql), int16(paramTypes.length), ...paramTypes.map(int32));
}

export function describeMessage(kind: 'S' | 'P', name: string): Buffer {
  return frame('D', Buffer.from(kind, 'latin1'), cstr(name));
}

export const TERMINATE = frame('X');
export const SYNC = frame('S');
