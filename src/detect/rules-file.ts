/**
 * Loads `<data-dir>/rules.yaml`. Errors name the file, line, column and field, because a typo in
 * an alerting rule must be fixed before the server starts, not discovered during an outage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { AppError } from '../core/app-error.js';
import { parseYamlFile } from '../core/yaml-file.js';
import { rulesFileSchema, type RulesFile } from './rules.js';

export class RulesFileError extends AppError {
  constructor(message: string, context: Record<string, unknown>) {
    super('rules_file_invalid', 400, message, { context });
  }
}

/** Parses rules YAML text; `file` only names the source in messages. */
export function parseRulesYaml(text: string, file = 'rules.yaml'): RulesFile {
  return parseYamlFile(text, file, () => rulesFileSchema,
    (message, line) => new RulesFileError(message, line === undefined ? { file } : { file, line })) as RulesFile;
}

/** Reads the rules file if present (absent → nothing configured). */
export function loadRulesFile(path: string): RulesFile {
  if (!existsSync(path)) return rulesFileSchema.parse({});
  return parseRulesYaml(readFileSync(path, 'utf8'), path);
}
