import { createHash } from 'node:crypto';
import { serverText } from './server-text.js';
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
 * and a long comment could otherwise push the rest out of the record: attack round 5 #8), as
 * the server's own lexer reads it (server-text.ts; a second, hand-written lexer once recorded a
 * text that was not what ran: attack round 7 F4). Still too long, it keeps its head and tail,
 * and its literals (the ids and positions a statement is about) are listed apart, each bounded,
 * with a hash of the whole text. A text the lexer cannot read loses nothing but its middle.
 */
export function auditedText(sql: string | undefined, params: BoundParameters | undefined): AuditedText | Record<string, never> {
  if (sql === undefined) return {};
  const out: AuditedText = { ...boundedText(sql) };
  if (params !== undefined && params.count > 0) {
    out.params = params.values;
    if (params.count > params.values.length) out.paramCount = params.count;
  }
  return out;
}

/** The bounds of `text` applied to any statement text (without parameters). */
export function boundedText(sql: string): AuditedText {
  const out: AuditedText = { text: sql };
  if (sql.length <= AUDIT_TEXT_CHARS) return out;
  out.textChars = sql.length;
  out.textSha256 = createHash('sha256').update(sql).digest('hex');
  const lexed = serverText(sql, 'collapse');
  const bare = lexed?.text ?? sql;
  if (bare.length <= AUDIT_TEXT_CHARS) out.text = bare;
  else {
    out.text = `${bare.slice(0, TEXT_END_CHARS)}…${bare.slice(bare.length - TEXT_END_CHARS)}`;
    const constants = lexed?.constants ?? [];
    out.constants = constants.slice(0, AUDIT_CONSTANTS).map((c) => (c.length > AUDIT_CONSTANT_CHARS ? `${c.slice(0, AUDIT_CONSTANT_CHARS)}…` : c));
    if (constants.length > AUDIT_CONSTANTS) out.constantCount = constants.length;
  }
  return out;
}

export interface AuditedSql {
  sql: string | null;
  sqlChars?: number;
  sqlSha256?: string;
}

/**
 * The normalised text (`sql`) under the same bounds as `text` (attack round 7 F7: `select 1 /*
 * 1 MB comment *\/` wrote a 1 MB permanent record): over AUDIT_TEXT_CHARS it loses its comments
 * (the server's lexer) and then its middle, with `sqlChars` and `sqlSha256` of the whole.
 */
export function auditedSql(normalized: string | null | undefined): AuditedSql {
  if (normalized === null || normalized === undefined) return { sql: null };
  const b = boundedText(normalized);
  return b.textSha256 === undefined ? { sql: b.text } : { sql: b.text, sqlChars: b.textChars, sqlSha256: b.textSha256 };
}

/**
 * Names and labels a client chooses before it is known (a login's user and database name,
 * application_name): at most AUDIT_NAME_CHARS characters in a record, cut with `…`. The startup
 * packet allows 64 KiB, and a failed login is recorded (attack round 7 F7).
 */
export const AUDIT_NAME_CHARS = 128;

export function auditedName(s: string): string;
export function auditedName(s: string | null | undefined): string | null;
export function auditedName(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.length > AUDIT_NAME_CHARS ? `${s.slice(0, AUDIT_NAME_CHARS)}…` : s;
}
