import { GatewayError } from '../wire/errors.js';

/**
 * Binary result values (Bind result format 1, BINARY cursors). The masker judges a binary value
 * only for the types listed here: it decodes the value to the text the detectors and column
 * rules read, and encodes the masked text back to the same binary type. Types whose text form
 * is not scanned either (booleans, dates and times, uuids, void) pass as they are; any other type in
 * binary is refused, since the masker cannot tell what it holds.
 */

export type BinaryKind = 'int2' | 'int4' | 'int8' | 'oid' | 'float4' | 'float8' | 'numeric' | 'text' | 'jsonb' | 'bytea';

const KINDS = new Map<number, BinaryKind>([
  [21, 'int2'], [23, 'int4'], [20, 'int8'], [26, 'oid'], [700, 'float4'], [701, 'float8'], [1700, 'numeric'],
  // text, varchar, bpchar, name, "char", json, xml, unknown: the binary form is the text itself
  [25, 'text'], [1043, 'text'], [1042, 'text'], [19, 'text'], [18, 'text'], [114, 'text'], [142, 'text'], [705, 'text'],
  [3802, 'jsonb'], [17, 'bytea'],
]);

/** Binary types whose values cannot be masked in text form either (they are never scanned). */
const PASS = new Set([16, 1082, 1083, 1114, 1184, 1186, 1266, 2950, 2278]);

/** Array types whose elements are judged (or pass) like the scalar type: array oid → element oid. */
export const ARRAY_ELEMENTS = new Map<number, number>([
  [1005, 21], [1007, 23], [1016, 20], [1028, 26], [1021, 700], [1022, 701], [1231, 1700], [1009, 25], [1015, 1043],
  [1014, 1042], [1003, 19], [199, 114], [143, 142], [3807, 3802], [1001, 17], [1000, 16], [1182, 1082], [1183, 1083],
  [1115, 1114], [1185, 1184], [1187, 1186], [1270, 1266], [2951, 2950],
]);

/**
 * How a binary column of this type is judged: a kind, 'pass' (left as is), or a refusal for a
 * type the masker cannot read.
 */
export function binaryKind(typeOid: number): BinaryKind | 'pass' {
  const k = KINDS.get(typeOid);
  if (k !== undefined) return k;
  if (PASS.has(typeOid)) return 'pass';
  throw new GatewayError('masking_unsupported', `binary result format for type oid ${typeOid} cannot be masked; request this column in text format`, { fatal: true });
}

export function isNumericKind(k: BinaryKind): boolean {
  return k !== 'text' && k !== 'jsonb' && k !== 'bytea';
}

/** The text of a binary number; undefined for NaN/infinities (no digits to hide) or bad input. */
export function decodeNumber(kind: BinaryKind, b: Buffer, at: number, len: number): string | undefined {
  switch (kind) {
    case 'int2': return len === 2 ? String(b.readInt16BE(at)) : undefined;
    case 'int4': return len === 4 ? String(b.readInt32BE(at)) : undefined;
    case 'oid': return len === 4 ? String(b.readUInt32BE(at)) : undefined;
    case 'int8': return len === 8 ? b.readBigInt64BE(at).toString() : undefined;
    case 'float4': return len === 4 ? floatText(b.readFloatBE(at)) : undefined;
    case 'float8': return len === 8 ? floatText(b.readDoubleBE(at)) : undefined;
    case 'numeric': return decodeNumeric(b, at, len);
    default: return undefined;
  }
}

function floatText(x: number): string | undefined {
  if (!Number.isFinite(x)) return undefined;
  // Integral values as plain digits (a card number cast to float8 is still a card number).
  if (Number.isInteger(x) && Math.abs(x) < 1e21) return BigInt(x).toString();
  return String(x);
}

/** Encodes masked digits back; null when they no longer fit the type (the value becomes NULL). */
export function encodeNumber(kind: BinaryKind, text: string): Buffer | null {
  if (kind === 'float4' || kind === 'float8') {
    const x = Number(text);
    if (!Number.isFinite(x)) return null;
    const out = Buffer.allocUnsafe(kind === 'float4' ? 4 : 8);
    if (kind === 'float4') out.writeFloatBE(x, 0);
    else out.writeDoubleBE(x, 0);
    return out;
  }
  if (kind === 'numeric') return encodeNumeric(text);
  if (!/^-?\d+$/.test(text)) return null;
  const v = BigInt(text);
  const [lo, hi, size] = kind === 'int2' ? [-32768n, 32767n, 2] : kind === 'int4' ? [-2147483648n, 2147483647n, 4] : kind === 'oid' ? [0n, 4294967295n, 4] : [-(2n ** 63n), 2n ** 63n - 1n, 8];
  if (v < lo || v > hi) return null;
  const out = Buffer.allocUnsafe(size);
  if (kind === 'int2') out.writeInt16BE(Number(v), 0);
  else if (kind === 'int4') out.writeInt32BE(Number(v), 0);
  else if (kind === 'oid') out.writeUInt32BE(Number(v), 0);
  else out.writeBigInt64BE(v, 0);
  return out;
}

const NUMERIC_NEG = 0x4000;

/** numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits. */
function decodeNumeric(b: Buffer, at: number, len: number): string | undefined {
  if (len < 8) return undefined;
  const ndigits = b.readInt16BE(at);
  const weight = b.readInt16BE(at + 2);
  const sign = b.readUInt16BE(at + 4);
  const dscale = b.readInt16BE(at + 6);
  if (ndigits < 0 || len !== 8 + 2 * ndigits || dscale < 0 || (sign !== 0 && sign !== NUMERIC_NEG)) return undefined;
  const digit = (i: number): number => (i >= 0 && i < ndigits ? b.readInt16BE(at + 8 + 2 * i) : 0);
  let s = '';
  if (weight < 0) s = '0';
  else for (let i = 0; i <= weight; i++) s += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, '0');
  if (dscale > 0) {
    let frac = '';
    for (let i = weight + 1; frac.length < dscale; i++) frac += String(digit(i)).padStart(4, '0');
    s += `.${frac.slice(0, dscale)}`;
  }
  return sign === NUMERIC_NEG ? `-${s}` : s;
}

function encodeNumeric(text: string): Buffer | null {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (m === null) return null;
  const intPart = m[2].padStart(Math.ceil(m[2].length / 4) * 4, '0');
  const fracText = m[3] ?? '';
  const fracPart = fracText.padEnd(Math.ceil(fracText.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < intPart.length; i += 4) groups.push(Number(intPart.slice(i, i + 4)));
  let weight = groups.length - 1;
  for (let i = 0; i < fracPart.length; i += 4) groups.push(Number(fracPart.slice(i, i + 4)));
  while (groups.length > 0 && groups[0] === 0) {
    groups.shift();
    weight--;
  }
  while (groups.length > 0 && groups[groups.length - 1] === 0) groups.pop();
  const zero = groups.length === 0;
  const out = Buffer.allocUnsafe(8 + 2 * groups.length);
  out.writeInt16BE(groups.length, 0);
  out.writeInt16BE(zero ? 0 : weight, 2);
  out.writeUInt16BE(m[1] === '-' && !zero ? NUMERIC_NEG : 0, 4);
  out.writeInt16BE(fracText.length, 6);
  groups.forEach((g, i) => out.writeInt16BE(g, 8 + 2 * i));
  return out;
}
