import type { JsonNode, Visitor, WalkContext } from './walk.js';

/**
 * COPY TO options that would hide values from the masker. COPY OUT is masked line by line with
 * the content detectors, which is sound only while a value's characters reach them unchanged:
 * text format escapes the delimiter inside values (`DELIMITER '@'` turns an e-mail into
 * `jane\@example.org`, `DELIMITER ' '` splits a card number), CSV doubles the quote and escape
 * characters. So, when masking applies, the delimiter, quote and escape must be characters no
 * detector ever matches, and the output encoding must be UTF-8. Reported as `masking-bypass`.
 */

const SAFE_DELIMITERS = new Set(['\t', ',', '|', ';']);
const SAFE_QUOTES = new Set(['"']);
const SAFE_ESCAPES = new Set(['"', '\\']);
const SAFE_ENCODINGS = new Set(['utf8', 'unicode', 'sqlascii']);

type DefElem = { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } };

function check(option: string, value: string | undefined, safe: ReadonlySet<string>, ctx: WalkContext): void {
  ctx.usedConstants();
  if (value === undefined || !safe.has(value)) {
    ctx.report('masking-bypass', `COPY ... ${option.toUpperCase()} ${value === undefined ? '(computed)' : JSON.stringify(value)} (masking reads COPY output only with standard delimiters and quotes)`);
  }
}

export const copyOptions: Visitor = {
  CopyStmt: (node: JsonNode, ctx) => {
    if (node.is_from === true) return;
    const options = Array.isArray(node.options) ? (node.options as DefElem[]) : [];
    for (const o of options) {
      const name = o.DefElem?.defname;
      const value = o.DefElem?.arg?.String?.sval;
      if (name === 'delimiter') check(name, value, SAFE_DELIMITERS, ctx);
      else if (name === 'quote') check(name, value, SAFE_QUOTES, ctx);
      else if (name === 'escape') check(name, value, SAFE_ESCAPES, ctx);
      else if (name === 'encoding') check(name, value?.toLowerCase().replace(/[-_]/g, ''), SAFE_ENCODINGS, ctx);
    }
  },
};
