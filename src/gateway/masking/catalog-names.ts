import { ERROR_FIELD } from '../wire/codes.js';

/**
 * Server messages that name only catalog objects. While a column is ruled or classified, error
 * and notice messages are withheld whole (errors.ts), since values can stand anywhere in them.
 * A few templates carry nothing but the names of constraints, tables and columns — the ones a
 * user needs to understand a failed write — so they are kept when every name in them is a
 * name the catalog holds (masker.ts), and the text around the names is the template's own.
 */

/** Class 23 (integrity constraint violation) messages of PostgreSQL: fixed words and quoted names. */
const MESSAGES: readonly RegExp[] = [
  /^duplicate key value violates unique constraint "([^"]+)"$/,
  /^conflicting key value violates exclusion constraint "([^"]+)"$/,
  /^insert or update on table "([^"]+)" violates foreign key constraint "([^"]+)"$/,
  /^update or delete on table "([^"]+)" violates foreign key constraint "([^"]+)" on table "([^"]+)"$/,
  /^null value in column "([^"]+)" of relation "([^"]+)" violates not-null constraint$/,
  /^new row for relation "([^"]+)" violates check constraint "([^"]+)"$/,
  /^check constraint "([^"]+)" of relation "([^"]+)" is violated by some row$/,
];

/** Hints of an undefined column (42703): `"alias.column"`, the alias as the statement wrote it. */
const HINTS: readonly RegExp[] = [
  /^Perhaps you meant to reference the column "([^".]+)\.([^".]+)"\.$/,
  /^Perhaps you meant to reference the column "([^".]+)\.([^".]+)" or the column "([^".]+)\.([^".]+)"\.$/,
];

/** Fields that hold one name: schema, table, column, data type, constraint. */
const NAME_FIELDS = new Set(['s', 't', 'c', 'd', 'n'].map((c) => c.charCodeAt(0)));

/**
 * Is this field's text only catalog names in a known template? `isName` says whether a name is
 * in the catalog; `inStatement` whether the client's statement contains it.
 */
export function namesOnly(code: number, text: string, sqlstate: string, isName: (name: string) => boolean, inStatement: (piece: string) => boolean): boolean {
  if (NAME_FIELDS.has(code)) return isName(text);
  if (code === ERROR_FIELD.Message && sqlstate.startsWith('23')) {
    for (const re of MESSAGES) {
      const m = re.exec(text);
      if (m !== null) return m.slice(1).every(isName);
    }
    return false;
  }
  if (code === ERROR_FIELD.Hint && sqlstate === '42703') {
    for (const re of HINTS) {
      const m = re.exec(text);
      if (m === null) continue;
      // Pairs of (alias or table, column).
      const parts = m.slice(1);
      return parts.every((p, i) => (i % 2 === 0 ? isName(p) || inStatement(p) : isName(p)));
    }
  }
  return false;
}
