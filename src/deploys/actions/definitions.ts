/**
 * Action definitions: YAML files in a folder the team keeps in git (default
 * `<data-dir>/actions/`). A file holds one action (a mapping with `kind`) or several under
 * `actions:`; an action's name defaults to its file name. The folder is read again on every
 * list and run, so a merged change needs no restart, and a broken file is reported by name
 * and line without hiding the good ones.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { z } from 'zod';
import { AppError, notFound } from '../../core/app-error.js';
import { parseYamlFile } from '../../core/yaml-file.js';
import { PARAM_NAME_RE, paramSpecSchema, type ParamSpec } from './params.js';

export const ACTION_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const template = z.string().max(8192);
const timeoutS = z.number().positive().max(24 * 3600);

const base = {
  name: z.string().regex(ACTION_NAME_RE, 'lower-case letters, digits, ".", "_" and "-"').optional(),
  description: z.string().optional(),
  approval: z.enum(['none', 'required']).default('none'),
  params: z.record(z.string().regex(PARAM_NAME_RE, 'a parameter name is letters, digits and _ (not starting with a digit)'), paramSpecSchema).default({}),
};

const commandSchema = z.strictObject({
  ...base,
  kind: z.literal('command'),
  /** Program and arguments; each element is one argument after substitution (no shell). */
  argv: z.array(template).min(1),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), template).default({}),
  cwd: z.string().optional(),
  timeoutS: timeoutS.default(300),
  /** Output kept per run (stdout and stderr interleaved); the rest is counted and dropped. */
  maxOutputBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(64 * 1024),
});

const webhookSchema = z.strictObject({
  ...base,
  kind: z.literal('webhook'),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  /** Parameter values are URL-encoded where they land in the URL. */
  url: template,
  headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a header name'), template).default({}),
  /** A mapping is sent as JSON (values JSON-encoded; a leaf that is exactly `${P}` keeps P's type); a string is sent as is. */
  body: z.union([template, z.record(z.string(), z.unknown())]).optional(),
  timeoutS: timeoutS.default(30),
  maxOutputBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(64 * 1024),
});

const localSchema = z.strictObject({
  ...base,
  kind: z.literal('local'),
  /** deploy: start VERSION (if needed) and give it WEIGHT %; rollback: all traffic to PREVIOUS_VERSION, then stop VERSION; stop: stop VERSION. */
  operation: z.enum(['deploy', 'rollback', 'stop']),
});

export const actionSchema = z.discriminatedUnion('kind', [commandSchema, webhookSchema, localSchema]);
const listSchema = z.strictObject({ actions: z.array(actionSchema) });

export type CommandAction = z.infer<typeof commandSchema> & { name: string };
export type WebhookAction = z.infer<typeof webhookSchema> & { name: string };
export type LocalAction = z.infer<typeof localSchema> & { name: string };
export type ActionDefinition = (CommandAction | WebhookAction | LocalAction) & { source: string };

/** What tightloop passes to deploy and rollback actions (they declare what they use). */
export const DEPLOY_PARAMS: Record<string, ParamSpec> = {
  SERVICE: { type: 'string', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._-]{0,127}' },
  VERSION: { type: 'string', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._+-]{0,127}' },
  PREVIOUS_VERSION: { type: 'string', required: false, pattern: '[A-Za-z0-9][A-Za-z0-9._+-]{0,127}' },
  WEIGHT: { type: 'int', required: false, default: 100, min: 0, max: 100 },
};

/** Built-in actions driving the local actuator; a file may override them by name. */
export const BUILTIN_ACTIONS: readonly ActionDefinition[] = [
  {
    name: 'local-deploy', kind: 'local', operation: 'deploy', approval: 'none', source: 'built-in',
    description: 'Start VERSION of a local service (if not running) and send it WEIGHT % of the traffic',
    params: DEPLOY_PARAMS,
  },
  {
    name: 'local-rollback', kind: 'local', operation: 'rollback', approval: 'none', source: 'built-in',
    description: 'Send all traffic of a local service back to PREVIOUS_VERSION at once, then stop VERSION',
    params: { ...DEPLOY_PARAMS, PREVIOUS_VERSION: { ...DEPLOY_PARAMS.PREVIOUS_VERSION, required: true } },
  },
];

