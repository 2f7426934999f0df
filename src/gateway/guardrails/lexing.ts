/**
 * Session settings that change how the server reads statement text. The gateway parses every
 * statement with the parser's fixed rules — `standard_conforming_strings = on` (a backslash in
 * '...' is an ordinary character) and UTF-8 text — so a session in which the server lexes
 * differently would let a statement mean one thing to the guardrails and another to the server
 * (`'x\'` ends a string for one and not for the other; a GBK character can end in the byte of a
 * backslash). Such a session is never allowed to exist:
 *
 * - a statement that would change one of these settings to something else is refused
 *   (SET / SET LOCAL / SET NAMES / set_config), whatever the grant;
 * - the startup packet's client_encoding is checked the same way (session.ts);
 * - the server's own report of each setting (ParameterStatus, at login and after every
 *   statement) is checked, so a default changed behind the gateway's back (ALTER ROLE/DATABASE
 *   SET, a function) ends the session instead of being parsed wrongly (relay.ts).
 *
 * `backslash_quote` and `escape_string_warning` need no rule: under these two settings they only
 * decide whether the server rejects or warns about `\'`, never how a statement splits.
 */

/** The only value of standard_conforming_strings the parser implements. */
export const STANDARD_CONFORMING_STRINGS = 'on';

/**
 * Client encodings whose bytes the gateway reads exactly as the server does: UTF-8 (checked
 * strictly, see relay.ts) and SQL_ASCII (no conversion: the server reads the same bytes). All
 * others are refused — the client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) put 0x5C
 * inside multi-byte characters, and single-byte ones would turn the server's names into other
 * characters than the gateway's.
 */
const SAFE_ENCODINGS = new Map([
  ['utf8', 'UTF8'],
  ['unicode', 'UTF8'],
  ['sqlascii', 'SQL_ASCII'],
]);

/** PostgreSQL compares encoding names ignoring case and anything but letters and digits. */
function cleanEncoding(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** True when the gateway parses text in this client encoding exactly as the server does. */
export function safeClientEncoding(name: string): boolean {
  return SAFE_ENCODINGS.has(cleanEncoding(name));
}

/** Settings the statement rules watch (lower case). */
export const LEXING_SETTINGS = new Set(['standard_conforming_strings', 'client_encoding']);

/** PostgreSQL's boolean spellings that mean "on" (unique prefixes of true/yes, on, 1). */
function meansOn(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === '1') return true;
  return v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v));
}

/**
 * Why setting `name` to `value` (undefined: not a constant) is refused, or undefined when it
 * keeps the server's lexing equal to the gateway's. `name` is lower case.
 */
export function lexingSettingRefusal(name: string, value: string | undefined): string | undefined {
  if (name === 'standard_conforming_strings') {
    if (value !== undefined && meansOn(value)) return undefined;
    return 'standard_conforming_strings can only be on: the gateway parses statements with it on';
  }
  if (name === 'client_encoding') {
    if (value !== undefined && safeClientEncoding(value)) return undefined;
    return `client_encoding ${value === undefined ? '(computed)' : `"${value}"`} is not one the gateway parses exactly as the server (use UTF8)`;
  }
  return undefined;
}

/**
 * The server reports a setting (ParameterStatus): why the session cannot go on under it, or
 * undefined. Names are compared as the server sends them.
 */
export function serverParameterRefusal(name: string, value: string): string | undefined {
  if (name === 'standard_conforming_strings' && value !== STANDARD_CONFORMING_STRINGS) {
    return `the server reports standard_conforming_strings=${value}; the gateway parses statements only with it on`;
  }
  if (name === 'client_encoding' && !safeClientEncoding(value)) {
    return `the server reports client_encoding=${value}; the gateway parses statements only in UTF8 or SQL_ASCII`;
  }
  return undefined;
}
