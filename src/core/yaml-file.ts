/**
 * Parses a YAML configuration file against a zod schema, with messages that name the file, line
 * (and column for syntax errors) and field, so a typo is fixed before it matters. Shared by every
 * file-based configuration: rules.yaml, actions, services.
 */
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

/**
 * Returns the schema's output for `text`. `schemaFor` picks the schema from the raw document;
 * `fail` builds the error to throw (`line` is given for YAML syntax errors). At most five schema
 * problems are reported, each at the deepest node of its path that exists.
 */
export function parseYamlFile(
  text: string,
  file: string,
  schemaFor: (raw: unknown) => z.ZodType,
  fail: (message: string, line?: number) => Error,
): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    const pos = lines.linePos(yamlError.pos[0]);
    throw fail(`${file}:${pos.line}:${pos.col}: ${yamlError.message.split('\n')[0]}`, pos.line);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = schemaFor(raw).safeParse(raw);
  if (parsed.success) return parsed.data;
  const messages = parsed.error.issues.slice(0, 5).map((issue) => {
    // Walk up the path until a node exists (a missing field is reported at its parent).
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    let line: number | undefined;
    for (let n = path.length; n >= 0 && line === undefined; n--) {
      const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) line = lines.linePos(node.range[0]).line;
    }
    return `${file}:${line ?? 1}: ${path.join('.') || '(root)'}: ${issue.message}`;
  });
  throw fail(messages.join('\n'));
}