export class ActionFileError extends AppError {
  constructor(message: string, file: string) {
    super('action_file_invalid', 400, message, { context: { file } });
  }
}

const PLACEHOLDER_RE = /\$\{(env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Every `${NAME}` in the templates must be a declared parameter (a typo fails at load, not at 3 a.m.). */
function checkPlaceholders(def: ActionDefinition): string[] {
  const texts: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') texts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
  };
  if (def.kind === 'command') walk([def.argv, def.env, def.cwd]);
  if (def.kind === 'webhook') walk([def.url, def.headers, def.body]);
  const problems: string[] = [];
  for (const t of texts) {
    for (const m of t.matchAll(PLACEHOLDER_RE)) {
      if (m[1] === undefined && !(m[2] in def.params)) problems.push(`\${${m[2]}} is not a declared parameter`);
    }
  }
  return problems;
}

/** Parses one file's text into its actions; `file` names the source in messages. */
export function parseActionsYaml(text: string, file: string): ActionDefinition[] {
  const data = parseYamlFile(text, file, (raw) => {
    const isList = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'actions' in raw;
    return isList ? listSchema : actionSchema;
  }, (message) => new ActionFileError(message, file)) as z.infer<typeof listSchema> | z.infer<typeof actionSchema>;
  const list = 'actions' in data ? data.actions : [data];
  const stem = basename(file, extname(file));
  return list.map((a, i) => {
    const name = a.name ?? (list.length === 1 ? stem : undefined);
    if (name === undefined || !ACTION_NAME_RE.test(name)) {
      throw new ActionFileError(`${file}: actions.${i}: a name is required (lower-case letters, digits, ".", "_", "-")`, file);
    }
    const params = a.kind === 'local' ? { ...DEPLOY_PARAMS, ...a.params } : a.params;
    const def = { ...a, name, params, source: file };
    const problems = checkPlaceholders(def);
    if (problems.length > 0) throw new ActionFileError(`${file}: action ${name}: ${problems.join('; ')}`, file);
    return def;
  });
}

export interface ActionCatalog {
  actions: ActionDefinition[];
  /** Files that did not load, with why. */
  errors: { file: string; message: string }[];
}

/** Reads every `*.yaml` / `*.yml` in `dir` (absent folder → built-ins only). */
export function loadActions(dir: string): ActionCatalog {
  const byName = new Map<string, ActionDefinition>(BUILTIN_ACTIONS.map((a) => [a.name, a]));
  const errors: ActionCatalog['errors'] = [];
  if (!existsSync(dir)) return { actions: [...byName.values()], errors };
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const fromFiles = new Map<string, string>();
  for (const f of files) {
    const path = join(dir, f);
    try {
      for (const def of parseActionsYaml(readFileSync(path, 'utf8'), path)) {
        const other = fromFiles.get(def.name);
        if (other !== undefined) throw new ActionFileError(`${path}: action ${def.name} is already defined in ${other}`, path);
        fromFiles.set(def.name, path);
        byName.set(def.name, def);
      }
    } catch (err) {
      errors.push({ file: path, message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { actions: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)), errors };
}

export function findAction(catalog: ActionCatalog, name: string): ActionDefinition {
  const def = catalog.actions.find((a) => a.name === name);
  if (def !== undefined) return def;
  const broken = catalog.errors.find((e) => basename(e.file, extname(e.file)) === name);
  if (broken !== undefined) throw new ActionFileError(broken.message, broken.file);
  throw notFound(`action ${name} not found`);
}
