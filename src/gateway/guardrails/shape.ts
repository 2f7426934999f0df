/**
 * A cache key for the simple-protocol hot path: the SQL text with plain string and integer
 * literals replaced by placeholders, so `... WHERE aid = 17` and `... WHERE aid = 42` share
 * one guardrail decision without parsing or fingerprinting either.
 *
 * This never decides anything — decisions always come from the parse tree — so it only has to
 * be conservative: two texts get the same key only if they differ solely in such literals.
 * Whenever the text contains something whose lexing depends on settings or context
 * (backslashes, dollar quotes, comments, E''/B''/X''/U&'' prefixes, decimals, exponents), it
 * returns undefined and the caller falls back to libpg-query's fingerprint.
 *
 * A literal is not always a constant: `COPY t TO STDOUT (FORMAT 'binary')` and `(DELIMITER '@')`
 * are options of the statement. So the shape also lists where each stripped literal starts, and
 * the engine shares a decision by shape only when the parse tree has a constant (A_Const) at
 * every one of those places.
 */
export function shapeKey(sql: string): string | undefined {
  return shapeOf(sql)?.key;
}

export interface Shape {
  key: string;
  /** Character offset of each stripped literal, in order. */
  literals: number[];
}

export function shapeOf(sql: string): Shape | undefined {
  if (sql.length > MAX_KEYED_LENGTH) return undefined;
  const literals: number[] = [];
  let out = '';
  let copied = 0;
  const n = sql.length;
  for (let i = 0; i < n; i++) {
    const c = sql.charCodeAt(i);
    if (c === DOLLAR || c === BACKSLASH) return undefined;
    if ((c === DASH && sql.charCodeAt(i + 1) === DASH) || (c === SLASH && sql.charCodeAt(i + 1) === STAR)) return undefined;
    if (c === DQUOTE) {
      const end = closingQuote(sql, i, DQUOTE);
      if (end === -1) return undefined;
      i = end;
      continue;
    }
    if (c === QUOTE) {
      if (i > 0 && isIdentChar(sql.charCodeAt(i - 1))) return undefined;
      const end = closingQuote(sql, i, QUOTE);
      if (end === -1) return undefined;
      literals.push(i);
      out += sql.slice(copied, i) + "'?'";
      copied = end + 1;
      i = end;
      continue;
    }
    if (isDigit(c)) {
      if (i > 0 && isIdentChar(sql.charCodeAt(i - 1))) continue; // part of a name like t1
      let j = i + 1;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (j < n) {
        const next = sql.charCodeAt(j);
        if (isIdentChar(next) || next === DOT) return undefined; // 1e5, 0x1f, 1_000, 1.5
      }
      literals.push(i);
      out += sql.slice(copied, i) + '?';
      copied = j;
      i = j - 1;
    }
  }
  return { key: out + sql.slice(copied), literals };
}

/** Index of the quote closing the one at `start` (doubled quotes are escapes), or -1. */
function closingQuote(sql: string, start: number, quote: number): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (sql.charCodeAt(i) !== quote) continue;
    if (sql.charCodeAt(i + 1) === quote) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Letters, digits, `_`, `$` and any non-ASCII character can continue an identifier. */
function isIdentChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === DOLLAR || c >= 128;
}

const MAX_KEYED_LENGTH = 4096;
const DOLLAR = 36;
const BACKSLASH = 92;
const DASH = 45;
const SLASH = 47;
const STAR = 42;
const QUOTE = 39;
const DQUOTE = 34;
const DOT = 46;
