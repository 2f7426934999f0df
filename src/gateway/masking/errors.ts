/**
 * What an ErrorResponse or NoticeResponse may carry while masking is on. The server puts values
 * into messages (`invalid input syntax for type integer: "ada@example.com"`, `Key (email)=(…)
 * already exists`, `requested character too large for encoding: 1114209`, RAISE texts), and no
 * column plan can follow a value there. So, whenever a session is masked:
 *
 * - Detail, Where (context) and the internal query are withheld whole: they echo rows and query
 *   text.
 * - While any column is ruled or classified, Message and Hint are withheld whole (masker.ts):
 *   no scrubbing rule holds against values the server prints unquoted.
 * - Otherwise (the detectors alone) Message and Hint keep the server's own words; what stands between the first and the last
 *   double quote (the server does not escape quotes inside a quoted value, so pairs cannot be
 *   trusted) is kept only in pieces the client's own statement contains; outside the quotes,
 *   digit, hex and dotted or `@` tokens are kept only when the statement contains them. A text
 *   the client wrote itself is no secret; anything else may be data.
 * - A RAISE (or another procedural language's message) is user-computed text: withheld whole.
 *
 * `sql` is the statement the error answers; without one (an asynchronous notice) nothing is
 * known to the client and every piece is withheld.
 */

export const WITHHELD = '[withheld by tightloop: masking is on]';

/** Error fields that carry no data: severity (S, V), SQLSTATE (C), positions, source file/line/routine. */
export const VERBATIM_FIELDS = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R'].map((c) => c.charCodeAt(0)));
/** Error fields that echo rows or query text: Detail, Where (context), internal query. */
export const ECHOING_FIELDS = new Set(['D', 'W', 'q'].map((c) => c.charCodeAt(0)));

/** Words the server puts between two quoted names: kept although the statement lacks them. */
const CONNECTORS = new Set([' of relation ', ' for ', ' of type ', ' for type ', ' in ', ' to ', ', ', ' and ', ' of ', ' on ', ' at ', '.']);

/** The message is text a routine computed (RAISE, PL/Python's plpy.notice, ...). */
export function userComputed(fields: ReadonlyMap<string, string>): boolean {
  const routine = fields.get('R') ?? '';
  const file = fields.get('F') ?? '';
  return routine === 'exec_stmt_raise' || /^pl/i.test(file);
}

function known(piece: string, sql: string | undefined): boolean {
  if (piece === '') return true;
  return sql !== undefined && sql.includes(piece.toLowerCase());
}

/** Message or hint text with every piece the statement did not contain replaced by `…`. */
export function scrubText(text: string, sqlLower: string | undefined): string {
  const first = text.indexOf('"');
  const last = text.lastIndexOf('"');
  let head = text;
  let span = '';
  let tail = '';
  if (first !== -1) {
    head = text.slice(0, first);
    if (last === first) {
      span = '"…';
    } else {
      const pieces = text.slice(first + 1, last).split('"');
      span = `"${pieces.map((p, i) => (known(p, sqlLower) || (i % 2 === 1 && CONNECTORS.has(p)) ? p : '…')).join('"')}"`;
      tail = text.slice(last + 1);
    }
  }
  return scrubTokens(head, sqlLower) + span + scrubTokens(tail, sqlLower);
}

/** Outside quotes: numbers, hex bytes, dotted names and addresses the statement did not contain. */
function scrubTokens(text: string, sqlLower: string | undefined): string {
  return text.replace(/[^\s(),:;=]*[0-9@.][^\s(),:;=]*/g, (tok) => {
    const bare = tok.replace(/[.]+$/, '');
    if (!/[0-9@]|\.[^.]/.test(bare) || known(bare, sqlLower)) return tok;
    return `…${tok.slice(bare.length)}`;
  });
}
