import { ERROR_FIELD } from '../wire/codes.js';

/**
 * Server messages that echo only identifiers the client wrote itself. While a column is ruled or
 * classified, messages are withheld whole (errors.ts): the server prints values unquoted and
 * quoted alike. A few name-lookup errors name nothing but what the client's statement spelt out:
 * an undefined or ambiguous column or relation met while the server analysed the client's own
 * statement (`column "status" does not exist`), and a prepared statement name a SQL `PREPARE`
 * reuses (`prepared statement "u1" already exists`). Such a message is kept when
 *
 * - it is the whole message of one of the templates below, with its SQLSTATE;
 * - it comes from the client's statement itself, not from a statement run inside a function
 *   (then the server adds a context, an internal query or an internal position: withheld);
 * - for the lookups that also run on values (`'x'::regclass` → 42P01, `has_column_privilege(t,
 *   email, …)` → 42703: a row's value as the name), it carries a position in the client's
 *   statement, which only the analysis of the statement's own text sets — never an execution;
 * - every name in it stands in the client's statement (case-insensitive).
 *
 * A name is schema information the catalogs show anyway, never a row's value.
 */

interface Template {
  sqlstate: string;
  re: RegExp;
  /** Only with a position in the client's statement (the lookup also runs on values at execution). */
  positioned: boolean;
}

const TEMPLATES: readonly Template[] = [
  { sqlstate: '42703', re: /^column "([^"]+)" does not exist$/, positioned: true },
  { sqlstate: '42703', re: /^column ([^\s".]+)\.([^\s".]+) does not exist$/, positioned: true },
  { sqlstate: '42703', re: /^column "([^"]+)" of relation "([^"]+)" does not exist$/, positioned: true },
  { sqlstate: '42702', re: /^column reference "([^"]+)" is ambiguous$/, positioned: true },
  { sqlstate: '42P01', re: /^relation "([^"]+)" does not exist$/, positioned: true },
  { sqlstate: '42P01', re: /^missing FROM-clause entry for table "([^"]+)"$/, positioned: true },
  { sqlstate: '42P05', re: /^prepared statement "([^"]+)" already exists$/, positioned: false },
  { sqlstate: '26000', re: /^prepared statement "([^"]+)" does not exist$/, positioned: false },
];

/** Fields a statement run inside a function adds: context, internal query, internal position. */
const NESTED = ['W', 'q', 'p'];

/**
 * Is the Message `text` of this error a template naming only identifiers of the client's own
 * statement `sqlLower` (lower-cased)? `fields` by field code letter.
 */
export function ownNamesOnly(code: number, text: string, fields: ReadonlyMap<string, string>, sqlLower: string | undefined): boolean {
  if (code !== ERROR_FIELD.Message || sqlLower === undefined) return false;
  if (NESTED.some((f) => fields.has(f))) return false;
  const sqlstate = fields.get('C') ?? '';
  for (const t of TEMPLATES) {
    if (t.sqlstate !== sqlstate) continue;
    const m = t.re.exec(text);
    if (m === null) continue;
    if (t.positioned && !/^[1-9][0-9]*$/.test(fields.get('P') ?? '')) return false;
    return m.slice(1).every((name) => name !== '' && sqlLower.includes(name.toLowerCase()));
  }
  return false;
}
