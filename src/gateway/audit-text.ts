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

export interface AuditedText {
  text: string;
  textChars?: number;
  params?: (string | null)[];
  paramCount?: number;
}

export function auditedText(sql: string | undefined, params: BoundParameters | undefined): AuditedText | Record<string, never> {
  if (sql === undefined) return {};
  const out: AuditedText = { text: sql.length > AUDIT_TEXT_CHARS ? `${sql.slice(0, AUDIT_TEXT_CHARS)}…` : sql };
  if (sql.length > AUDIT_TEXT_CHARS) out.textChars = sql.length;
  if (params !== undefined && params.count > 0) {
    out.params = params.values;
    if (params.count > params.values.length) out.paramCount = params.count;
  }
  return out;
}
