import { createHash } from 'node:crypto';
import type { BoundParameters } from './wire/decode.js';

/**
 * What the audit records of a statement beside its normalised form (`sql`, constants as `$n`,
 * which groups statements with `fingerprint`): the text exactly as the client sent it, literals
 * included (`text`), and the values bound to its parameters in the extended protocol (`params`).
 * So the audit shows what actually ran — the SQL handed to a function as a string, the pid passed
 * to `pg_terminate_backend`, the id a statement read. Both come from the client; result values
 * never enter the audit. Bounded per record: text to AUDIT_TEXT_CHARS characters, at most
 * AUDIT_PARAMS values of at most AUDIT_PARAM_CHARS characters each (binary values as hex); a cut
 * value ends in `…`, and `textChars` / `paramCount` give the full sizes when something was cut.
 */

export const AUDIT_TEXT_CHARS = 8192;
export const AUDIT_PARAMS = 64;
export const AUDIT_PARAM_CHARS = 1024;

/** A text over AUDIT_TEXT_CHARS keeps this many characters from each end (after comments go). */
const TEXT_END_CHARS = AUDIT_TEXT_CHARS / 2;
/** Constants of a cut text: at most this many, each cut to AUDIT_CONSTANT_CHARS. */
export const AUDIT_CONSTANTS = 256;
export const AUDIT_CONSTANT_CHARS = 64;

export interface AuditedText {
  text: string;
  textChars?: number;
  /** SHA-256 (hex) of the whole text, when `text` is not all of it. */
  textSha256?: string;
  /** When `text` lost its middle: every literal of the statement, in order, each bounded. */
  constants?: string[];
  constantCount?: number;
  params?: (string | null)[];
  paramCount?: number;
}

/**
 * A long text is recorded without its comments and runs of white space (the server ignores them,
 * and a long comment could otherwise push the rest out of the record: attack round 5 #8). Still
 * too long, it keeps its head and tail, and its literals (the ids and positions a statement is
 * about) are listed apart, each bounded, with a hash of the whole text.
 */
export function auditedText(sql: string | undefined, params: BoundParameters | undefined): AuditedText | Record<string, never> {
  if (sql === undefined) return {};
  const out: AuditedText = { text: sql };
  if (sql.length > AUDIT_TEXT_CHARS) {
    out.textChars = sql.length;
    out.textSha256 = createHash('sha256').update(sql).digest('hex');
    const { bare, constants } = lexed(sql);
    if (bare.length <= AUDIT_TEXT_CHARS) out.text = bare;
    else {
      out.text = `${bare.slice(0, TEXT_END_CHARS)}…${bare.slice(bare.length - TEXT_END_CHARS)}`;
      out.constants = constants.slice(0, AUDIT_CONSTANTS);
      if (constants.length > AUDIT_CONSTANTS) out.constantCount = constants.length;
    }
  }
  if (params !== undefined && params.count > 0) {
    out.params = params.values;
    if (params.count > params.values.length) out.paramCount = params.count;
  }
  return out;
}

/**
 * The text without comments, white space collapsed, and its literals (strings and numbers).
 * A scan that ends a comment no later than the server does (block comments are not nested here),
 * so it can only keep more text than the server reads, never less.
 */
function lexed(sql: string): { bare: string; constants: string[] } {
  const parts: string[] = [];
  const constants: string[] = [];
  const constant = (c: string): void => {
    constants.push(c.length > AUDIT_CONSTANT_CHARS ? `${c.slice(0, AUDIT_CONSTANT_CHARS)}…` : c);
  };
  let space = false;
  const push = (t: string): void => {
    if (space && parts.length > 0) parts.push(' ');
    space = false;
    parts.push(t);
  };
  const word = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c === 46 || c > 127;
  const len = sql.length;
  let i = 0;
  while (i < len) {
    const c = sql.charCodeAt(i);
    if (c === 39) {
      const e = i > 0 && (sql.charCodeAt(i - 1) | 32) === 101;
      let j = i + 1;
      while (j < len) {
        const d = sql.charCodeAt(j);
        if (e && d === 92) j += 2;
        else if (d === 39) {
          if (sql.charCodeAt(j + 1) === 39) j += 2;
          else break;
        } else j++;
      }
      const lit = sql.slice(i, Math.min(j + 1, len));
      push(lit);
      constant(lit);
      i = j + 1;
    } else if (c === 34) {
      const end = sql.indexOf('"', i + 1);
      const j = end < 0 ? len : end + 1;
      push(sql.slice(i, j));
      i = j;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? len : end + 1;
      space = true;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? len : end + 2;
      space = true;
    } else if (c === 36 && (i === 0 || !word(sql.charCodeAt(i - 1)))) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66));
      if (m === null) {
        push('$');
        i++;
        continue;
      }
      const end = sql.indexOf(m[0], i + m[0].length);
      const j = end < 0 ? len : end + m[0].length;
      const lit = sql.slice(i, j);
      push(lit);
      constant(lit);
      i = j;
    } else if (word(c)) {
      let j = i;
      while (j < len && word(sql.charCodeAt(j))) j++;
      const w = sql.slice(i, j);
      push(w);
      if (c >= 48 && c <= 57) constant(w);
      i = j;
    } else if (c <= 32) {
      space = true;
      i++;
    } else {
      push(sql[i]);
      i++;
    }
  }
  return { bare: parts.join(''), constants };
}
