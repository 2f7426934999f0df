/**
 * Loads `<data-dir>/rules.yaml`. Errors name the file, line, column and field, because a typo in
 * an alerting rule must be fixed before the server starts, not discovered during an outage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { AppError } from '../core/app-error.js';
import { rulesFileSchema, type RulesFile } from './rules.js';

export class RulesFileError extends AppError {
  constructor(message: string, context: Record<string, unknown>) {
    super('rules_file_invalid', 400, message, { context });
  }
}

/** Parses rules YAML text; `file` only names the source in messages. */
export function parseRulesYaml(text: string, file = 'rules.yaml'): RulesFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    const pos = lines.linePos(yamlError.pos[0]);
    throw new RulesFileError(`${file}:${pos.line}:${pos.col}: ${yamlError.message.split('\n')[0]}`, { file, line: pos.line });
  }
  const parsed = rulesFileSchema.safeParse(doc.toJS() ?? {});
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
  throw new RulesFileError(messages.join('\n'), { file });
}

/** Reads the rules file if present (absent → nothing configured). */
export function loadRulesFile(path: string): RulesFile {
  if (!existsSync(path)) return rulesFileSchema.parse({});
  return parseRulesYaml(readFileSync(path, 'utf8'), path);
}
