import { createHash } from 'node:crypto';
import { serverText } from './server-text.js';
import type { BoundParameters } from './wire/decode.js';

/**
 * What the audit records of a statement beside its normalised form (`sql`, constants as `$n`,
 * which groups statements with `fingerprint`): the text exactly as the client sent it, literals
 * included (`text`), and the values bound to its parameters in the extended protocol (`params`).
 * So the audit shows what actually ran — the SQL handed to a function as a string, the pid passed
 * to `pg_terminate_backend`, the id a statement read. Both come from the client; result values
 * never enter the audit.
 *
 * Neither is ever cut (attack round 8 G3: a guess in the middle of a 16 KB statement, between
 * the kept head and tail and past the 256 listed constants, was nowhere in its record; a value
 * past the 1,024th character or the 64th parameter was not either). Their size is bounded where
 * they enter: a statement's text by the gateway's limit on Query and Parse messages (1 MiB,
 * refused with 54000 before anything runs), parameter values by the Bind limit (wire/framer.ts).
 * So the record grows with what the client sends, and what it sends is all there; how fast one
 * user's records grow is bounded instead (user-bucket.ts auditVolume, charged by session.ts).
 */

/** COPY FROM STDIN data per `statement.copy_data` record (session.ts): a longer copy makes more records. */
export const AUDIT_COPY_CHARS = 64 * 1024;

/** A text over this many characters is recorded without its comments and runs of white space. */
export const AUDIT_TEXT_CHARS = 8192;

export interface AuditedText {
  text: string;
  /** The length of the text as sent, when `text` is it without its comments (see boundedText). */
  textChars?: number;
  /** SHA-256 (hex) of the text as sent, when `text` is it without its comments. */
  textSha256?: string;
  params?: (string | null)[];
}

export function auditedText(sql: string | undefined, params: BoundParameters | undefined): AuditedText | Record<string, never> {
  if (sql === undefined) return {};
  const out: AuditedText = { ...boundedText(sql) };
  if (params !== undefined && params.count > 0) out.params = params.values;
  return out;
}

/**
 * Characters of text and parameter values `a` puts in a record: what the user's audit volume is
 * charged for it (user-bucket.ts auditVolume; nothing is cut, the rate is bounded).
 */
export function auditedChars(a: AuditedText | Record<string, never>): number {
  let n = a.text?.length ?? 0;
  for (const v of a.params ?? []) n += v?.length ?? 0;
  return n;
}

/**
 * A long text (over AUDIT_TEXT_CHARS) is recorded without its comments and runs of white space
 * (the server ignores them, and a 1 MB comment would otherwise be a 1 MB record: attack round 7
 * F7), removed as the server's own lexer reads the text (server-text.ts; a second, hand-written
 * lexer once recorded a text that was not what ran: attack round 7 F4), with the length and hash
 * of the text as sent. Every token the server reads stays; a text that lexer cannot read is kept
 * as sent.
 */
export function boundedText(sql: string): AuditedText {
  const out: AuditedText = { text: sql };
  if (sql.length <= AUDIT_TEXT_CHARS) return out;
  const lexed = serverText(sql, 'collapse');
  if (lexed === undefined || lexed.text === sql) return out;
  out.text = lexed.text;
  out.textChars = sql.length;
  out.textSha256 = createHash('sha256').update(sql).digest('hex');
  return out;
}

export interface AuditedSql {
  sql: string | null;
  sqlChars?: number;
  sqlSha256?: string;
}

/** `sql` over this many characters keeps its first and last half of them (see auditedSql). */
export const AUDIT_SQL_CHARS = 8192;

/**
 * The normalised text (`sql`): libpg-query's normal form of `text` (constants as `$n`), for
 * reading and grouping. It is derived from `text`, which is whole, so a long one may be shortened
 * without losing anything: over AUDIT_SQL_CHARS (after comments go, as for `text`) it keeps its
 * head and tail, with `sqlChars` and `sqlSha256` of the whole.
 */
export function auditedSql(normalized: string | null | undefined): AuditedSql {
  if (normalized === null || normalized === undefined) return { sql: null };
  const b = boundedText(normalized);
  if (b.text.length <= AUDIT_SQL_CHARS) return b.textSha256 === undefined ? { sql: b.text } : { sql: b.text, sqlChars: b.textChars, sqlSha256: b.textSha256 };
  const half = AUDIT_SQL_CHARS / 2;
  return {
    sql: `${b.text.slice(0, half)}…${b.text.slice(b.text.length - half)}`,
    sqlChars: normalized.length,
    sqlSha256: b.textSha256 ?? createHash('sha256').update(normalized).digest('hex'),
  };
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
