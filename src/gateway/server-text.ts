import { scanSync } from 'libpg-query';
import { MAX_TOKENS, tokenCount } from './guardrails/engine.js';

/**
 * A statement's text as the server reads it, without its comments — lexed by libpg-query's
 * scanner, which is PostgreSQL's own (the one whose tokens the guardrails' parser judges). There
 * is no second lexer: a hand-written comment stripper differed from the server (nested block
 * comments, `--` inside a block comment) and let the audit record a text that was not what ran
 * (attack round 7 F4). When the scanner cannot lex a text (unterminated comment or literal, too
 * many tokens, the parser not loaded) the answer is undefined and callers keep the text as sent,
 * removing nothing.
 *
 * The gateway only lets sessions exist whose lexing settings equal the parser's
 * (guardrails/lexing.ts), so the scanner splits a text exactly as the server does.
 */

export interface ServerText {
  /** The text without comments; white space between tokens collapsed to one space, or kept. */
  text: string;
  /** Every literal (strings, bit strings, numbers), in order, as written. */
  constants: string[];
  /** True when the text held at least one comment. */
  hadComments: boolean;
}

/** What the server's lexer skips between tokens (scan.l `space`). */
const SPACE = /^[ \t\n\r\f\v]*$/;
const COMMENTS = new Set(['C_COMMENT', 'SQL_COMMENT']);

let last: { sql: string; layout: Layout; out: ServerText | undefined } | undefined;

/**
 * `collapse`: tokens joined by one space where the server saw white space or a comment (for
 * the audit). `keep`: white space as sent, each comment replaced by one space (for an approver).
 */
export type Layout = 'collapse' | 'keep';

export function serverText(sql: string, layout: Layout): ServerText | undefined {
  if (last !== undefined && last.sql === sql && last.layout === layout) return last.out;
  const out = lex(sql, layout);
  last = { sql, layout, out };
  return out;
}

function lex(sql: string, layout: Layout): ServerText | undefined {
  // The scanner's work (and its answer) grows with the number of tokens; a text over the
  // guardrails' bound is refused unparsed anyway.
  if (tokenCount(sql) > MAX_TOKENS) return undefined;
  let tokens: ReturnType<typeof scanSync>['tokens'];
  try {
    tokens = scanSync(sql).tokens;
  } catch { // text the scanner refuses has no server reading: undefined, as for a text over the bound
    return undefined;
  }
  // Token offsets are in bytes of the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  const parts: string[] = [];
  const constants: string[] = [];
  let hadComments = false;
  let at = 0;
  let gap = false;
  for (const t of tokens) {
    if (t.start < at || t.end > bytes.length || t.end < t.start) return undefined;
    const between = bytes.toString('utf8', at, t.start);
    // Anything but white space between two tokens means the scanner's view is not the whole
    // text: remove nothing.
    if (!SPACE.test(between)) return undefined;
    at = t.end;
    if (COMMENTS.has(t.tokenName)) {
      hadComments = true;
      if (layout === 'keep') parts.push(between, ' ');
      gap = true;
      continue;
    }
    const text = bytes.toString('utf8', t.start, t.end);
    if (layout === 'keep') parts.push(between);
    else if ((gap || between.length > 0) && parts.length > 0) parts.push(' ');
    gap = false;
    parts.push(text);
    if (isConstant(text)) constants.push(text);
  }
  const tail = bytes.toString('utf8', at);
  if (!SPACE.test(tail)) return undefined;
  if (layout === 'keep') parts.push(tail);
  return { text: parts.join(''), constants, hadComments };
}

/** A literal token: a number, or a string of any kind ('…', E'…', U&'…', B'…', X'…', $$…$$). */
function isConstant(text: string): boolean {
  const c = text.charCodeAt(0);
  if (c >= 48 && c <= 57) return true;
  if (c === 46) return /^\.[0-9]/.test(text);
  return /^(?:[eEbBxXnN]|[uU]&)?'/.test(text) || /^\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$/.test(text);
}
