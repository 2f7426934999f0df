/**
 * Typed action parameters: their declaration (in an action's YAML) and the validation of the
 * values a caller passes. Values may arrive typed (JSON body) or as text (`--param k=v` on the
 * CLI); text is converted strictly ("12" is an int, "12.5" and "12abc" are not). Every problem
 * is reported at once, each naming its parameter, so one round trip fixes a bad call.
 */
import { z } from 'zod';
import { AppError } from '../../core/app-error.js';
import { compilePattern, patternProblem } from '../../core/pattern.js';

export type ParamValue = string | number | boolean;
export type ParamValues = Record<string, ParamValue>;

export const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const paramSpecSchema = z.strictObject({
  type: z.enum(['string', 'int', 'bool', 'enum']).default('string'),
  description: z.string().optional(),
  required: z.boolean().default(false),
  default: scalar.optional(),
  /** string: a pattern the whole value must match (anchored for you; the linear-time subset of src/core/pattern.ts). */
  pattern: z.string().optional(),
  /** enum: the allowed values. */
  values: z.array(z.string().min(1)).min(1).optional(),
  /** int: inclusive bounds. */
  min: z.number().int().optional(),
  max: z.number().int().optional(),
  /** string: longest accepted value (default 1024). */
  maxLength: z.number().int().min(1).max(65536).optional(),
}).superRefine((p, ctx) => {
  if (p.type === 'enum' && p.values === undefined) ctx.addIssue({ code: 'custom', message: 'an enum parameter needs `values`' });
  if (p.type !== 'enum' && p.values !== undefined) ctx.addIssue({ code: 'custom', message: '`values` is only for type enum' });
  if (p.pattern !== undefined) {
    if (p.type !== 'string') ctx.addIssue({ code: 'custom', message: '`pattern` is only for type string' });
    const problem = patternProblem(p.pattern, { whole: true });
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `unsupported pattern: ${problem}` });
  }
  if ((p.min !== undefined || p.max !== undefined) && p.type !== 'int') ctx.addIssue({ code: 'custom', message: '`min`/`max` are only for type int' });
  if (p.default !== undefined && p.required) ctx.addIssue({ code: 'custom', message: 'a parameter with a default cannot be required' });
});

export type ParamSpec = z.infer<typeof paramSpecSchema>;

export interface ParamIssue {
  param: string;
  message: string;
}

export class ActionParamsError extends AppError {
  constructor(action: string, readonly issues: ParamIssue[]) {
    super('action_params_invalid', 400, `action ${action}: ${issues.map((i) => `param '${i.param}': ${i.message}`).join('; ')}`, { context: { action, issues } });
  }
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v) : String(v));

/** Converts and checks one value; returns the value or an issue message. */
function coerce(spec: ParamSpec, raw: unknown): { value: ParamValue } | { error: string } {
  switch (spec.type) {
    case 'int': {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && /^-?\d{1,15}$/.test(raw.trim())) n = Number(raw.trim());
      else return { error: `expected an integer, got ${show(raw)}` };
      if (!Number.isSafeInteger(n)) return { error: `expected an integer, got ${show(raw)}` };
      if (spec.min !== undefined && n < spec.min) return { error: `must be ≥ ${spec.min}, got ${n}` };
      if (spec.max !== undefined && n > spec.max) return { error: `must be ≤ ${spec.max}, got ${n}` };
      return { value: n };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      const t = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      if (t === 'true' || t === '1' || t === 'yes') return { value: true };
      if (t === 'false' || t === '0' || t === 'no') return { value: false };
      return { error: `expected true or false, got ${show(raw)}` };
    }
    case 'enum': {
      const s = typeof raw === 'number' ? String(raw) : raw;
      if (typeof s !== 'string' || !(spec.values ?? []).includes(s)) return { error: `must be one of ${(spec.values ?? []).join(', ')}, got ${show(raw)}` };
      return { value: s };
    }
    case 'string': {
      if (typeof raw !== 'string') return { error: `expected a string, got ${typeof raw === 'object' ? JSON.stringify(raw) : show(raw)}` };
      const max = spec.maxLength ?? 1024;
      if (raw.length > max) return { error: `longer than ${max} characters (${raw.length})` };
      // NUL cannot travel in an argv element or an environment variable.
      if (raw.includes('\0')) return { error: 'contains a NUL character' };
      if (spec.pattern !== undefined && !compilePattern(spec.pattern, { whole: true }).test(raw)) return { error: `${show(raw)} does not match pattern ${spec.pattern}` };
      return { value: raw };
    }
  }
}

/**
 * Validates `input` against the declared parameters. `ignoreUnknown` drops undeclared names
 * instead of rejecting them (tightloop itself passes SERVICE, VERSION, … to deploy and rollback
 * actions, which declare only what they use).
 */
export function validateParams(
  action: string, specs: Record<string, ParamSpec>, input: Record<string, unknown>, opts: { ignoreUnknown?: boolean } = {},
): ParamValues {
  const issues: ParamIssue[] = [];
  const out: ParamValues = {};
  for (const name of Object.keys(input)) {
    if (!(name in specs) && opts.ignoreUnknown !== true) {
      const known = Object.keys(specs);
      issues.push({ param: name, message: `unknown parameter (${known.length === 0 ? 'this action takes none' : `known: ${known.join(', ')}`})` });
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    const raw = Object.hasOwn(input, name) ? input[name] : undefined;
    if (raw === undefined || raw === null) {
      if (spec.default !== undefined) out[name] = spec.default;
      else if (spec.required) issues.push({ param: name, message: `required${spec.type === 'enum' ? ` (one of ${(spec.values ?? []).join(', ')})` : ` (${spec.type})`}` });
      continue;
    }
    const r = coerce(spec, raw);
    if ('error' in r) issues.push({ param: name, message: r.error });
    else out[name] = r.value;
  }
  if (issues.length > 0) throw new ActionParamsError(action, issues);
  return out;
}

/** `k=v` pairs from the command line into an input object (values stay text). */
export function parseParamPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`--param ${p}: expected name=value`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}
